"""Liaison's own errors: one line, the documented exit code, and nothing written or created
by a command that fails (docs/cli.md, "Errors and exit codes")."""

from __future__ import annotations

import json
import socket

import pytest

from liaison.errors import CannotListen, NodeNotInitialised, UnknownPartner, UnknownType
from tests.stix_factory import indicator

ALLIANCE = """
[node]
country = "CAN"
name = "Canadian intelligence liaison node"

[[partners]]
country = "USA"
name = "United States intelligence community"
clearance = "USA:TS"
trust = "high"
"""

FRANCE = """
[[partners]]
country = "FRA"
name = "French intelligence services"
clearance = "NATO:NS"
trust = "medium"
"""

MALWARE = {
    "type": "malware",
    "spec_version": "2.1",
    "id": "malware--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061",
    "created": "2020-01-01T00:00:00.000Z",
    "modified": "2020-01-01T00:00:00.000Z",
    "name": "banana loader",
    "is_family": "banana",
}

MISP_EVENT = {
    "Event": {
        "uuid": "5e6b8a3c-1b2c-4d5e-8f90-123456789abc",
        "info": "Phishing campaign",
        "timestamp": "1583000000",
        "Orgc": {"uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f", "name": "CIRCL"},
        "Attribute": [
            {
                "uuid": "5e6b8a3c-0000-4d5e-8f90-123456789abc",
                "type": "ip-dst",
                "category": "Network activity",
                "value": "198.51.100.7",
                "timestamp": "1583000000",
            }
        ],
    }
}


