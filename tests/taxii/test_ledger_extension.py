"""The ledger over TAXII: receipts for delivered pages, and a partner node that audits the
serving node's log through consistency proofs and cosigns what it checked."""

import json

import httpx
import pytest
import sqlalchemy as sa

from liaison.errors import InvalidProof, LedgerTampered
from liaison.ledger import log
from liaison.ledger.audit import Witness, audit, last_seen
from liaison.ledger.note import cosigner_key, parse_verifier_key, verify_cosignature
from liaison.ledger.receipts import verify_receipt
from liaison.node import init_node, load_signing_key
from liaison.settings import Settings
from liaison.store.engine import write_transaction
from liaison.store.schema import (
    ledger_entries,
)
from tests.conftest import HTTP_TIMEOUT
from tests.taxii.conftest import ACCEPT, rewrite_history

HEADER = "X-Liaison-Ledger-Entries"


def page_of(live, partner, limit=5):
    cid = live.collection_id("intelligence")
    with live.client(partner) as client:
        return client.get(f"/api/collections/{cid}/objects/", params={"limit": limit})


def delivered_bytes(response):
    """Each object of a page as the exact bytes the server sent."""
    return {
        obj["id"]: json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        for obj in json.loads(response.content)["objects"]
    }


def node_verifier(live):
    return log.node_verifier(live.node.country, live.node.public_key)


def test_a_page_names_its_ledger_entries_and_a_receipt_proves_them(live):
    first = page_of(live, "USA")
    entries = first.headers[HEADER]
    assert len(entries.split(",")) == len(delivered_bytes(first))
    again = page_of(live, "USA")  # the same copies: the same entries, nothing new
    assert again.headers[HEADER] == entries
    with live.client("USA") as client:
        response = client.get("/api/ledger/receipts/", params={"entry": entries})
    assert response.status_code == 200
    receipt = response.json()
    checkpoint = verify_receipt(receipt, node_verifier(live), delivered_bytes(first))
    assert checkpoint.size == receipt["tree_size"]
    for item in receipt["entries"]:
        assert json.loads(item["entry"])["partner"] == "USA"
    # Another partner's disclosures, and entries that do not exist, are all just not found.
    with live.client("FRA") as client:
        assert client.get("/api/ledger/receipts/", params={"entry": entries}).status_code == 404
        assert client.get("/api/ledger/receipts/", params={"entry": "999999"}).status_code == 404
        assert client.get("/api/ledger/receipts/", params={"entry": "x"}).status_code == 400


def test_a_receipt_fails_for_other_bytes_or_a_forged_proof(live):
    first = page_of(live, "USA")
    with live.client("USA") as client:
        receipt = client.get(
            "/api/ledger/receipts/", params={"entry": first.headers[HEADER]}
        ).json()
    delivered = delivered_bytes(first)
    some = next(iter(delivered))
    with pytest.raises(InvalidProof, match="other bytes"):
        verify_receipt(receipt, node_verifier(live), {**delivered, some: b"{}"})
    forged = json.loads(json.dumps(receipt))
    entry = forged["entries"][0]
    entry["entry"] = entry["entry"].replace('"USA"', '"GBR"')
    with pytest.raises(InvalidProof):
        verify_receipt(forged, node_verifier(live))


@pytest.fixture
def partner_node(tmp_path):
    """The USA agency's own node (SQLite), which audits the CAN node it receives from."""
    home = tmp_path / "usa"
    settings = Settings.from_env(
        {"LIAISON_HOME": str(home), "LIAISON_DATABASE_URL": f"sqlite:///{home}/usa.db"}
    )
    node, _ = init_node(settings, "USA", "US partner agency")
    yield node
    node.engine.dispose()


def api_client(live, partner):
    issued = live.credentials[partner]
    return httpx.Client(
        base_url=f"{live.url}/api/",
        auth=(issued.username, issued.password),
        headers=ACCEPT,
        timeout=HTTP_TIMEOUT,
    )


def run_audit(partner_node, live, witness=None):
    with api_client(live, "USA") as client, write_transaction(partner_node.engine) as conn:
        return audit(conn, client, node_verifier(live), witness)


