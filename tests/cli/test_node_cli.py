"""`liaison upgrade` across revision 0006: every stored version gets its owner, and the
release classes are decided anew with it."""

import json

from alembic import command
from typer.testing import CliRunner

from liaison.cli import app
from liaison.demo import DEFAULT_ALLIANCE as ALLIANCE
from liaison.markings.tlp import TLP_GREEN
from liaison.store.engine import create_engine
from liaison.store.migrate import _config

runner = CliRunner()
OBJECT_ID = "indicator--0b0b0b0b-0b0b-4b0b-8b0b-0b0b0b0b0b0b"


def test_upgrade_gives_a_partners_objects_their_owner(tmp_path, monkeypatch):
    """A store of revision 0005 holds an object USA sent without created_by_ref: then it was
    decided as the node's own; after `liaison upgrade` it is USA's."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    monkeypatch.setenv("LIAISON_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LIAISON_DATABASE_URL", url)
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert runner.invoke(app, ["alliance", "load", str(ALLIANCE)]).exit_code == 0
    engine = create_engine(url)
    with engine.begin() as connection:
        command.downgrade(_config(connection), "0005")
    body = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": OBJECT_ID,
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "pattern": "[ipv4-addr:value = '203.0.113.5']",
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
        "object_marking_refs": [TLP_GREEN],
    }
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO objects (id, version, modified, type, spec_version, revoked, latest,"
            " date_added, received_from, body, release_class) VALUES (?, 1, ?, 'indicator',"
            " '2.1', 0, 1, 99, 'USA', ?, 'stale')",
            (OBJECT_ID, body["modified"], json.dumps(body)),
        )
    engine.dispose()
    result = runner.invoke(app, ["upgrade"])
    assert result.exit_code == 0, result.stderr
    assert "Release classes rebuilt with their owners" in result.stdout
    shown = json.loads(runner.invoke(app, ["show", OBJECT_ID, "--json"]).stdout)
    assert shown["id"] == OBJECT_ID
    explained = json.loads(
        runner.invoke(app, ["explain", OBJECT_ID, "--partner", "USA", "--json"]).stdout
    )
    assert [r["code"] for r in explained["reasons"]] == ["owner"]
    for_gbr = json.loads(
        runner.invoke(app, ["explain", OBJECT_ID, "--partner", "GBR", "--json"]).stdout
    )
    assert any("which USA shares with GBR" in r["text"] for r in for_gbr["reasons"])
