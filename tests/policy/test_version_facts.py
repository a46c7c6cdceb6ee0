"""What a server remembers of stored versions (``VersionFacts``) never outlives the version:
a version removed and stored again with other references is copied by what it says now."""

from __future__ import annotations

from datetime import date

from liaison.alliance import Partner
from liaison.markings.tlp import TLP_CLEAR, TLP_RED
from liaison.node import Node
from liaison.policy.copies import VersionFacts, released_copies
from liaison.policy.grants import redecide, register_classes
from liaison.release.rights import read_rights
from liaison.store.alliance import save_alliance
from liaison.store.engine import write_transaction
from liaison.store.objects import Versions, add_objects, delete_versions
from liaison.store.pages import PageQuery, page
from tests.stix_factory import indicator

STAMP = "2026-01-01T00:00:00.000Z"
REPORT = "report--5a0b8d2e-3c1f-4e6a-9b7d-2f8e1c0a4b6d"


def _report(cites: str) -> dict:
    return {
        "type": "report",
        "spec_version": "2.1",
        "id": REPORT,
        "created": STAMP,
        "modified": STAMP,
        "name": "Same id, same version, other references",
        "published": STAMP,
        "object_refs": [cites],
        "object_marking_refs": [TLP_CLEAR],
    }


def _store(node: Node, batch: list[dict]) -> None:
    with write_transaction(node.engine) as connection:
        added = add_objects(connection, batch)
        assert set(added.outcomes) == {"added"}, added.messages
        register_classes(connection, added.classes)
        redecide(connection)


def _copies(node: Node, facts: VersionFacts) -> list[dict]:
    with node.engine.connect() as connection:
        rights = read_rights(connection, "USA", date.today())
        found = page(connection, "USA", PageQuery(types=("report",)), rights.granted)
        return [c.object for c in released_copies(connection, "USA", found.versions, facts)]


def test_a_version_stored_again_is_copied_by_what_it_says_now(node: Node) -> None:
    usa = Partner(country="USA", name="US agency", clearance="USA:TS", trust="high")
    with write_transaction(node.engine) as connection:
        save_alliance(connection, (usa,), (), ())
    seen = {**indicator(1), "created_by_ref": node.identity_id}
    seen["object_marking_refs"] = [TLP_CLEAR]
    hidden = {**indicator(2), "created_by_ref": node.identity_id}
    hidden["object_marking_refs"] = [TLP_RED]
    _store(node, [seen, hidden, _report(seen["id"])])
    facts = VersionFacts()  # one per server: shared by every request
    (copy,) = _copies(node, facts)
    assert copy["object_refs"] == [seen["id"]]

    # The node withdraws its report and stores the same id and version citing only what
    # the USA may not see: the report is no longer complete for it.
    with write_transaction(node.engine) as connection:
        assert delete_versions(connection, node.country, REPORT, Versions(all=True)) == 1
    _store(node, [_report(hidden["id"])])
    assert _copies(node, facts) == []
    assert _copies(node, VersionFacts()) == []
