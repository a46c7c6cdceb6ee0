"""The one release path: TAXII and `liaison disclose` send the same bytes under one ledger
entry; rights follow every policy change at once; nothing is sent unrecorded."""

import hashlib
import json

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from liaison.alliance import Partner
from liaison.cli import app as cli_app
from liaison.policy.grants import redecide
from liaison.release import deliver as deliver_module
from liaison.store.alliance import read_partners, update_partner
from liaison.store.engine import write_transaction
from liaison.store.schema import disclosures
from tests.taxii.conftest import envelope_objects

REPORT = "Trudeau says Canada"


def report_id(live, partner="USA"):
    cid = live.collection_id("intelligence")
    with live.client(partner) as client:
        listed = client.get(f"/api/collections/{cid}/objects/", params={"limit": 1000})
    return next(o["id"] for o in envelope_objects(listed) if o.get("name", "").startswith(REPORT))


def taxii_copy(live, partner, object_id):
    cid = live.collection_id("intelligence")
    with live.client(partner) as client:
        response = client.get(f"/api/collections/{cid}/objects/{object_id}/")
    assert response.status_code == 200
    (obj,) = envelope_objects(response)
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    return data, response.headers["X-Liaison-Ledger-Entries"]


def disclose(live, monkeypatch, partner, object_id):
    monkeypatch.setenv("LIAISON_HOME", str(live.node.settings.home))
    monkeypatch.setenv("LIAISON_DATABASE_URL", live.node.settings.database_url)
    result = CliRunner().invoke(cli_app, ["disclose", object_id, "--partner", partner, "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_taxii_and_disclose_send_the_same_bytes_under_one_ledger_entry(live, monkeypatch):
    rid = report_id(live)
    # TAXII first, then by hand.
    data, entries = taxii_copy(live, "USA", rid)
    by_hand = disclose(live, monkeypatch, "USA", rid)
    assert by_hand["sha256"] == hashlib.sha256(data).hexdigest()
    assert str(by_hand["ledger_entry"]) == entries
    # By hand first, then TAXII: still one copy, one entry.
    by_hand = disclose(live, monkeypatch, "FRA", rid)
    data, entries = taxii_copy(live, "FRA", rid)
    assert by_hand["sha256"] == hashlib.sha256(data).hexdigest()
    assert str(by_hand["ledger_entry"]) == entries
    with live.node.engine.connect() as connection:
        rows = connection.execute(
            sa.select(disclosures.c.partner).where(disclosures.c.object_id == rid)
        ).scalars()
        assert sorted(rows) == ["FRA", "USA"]


def test_rights_follow_a_policy_change_at_once(live):
    cid = live.collection_id("intelligence")
    with live.client("USA") as client:
        before = client.get(f"/api/collections/{cid}/objects/", params={"limit": 1000})
        assert envelope_objects(before)  # rights and grants are now cached
        with write_transaction(live.node.engine) as connection:
            usa = next(p for p in read_partners(connection) if p.country == "USA")
            update_partner(
                connection, Partner.model_validate({**usa.model_dump(), "status": "suspended"})
            )
            redecide(connection, partners=["USA"])
        after = client.get(f"/api/collections/{cid}/objects/", params={"limit": 1000})
    assert after.status_code == 200
    assert envelope_objects(after) == []


def test_nothing_is_sent_when_the_disclosure_cannot_be_recorded(live, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(deliver_module, "record_disclosures", broken)
    cid = live.collection_id("intelligence")
    with live.client("TUR") as client:
        response = client.get(f"/api/collections/{cid}/objects/")
    assert response.status_code == 500
    assert b"objects" not in response.content
    with live.node.engine.connect() as connection:
        count = connection.execute(
            sa.select(sa.func.count()).where(disclosures.c.partner == "TUR")
        ).scalar_one()
    assert count == 0


@pytest.mark.parametrize("partner", ["USA", "TUR"])
def test_a_repeated_page_writes_nothing(live, partner, monkeypatch):
    cid = live.collection_id("intelligence")
    with live.client(partner) as client:
        first = client.get(f"/api/collections/{cid}/objects/", params={"limit": 1000})
        with live.node.engine.connect() as connection:
            before = connection.exec_driver_sql("SELECT COUNT(*) FROM ledger_entries").scalar()
        writes = []
        opened = deliver_module.write_transaction

        def counted(engine):
            writes.append(engine)
            return opened(engine)

        monkeypatch.setattr(deliver_module, "write_transaction", counted)
        again = client.get(f"/api/collections/{cid}/objects/", params={"limit": 1000})
    assert again.content == first.content
    assert writes == []  # not even an empty write transaction
    with live.node.engine.connect() as connection:
        after = connection.exec_driver_sql("SELECT COUNT(*) FROM ledger_entries").scalar()
    assert after == before