def one_line_error(result, code: int) -> str:
    """The single `error: ...` line of a failed command, after checking its exit code."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0].removeprefix("error: ")


@pytest.fixture
def node(run, tmp_path):
    """An initialised node with two partners, USA and FRA."""
    assert run("init").exit_code == 0
    alliance = tmp_path / "alliance.toml"
    alliance.write_text(ALLIANCE + FRANCE)
    result = run("alliance", "load", alliance)
    assert result.exit_code == 0, result.stderr
    return run


def stored(run) -> list:
    result = run("list", "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


# 1. `liaison serve` on a port in use


def test_serve_on_a_port_in_use_says_so_before_serving(node, monkeypatch):
    import uvicorn

    def never(*args, **kwargs):
        raise AssertionError("uvicorn must not start on a port in use")

    monkeypatch.setattr(uvicorn, "run", never)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = node("serve", "--port", port)
    message = one_line_error(result, CannotListen.exit_code)
    assert message == f"port {port} on 127.0.0.1 is already in use: choose another with --port"
    assert result.exit_code == 2
    assert result.stdout == ""  # nothing announced as served


def test_serve_on_a_host_that_is_not_ours(node, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("uvicorn started"))
    result = node("serve", "--host", "192.0.2.1")  # TEST-NET-1: never this machine's
    assert "not an address of this machine" in one_line_error(result, 2)
    assert result.stdout == ""


# 2. a validator message quotes the value the user wrote


def test_the_validator_message_quotes_the_value_as_written(node, tmp_path):
    path = tmp_path / "malware.json"
    path.write_text(json.dumps(MALWARE))
    result = node("import", path)
    assert result.exit_code == 1
    assert "is_family: 'banana' is not of type 'boolean'" in result.stdout
    assert "'true'" not in result.stdout
    status = json.loads(node("import", path, "--json").stdout)
    assert status["failures"][0]["message"].endswith("is_family: 'banana' is not of type 'boolean'")
    assert MALWARE["id"] not in {o["id"] for o in stored(node)}


# 3. unknown types, kinds and partners in filters are errors


def test_list_of_an_unknown_type_is_an_error_with_a_hint(node):
    message = one_line_error(node("list", "--type", "reprot"), UnknownType.exit_code)
    assert message.endswith("did you mean report?")
    assert "'reprot'" in message
    assert node("list", "--type", "reprot", "--json").stdout == ""
    assert "did you mean" not in one_line_error(node("list", "--type", "zzzzzz"), 2)


def test_list_of_a_known_type_with_no_objects_is_empty(node):
    result = node("list", "--type", "vulnerability", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    result = node("list", "--type", "ipv4-addr", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_list_of_a_custom_type_in_the_store(node, tmp_path):
    custom = {
        "type": "x-acme-widget",
        "spec_version": "2.1",
        "id": "x-acme-widget--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2020-01-01T00:00:00.000Z",
        "modified": "2020-01-01T00:00:00.000Z",
        "name": "widget",
    }
    assert one_line_error(node("list", "--type", "x-acme-widget"), 2)
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(custom))
    assert node("import", path).exit_code == 0
    result = node("list", "--type", "x-acme-widget", "--json")
    assert result.exit_code == 0 and [o["id"] for o in json.loads(result.stdout)] == [custom["id"]]


def test_ledger_show_of_an_unknown_partner_or_kind_is_an_error(node):
    message = one_line_error(node("ledger", "show", "--partner", "XYZ"), UnknownPartner.exit_code)
    assert message == "XYZ is not a known partner"
    assert one_line_error(node("ledger", "show", "--partner", "FRX"), 2).endswith(
        "did you mean FRA?"
    )
    message = one_line_error(node("ledger", "show", "--kind", "disclosur"), 2)
    assert message == "'disclosur' is not a kind of ledger entry: did you mean disclosure?"
    assert "disclosure, policy" in one_line_error(node("ledger", "show", "--kind", "zzz"), 2)
    assert node("ledger", "show", "--partner", "fra", "--kind", "credentials").exit_code == 0


def test_ledger_show_of_a_partner_since_removed(node, tmp_path):
    assert node("partner", "credentials", "FRA").exit_code == 0
    alliance = tmp_path / "without-france.toml"
    alliance.write_text(ALLIANCE)
    assert node("alliance", "load", alliance).exit_code == 0
    result = node("ledger", "show", "--partner", "FRA", "--kind", "credentials", "--json")
    assert result.exit_code == 0, result.stderr
    assert [e["partner"] for e in json.loads(result.stdout)] == ["FRA"]


@pytest.mark.parametrize(
    "command",
    [
        ("explain", "{id}", "--partner", "XYZ"),
        ("disclose", "{id}", "--partner", "XYZ"),
        ("withdraw", "{id}", "--reason", "test", "--partner", "XYZ"),
        ("partner", "set", "XYZ", "--trust", "low"),
        ("partner", "credentials", "XYZ"),
        ("partner", "certificate", "XYZ", "--fingerprint", "ab" * 32),
        ("ledger", "show", "--partner", "XYZ"),
    ],
)
def test_every_unknown_partner_is_exit_2(node, tmp_path, command):
    path = tmp_path / "indicator.json"
    path.write_text(json.dumps(indicator(1)))
    assert node("import", path).exit_code == 0
    before = node("ledger", "show", "--json").stdout
    args = [a.format(id=indicator(1)["id"]) for a in command]
    assert one_line_error(node(*args), 2) == "XYZ is not a known partner"
    assert node("ledger", "show", "--json").stdout == before


# 4. a MISP event imported as STIX


@pytest.mark.parametrize(
    "document", [MISP_EVENT, MISP_EVENT["Event"], [MISP_EVENT]], ids=["export", "bare", "list"]
)
def test_a_misp_event_without_from_misp_says_so(node, tmp_path, document):
    before = stored(node)
    ledger = node("ledger", "show", "--json").stdout
    path = tmp_path / "event.json"
    path.write_text(json.dumps(document))
    message = one_line_error(node("import", path), 2)
    assert message == "this looks like a MISP event: use --from misp"
    assert stored(node) == before
    assert node("ledger", "show", "--json").stdout == ledger


def test_a_payload_with_no_type_that_is_not_misp_keeps_its_message(node):
    result = node("import", "-", input='{"name": "no type"}')
    assert "has no 'type'" in one_line_error(result, 2)


# 5. commands before `liaison init` create nothing


@pytest.mark.parametrize(
    "command",
    [
        ("list",),
        ("partners",),
        ("communities",),
        ("node",),
        ("upgrade",),
        ("show", "report--00000000-0000-4000-8000-000000000000"),
        ("explain", "report--00000000-0000-4000-8000-000000000000", "--partner", "USA"),
        ("list", "--type", "reprot"),
        ("import", "-"),
        ("ledger", "show", "--partner", "XYZ"),
        ("ledger", "verify"),
        ("ledger", "checkpoint"),
        ("policy", "log"),
        ("partner", "credentials", "USA"),
        ("serve",),
    ],
)
def test_a_command_before_init_creates_nothing(run, tmp_path, command):
    home = tmp_path / "home"
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(*command, input=json.dumps(indicator(1)))
    message = one_line_error(result, NodeNotInitialised.exit_code)
    assert result.exit_code == 1
    assert message.startswith(f"no node in {home}") and message.endswith("run `liaison init` first")
    assert not home.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_database_url_to_a_missing_file_creates_nothing(run, tmp_path, monkeypatch):
    database = tmp_path / "elsewhere" / "store.db"
    monkeypatch.setenv("LIAISON_DATABASE_URL", f"sqlite:///{database}")
    result = run("partners")
    assert "run `liaison init` first" in one_line_error(result, 1)
    assert not database.parent.exists() and not (tmp_path / "home").exists()
