"""The `liaison` command as a user and a script see it."""

import json
import re

import pytest

from liaison.markings.tlp import TLP_CLEAR
from tests.conftest import EXAMPLES, TEXTS
from tests.stix_factory import bundle, indicator, invalid_indicator

COMMANDS = [
    "init",
    "upgrade",
    "node",
    "partners",
    "communities",
    "import",
    "show",
    "list",
    "demo",
    "alliance",
]


def json_of(result):
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_help_lists_every_command_with_one_line_of_help(run):
    result = run("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert re.search(rf"│ {command}\s+\S", result.stdout), command


def test_demo_prints_the_alliance_and_its_reports(run):
    result = run("demo")
    assert result.exit_code == 0, result.stderr
    for text in ("Partners", "FVEY", "eFP Latvia", "Reports loaded", "Holdings", "TLP:CLEAR"):
        assert text in result.stdout
    assert "added" in result.stdout
    again = run("demo")
    assert "reopened" in again.stdout and "added" not in again.stdout.split("Reports loaded")[1]


def test_demo_on_the_news_texts(run):
    data = json_of(run("demo", "--docs", str(TEXTS), "--json"))
    names = {r["name"] for r in json_of(run("list", "--type", "report", "--json"))}
    headline = (
        "Canada will keep sharing intelligence with allies despite leak, defence minister says"
    )
    assert headline in names
    assert {"type": "report", "marking": "TLP:CLEAR", "count": 5} in data["holdings"]
    assert data["visibility"]["RUS"]["release"] == 0


def test_node_json_is_the_stix_identity(demo):
    identity = json_of(demo("node", "--json"))
    assert identity["type"] == "identity" and identity["name"]
    shown = demo("node").stdout
    assert "signing key" in shown and "public key" in shown


def test_list_json_is_an_array_of_stix_objects(demo):
    objects = json_of(demo("list", "--json"))
    assert isinstance(objects, list) and len({o["id"] for o in objects}) == len(objects)
    assert all(o["id"].startswith(o["type"] + "--") for o in objects)
    # The intelligence bundle, and what the ingest made of the documents.
    assert {"report", "identity", "location", "intrusion-set", "grouping"} <= {
        o["type"] for o in objects
    }
    reports = json_of(demo("list", "--type", "report", "--json"))
    assert len(reports) == 12 and all(r["type"] == "report" for r in reports)
    documents = [r for r in reports if r["object_marking_refs"] == [TLP_CLEAR]]
    assert len(documents) == 6


def test_partners_and_communities_json(demo):
    partners = json_of(demo("partners", "--json"))
    usa = next(p for p in partners if p["country"] == "USA")
    assert usa["clearance"] == "USA:TS" and "FVEY" in usa["communities"]
    assert next(p for p in partners if p["country"] == "RUS")["status"] == "non-partner"
    communities = json_of(demo("communities", "--json"))
    efp = next(c for c in communities if c["name"] == "eFP Latvia")
    assert {"country": "ALB", "joined": "2017-06-19", "left": None} in efp["members"]


def test_import_show_and_versions(demo, tmp_path):
    path = tmp_path / "bundle.json"
    first = indicator(1)
    second = indicator(1, modified="2017-06-01T00:00:00.000Z", object_id=first["id"])
    path.write_text(json.dumps(bundle(first, second)))
    status = json_of(demo("import", str(path), "--json"))
    assert status["success_count"] == 2 and status["failure_count"] == 0
    assert json_of(demo("show", first["id"], "--json"))["modified"] == second["modified"]
    versions = json_of(demo("show", first["id"], "--all-versions", "--json"))
    assert [v["modified"] for v in versions] == [first["modified"], second["modified"]]
    again = demo("import", str(path))
    assert again.exit_code == 0 and "2 already present" in again.stdout


def test_import_from_stdin(demo):
    result = demo("import", "-", "--json", input=json.dumps(indicator(7)))
    assert json_of(result)["successes"][0]["id"] == indicator(7)["id"]


def test_import_with_invalid_objects_reports_each_and_exits_1(demo, tmp_path):
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(bundle(indicator(1), invalid_indicator(2))))
    result = demo("import", str(path))
    assert result.exit_code == 1
    assert "rejected" in result.stdout and "'pattern' is a required property" in result.stdout
    assert "1 added" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json at all", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"name": "no type"}', "no 'type'"),
        (b"\xff\xfe binary", "not UTF-8"),
        (b'{"type": "indicator", "id": "indicator--1", "x": "[[[["}', "valid STIX 'id'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(demo, tmp_path, content, message):
    before = json_of(demo("list", "--json"))
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    result = demo("import", str(path))
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert json_of(demo("list", "--json")) == before


def test_oversized_deep_and_huge_string_inputs(demo, tmp_path, monkeypatch):
    monkeypatch.setenv("LIAISON_MAX_BUNDLE_BYTES", "10000")
    monkeypatch.setenv("LIAISON_MAX_STRING_BYTES", "1000")
    monkeypatch.setenv("LIAISON_MAX_NESTING", "8")
    cases = {
        "size": json.dumps(bundle(*[indicator(n) for n in range(40)])),
        "string": json.dumps(dict(indicator(1), description="x" * 2000)),
        "nesting": json.dumps(dict(indicator(1), x_deep=json.loads("[" * 20 + "]" * 20))),
    }
    for name, text in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(text)
        result = demo("import", str(path))
        assert result.exit_code == 2, name
        assert "limit" in result.stderr and "Traceback" not in result.stderr


def test_missing_file_and_unknown_object(demo):
    result = demo("import", "/nonexistent/bundle.json")
    assert result.exit_code == 2 and "cannot read" in result.stderr
    result = demo("show", "report--00000000-0000-4000-8000-000000000000")
    assert result.exit_code == 2 and "no object" in result.stderr


def test_commands_before_init_say_what_to_do(run):
    result = run("list")
    assert result.exit_code == 1 and "liaison init" in result.stderr


def test_init_then_alliance_load(run):
    assert run("init").exit_code == 0
    result = run("alliance", "load", str(EXAMPLES / "alliance.toml"))
    assert result.exit_code == 0 and "13 partners added" in result.stdout
    assert "already initialised" in run("init").stdout.lower()
    bad = run("alliance", "load", "/nonexistent.toml")
    assert bad.exit_code == 2 and "cannot read alliance file" in bad.stderr


def test_bad_setting_is_a_clear_error(run, monkeypatch):
    monkeypatch.setenv("LIAISON_MAX_BUNDLE_BYTES", "lots")
    result = run("init")
    assert result.exit_code == 2 and "LIAISON_MAX_BUNDLE_BYTES" in result.stderr
