"""`liaison ledger verify/show/proof/checkpoint/witness`, and `liaison upgrade` bringing
records made before the ledger into it."""

import base64
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from typer.testing import CliRunner

from liaison.cli import app, render
from liaison.cli import ledger as ledger_cli
from liaison.demo import DEFAULT_ALLIANCE as ALLIANCE
from liaison.ledger import log, merkle
from liaison.ledger.disclosures import Disclosure, record_disclosures
from liaison.ledger.note import cosigner_key, open_checkpoint, parse_verifier_key
from liaison.node import open_node
from liaison.settings import Settings
from liaison.store.engine import create_engine, write_transaction
from liaison.store.migrate import _config, upgrade
from liaison.store.schema import ledger_entries
from tests.ledger.test_anchor import cut_back

runner = CliRunner()


@pytest.fixture
def run(demo):
    """The demo's node with five disclosures to USA recorded."""
    node = open_node(Settings.from_env())
    with write_transaction(node.engine) as connection:
        record_disclosures(
            connection,
            [
                Disclosure(
                    "USA", f"indicator--{i:08d}-0000-4000-8000-000000000000", 1, "c" * 64, b"x"
                )
                for i in range(5)
            ],
        )
    node.engine.dispose()
    return demo


def as_json(result):
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_show_filters_by_partner_object_and_kind(run):
    usa = as_json(run("ledger", "show", "--partner", "usa", "--json"))
    assert [e["kind"] for e in usa] == ["disclosure"] * 5
    assert all(e["partner"] == "USA" for e in usa)
    one = as_json(run("ledger", "show", "--object", usa[2]["object_id"], "--json"))
    assert [e["seq"] for e in one] == [usa[2]["seq"]]
    policy = as_json(run("ledger", "show", "--kind", "policy", "--json"))
    assert policy and all(e["kind"] == "policy" for e in policy)
    assert "indicator--00000002" in run("ledger", "show", "--partner", "USA").stdout


def test_checkpoint_and_proof_verify_with_the_printed_key(run):
    checkpoint = as_json(run("ledger", "checkpoint", "--json"))
    verifier = parse_verifier_key(checkpoint["verifier_key"])
    signed = open_checkpoint(checkpoint["checkpoint"], [verifier], origin=checkpoint["origin"])
    assert signed.size == checkpoint["tree_size"]
    for seq in (0, signed.size - 1):
        proof = as_json(run("ledger", "proof", str(seq), "--json"))
        merkle.verify_inclusion(
            merkle.leaf_hash(proof["entry"].encode()),
            seq,
            proof["tree_size"],
            [base64.b64decode(h) for h in proof["inclusion_proof"]],
            signed.root,
        )
    assert run("ledger", "proof", "99999").exit_code == 2