def test_a_partner_node_proves_each_new_checkpoint_consistent_with_the_last(live, partner_node):
    page_of(live, "USA")
    first = run_audit(partner_node, live)
    assert first.previous is None
    page_of(live, "FRA", limit=20)  # the log grows
    second = run_audit(partner_node, live)
    assert second.previous == first.checkpoint.size
    assert second.checkpoint.size > first.checkpoint.size
    with partner_node.engine.connect() as conn:
        assert last_seen(conn, first.origin)[0] == second.checkpoint


def test_a_partner_catches_a_node_that_rewrote_its_history(live, partner_node):
    page_of(live, "USA")
    run_audit(partner_node, live)

    def hide_usa(body):
        if body.get("partner") == "USA" and body.get("kind") == "disclosure":
            body["partner"] = "GBR"
        return body

    rewrite_history(live.node.engine, hide_usa)
    page_of(live, "FRA")  # the rewritten log grows past what USA saw
    with pytest.raises(LedgerTampered, match="rewrote its log"):
        run_audit(partner_node, live)


def test_a_partner_catches_a_node_that_truncated_its_log(live, partner_node):
    page_of(live, "USA", limit=20)
    seen = run_audit(partner_node, live)
    rewrite_history(live.node.engine, lambda body: body, keep=seen.checkpoint.size - 3)
    with pytest.raises(LedgerTampered, match="it had"):
        run_audit(partner_node, live)


def test_a_witness_cosigns_and_the_node_shows_the_cosigned_checkpoint(live, partner_node):
    key = load_signing_key(partner_node.settings.home)
    name = log.origin_of("USA", partner_node.public_key)
    vkey = cosigner_key(name, key.public_key())
    with write_transaction(live.node.engine) as conn:
        log.add_witness(conn, "USA", vkey)
    page_of(live, "USA")
    result = run_audit(partner_node, live, Witness(name, key))
    assert result.cosigned
    with live.node.engine.connect() as conn:
        latest = log.latest_checkpoint(conn)
        verified = log.verify(conn, live.node.country, live.node.public_key)
    assert latest.checkpoint.size == result.checkpoint.size
    witness = parse_verifier_key(vkey)
    assert verify_cosignature(latest.note, witness) > 0
    assert verified.cosignatures == 1
    # A cosignature by a key the node does not know as USA's witness is refused.
    stranger = load_signing_key(live.node.settings.home)
    page_of(live, "FRA")  # a new checkpoint, not yet cosigned
    with pytest.raises(Exception, match="refused"):
        run_audit(partner_node, live, Witness(name, stranger))


def test_consistency_and_checkpoint_errors_are_taxii_errors(live):
    with live.client("USA") as client:
        checkpoint = client.get("/api/ledger/checkpoint/").json()
        size = checkpoint["tree_size"]
        too_far = client.get("/api/ledger/consistency/", params={"first": 1, "second": size + 100})
        assert too_far.status_code == 404 and too_far.json()["http_status"] == "404"
        assert (
            client.get("/api/ledger/consistency/", params={"first": 0, "second": 1}).status_code
            == 400
        )
        bad = client.post(
            "/api/ledger/cosignatures/",
            content=b'{"checkpoint": "not a note"}',
            headers={"Content-Type": "application/taxii+json;version=2.1"},
        )
        assert bad.status_code == 400 and "title" in bad.json()
    with live.client() as anonymous:
        assert anonymous.get("/api/ledger/checkpoint/").status_code == 401
    assert checkpoint["verifier_key"] == node_verifier(live).vkey


def test_the_ledger_tables_start_with_the_node_key(live):
    with live.node.engine.connect() as conn:
        first = conn.execute(
            sa.select(ledger_entries.c.body).where(ledger_entries.c.seq == 0)
        ).scalar_one()
    assert json.loads(first)["kind"] == "node-key"


def test_a_receipt_for_an_entry_beyond_any_integer_is_not_found(live):
    with live.client("USA") as client:
        response = client.get("/api/ledger/receipts/", params={"entry": str(2**63)})
    assert response.status_code == 404
    assert response.json()["http_status"] == "404"
