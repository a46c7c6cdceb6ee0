"""Every partner's copy of a report carries its own fingerprint, the same on every delivery,
and the ledger entry of the disclosure names it."""

import hashlib
import json

from liaison.fingerprint.copies import SCHEME, code_id, fingerprint_secret
from liaison.fingerprint.slots import find_slots
from liaison.ledger import log
from liaison.node import load_signing_key
from liaison.stix.signature import unsigned
from tests.taxii.conftest import envelope_objects


def page_of(live, partner):
    cid = live.collection_id("intelligence")
    with live.client(partner) as client:
        return client.get(f"/api/collections/{cid}/objects/", params={"limit": 1000})


def reports_in(response):
    return {o["id"]: o for o in envelope_objects(response) if o["type"] == "report"}


def reports_of(live, partner):
    return reports_in(page_of(live, partner))


def test_partners_get_different_wording_of_the_same_report_every_time(live):
    first = page_of(live, "USA")
    usa, fra = reports_in(first), reports_of(live, "FRA")
    shared = [
        i
        for i in usa
        if "description" in fra.get(i, {}) and find_slots(usa[i].get("description", ""))
    ]
    assert shared, "the demo has reports both may see"
    assert any(usa[i]["description"] != fra[i]["description"] for i in shared)
    prose = {"name", "description"}  # a report's text fields
    for i in shared:  # only the prose differs (and so the signature over each copy)
        assert {k: v for k, v in unsigned(usa[i]).items() if k not in prose} == {
            k: v for k, v in unsigned(fra[i]).items() if k not in prose
        }
    assert page_of(live, "USA").content == first.content  # a re-delivery is byte-identical


def test_the_disclosure_entry_names_the_fingerprint(live):
    usa = reports_of(live, "USA")
    secret = fingerprint_secret(load_signing_key(live.node.settings.home))
    with live.node.engine.connect() as connection:
        entries = [e.content for e in log.entries(connection, partner="USA", kind="disclosure")]
    marked = [e for e in entries if e["object_id"] in usa and "fingerprint" in e]
    assert marked
    for entry in marked:
        scheme, _, code = entry["fingerprint"].rpartition(":")
        assert scheme == SCHEME
        version = usa[entry["object_id"]]["modified"]
        assert code == code_id(secret, "USA", entry["object_id"], version)
    payload = json.dumps(usa[marked[0]["object_id"]], ensure_ascii=False, separators=(",", ":"))
    assert hashlib.sha256(payload.encode()).hexdigest() == marked[0]["sha256"]