def test_verify_passes_then_names_the_first_tampered_entry(run):
    verified = as_json(run("ledger", "verify", "--json"))
    assert verified["verified"] is True and verified["tree_size"] > 5
    node = open_node(Settings.from_env())
    with write_transaction(node.engine) as connection:
        body = connection.execute(
            sa.select(ledger_entries.c.body).where(ledger_entries.c.seq == 3)
        ).scalar_one()
        connection.execute(
            ledger_entries.update()
            .where(ledger_entries.c.seq == 3)
            .values(body=body.replace('"USA"', '"GBR"'))
        )
    node.engine.dispose()
    result = run("ledger", "verify", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["first_bad_entry"] == 3
    plain = run("ledger", "verify")
    assert plain.exit_code == 1 and "entry 3" in plain.stderr


def test_verify_shows_its_progress_on_a_terminal_and_never_with_json(run, monkeypatch):
    terminal = io.StringIO()
    monkeypatch.setattr(render, "err_console", Console(file=terminal, force_terminal=True))
    result = run("ledger", "verify", "--json")
    assert json.loads(result.stdout)["verified"] is True
    assert terminal.getvalue() == ""
    assert run("ledger", "verify").exit_code == 0
    assert "Verifying the ledger" in terminal.getvalue()


def test_show_names_the_kinds_the_ledger_has():
    assert ledger_cli.KINDS == log.KINDS


def test_witness_add_checks_the_key_and_the_partner(run):
    key = cosigner_key("usa.example/witness", Ed25519PrivateKey.generate().public_key())
    assert as_json(run("ledger", "witness", "add", "usa", key, "--json")) == {
        "partner": "USA",
        "witness": "usa.example/witness",
    }
    assert as_json(run("ledger", "witness", "list", "--json"))[0]["vkey"] == key
    assert run("ledger", "witness", "add", "XXX", key).exit_code == 2
    assert run("ledger", "witness", "add", "USA", "not-a-key").exit_code == 2
    shown = as_json(run("ledger", "show", "--kind", "witness", "--json"))
    assert shown[0]["partner"] == "USA"


def test_upgrade_enters_earlier_records_into_the_ledger(tmp_path, monkeypatch):
    """A store of revision 0003 (before the ledger) with a disclosure and a policy change:
    after `liaison upgrade` each has its entry and the ledger verifies."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    monkeypatch.setenv("LIAISON_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LIAISON_DATABASE_URL", url)
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert runner.invoke(app, ["alliance", "load", str(ALLIANCE)]).exit_code == 0
    engine = create_engine(url)
    upgrade(engine, "0003")  # no-op: already newer; go back as an older store would be
    with engine.begin() as connection:
        command.downgrade(_config(connection), "0003")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO disclosures (partner, object_id, version, digest, release_class, at) "
            f"VALUES ('USA', 'x--1', 0, '{'d' * 64}', '{'c' * 64}', 1)"
        )
    engine.dispose()
    result = runner.invoke(app, ["upgrade"])
    assert result.exit_code == 0, result.stderr
    assert "2 earlier disclosures and policy changes entered" in result.stdout
    verified = as_json(runner.invoke(app, ["ledger", "verify", "--json"]))
    assert verified["verified"] is True
    kinds = [e["kind"] for e in as_json(runner.invoke(app, ["ledger", "show", "--json"]))]
    assert kinds == ["policy", "disclosure"]


def test_verify_holds_the_log_to_the_anchor_file(run):
    """Exit 0 and the anchor's checkpoints on an untouched node; exit 1, naming the first
    missing entry, once the log is cut back and its stored checkpoints deleted; exit 1 and
    what to do when the anchor file is missing."""
    fresh = as_json(run("ledger", "verify", "--json"))
    assert fresh["anchor"]["checkpoints"] == 0 and "no checkpoint" in fresh["warnings"][0]
    signed = as_json(run("ledger", "checkpoint", "--json"))
    path = Path(signed["anchor_file"])
    assert path == Path(Settings.from_env().ledger_anchor_file).absolute() and path.exists()
    verified = as_json(run("ledger", "verify", "--json"))
    assert verified["anchor"] == {
        "file": str(path),
        "checkpoints": 1,
        "tree_size": signed["tree_size"],
    }
    assert verified["warnings"] == [] and verified["disclosures"] == 5
    plain = run("ledger", "verify")
    assert plain.exit_code == 0 and "anchored: 1 checkpoints" in plain.stdout

    node = open_node(Settings.from_env())
    with write_transaction(node.engine) as connection:
        cut_back(connection, signed["tree_size"] - 2)
    node.engine.dispose()
    result = run("ledger", "verify", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["first_bad_entry"] == signed["tree_size"] - 2

    path.unlink()
    result = run("ledger", "verify", "--json")  # no checkpoint left anywhere: nothing to say
    assert result.exit_code == 0 and json.loads(result.stdout)["anchor"]["checkpoints"] == 0


def test_verify_reports_a_missing_anchor_file(run):
    signed = as_json(run("ledger", "checkpoint", "--json"))
    Path(signed["anchor_file"]).unlink()
    result = run("ledger", "verify", "--json")
    assert result.exit_code == 1
    failed = json.loads(result.stdout)
    assert failed["verified"] is False and failed["first_bad_entry"] is None
    assert "Restore the file" in failed["error"]
    plain = run("ledger", "verify")
    assert plain.exit_code == 1 and "is missing" in plain.stderr
    as_json(run("ledger", "checkpoint", "--json"))  # made again from the stored checkpoints
    assert as_json(run("ledger", "verify", "--json"))["anchor"]["checkpoints"] == 1
