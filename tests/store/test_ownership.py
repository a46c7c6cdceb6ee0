"""Ownership of versions against a simple reference: random sequences of writes and deletes
by random partners and the node, on SQLite and PostgreSQL.

After every action the store holds exactly what the reference holds (who owns each id, its
versions and their text), no partner's action changes which versions of another owner's
objects any partner may see, and each partner's "last" is the newest version it may see.
40 examples under the "ci" Hypothesis profile, 10 under "dev" (tests/conftest.py);
LIAISON_OWNERSHIP_EXAMPLES sets another number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liaison.alliance import Clearance, Community, Membership, Partner
from liaison.importer import import_objects
from liaison.markings.handling import handling_extension, marking_definition
from liaison.markings.tlp import TLP_CLEAR, TLP_GREEN, TLP_RED
from liaison.policy.grants import redecide, redecide_markings
from liaison.stix.ids import derived_id
from liaison.store.alliance import save_alliance
from liaison.store.engine import write_transaction
from liaison.store.objects import Versions, delete_versions, version_of
from liaison.store.pages import PageQuery, page
from liaison.store.schema import objects, withdrawals
from tests.conftest import examples

EXAMPLES = examples(40, "LIAISON_OWNERSHIP_EXAMPLES")
PARTNERS = ("USA", "GBR", "FRA")
ACTORS = ("CAN", *PARTNERS)
IDENTITIES = {code: derived_id("identity", f"agency:{code}") for code in PARTNERS}
STAMPS = ("2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z")
REPORT_IDS = tuple(f"report--0000000{n}-0000-4000-8000-000000000000" for n in range(4))
# A marking nobody has defined yet: whoever defines it first owns the definition.
PENDING = "marking-definition--0000000a-0000-4000-8000-000000000000"
CREATORS = ("absent", "self", "CAN", *PARTNERS)


def node_definitions(node_identity: str) -> list[dict[str, Any]]:
    return [
        marking_definition(node_identity, "CAN:SECRET", ["FVEY"]),
        marking_definition(node_identity, "CAN:CONFIDENTIAL", ["NATO"]),
    ]


def pending_definition(releasable_to: str, created: str) -> dict[str, Any]:
    """A definition of the pending marking that releases to a community, or says nothing."""
    if releasable_to == "everybody":
        return {
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": PENDING,
            "created": created,
            "definition_type": "statement",
            "definition": {"statement": "releasable to everybody"},
        }
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": PENDING,
        "created": created,
        "extensions": handling_extension(None, [releasable_to]),
    }


@dataclass(frozen=True)
class Write:
    actor: str
    object_id: str
    stamp: str
    creator: str
    marking: str
    text: str

    def body(self, node_identity: str, definitions: list[dict[str, Any]]) -> dict[str, Any]:
        if self.object_id == PENDING:
            return pending_definition(self.text, self.stamp)
        obj: dict[str, Any] = {
            "type": "report",
            "spec_version": "2.1",
            "id": self.object_id,
            "created": STAMPS[0],
            "modified": self.stamp,
            "name": self.text,
            "published": STAMPS[0],
            "object_refs": [IDENTITIES["USA"]],
        }
        creator = self.actor if self.creator == "self" else self.creator
        if creator != "absent":
            obj["created_by_ref"] = node_identity if creator == "CAN" else IDENTITIES[creator]
        marking = {
            "clear": TLP_CLEAR,
            "green": TLP_GREEN,
            "red": TLP_RED,
            "secret-fvey": definitions[0]["id"],
            "confidential-nato": definitions[1]["id"],
            "pending": PENDING,
        }[self.marking]
        obj["object_marking_refs"] = [marking]
        return obj


@dataclass(frozen=True)
class Delete:
    actor: str
    object_id: str
    match: Versions


writes = st.builds(
    Write,
    actor=st.sampled_from(ACTORS),
    object_id=st.sampled_from((*REPORT_IDS, PENDING)),
    stamp=st.sampled_from(STAMPS),
    creator=st.sampled_from(CREATORS),
    marking=st.sampled_from(
        ("clear", "green", "red", "secret-fvey", "confidential-nato", "pending")
    ),
    text=st.sampled_from(("FVEY", "NATO", "everybody")),
)
matches = st.one_of(
    st.just(Versions(last=False, all=True)),
    st.just(Versions(first=True, last=False)),
    st.just(Versions()),
    st.sampled_from(STAMPS).map(lambda s: Versions(last=False, at=(version_of({"modified": s}),))),
)
deletes = st.builds(
    Delete,
    actor=st.sampled_from(PARTNERS),
    object_id=st.sampled_from((*REPORT_IDS, PENDING)),
    match=matches,
)


@dataclass
class Reference:
    """The rules, written plainly: one owner per id, claimed by its first version; a partner
    writes only objects naming itself or nobody as originator; definitions never change."""

    node_identity: str
    owner: dict[str, str] = field(default_factory=dict)
    versions: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)

    def claim(self, actor: str, obj: dict[str, Any]) -> str | None:
        creator = obj.get("created_by_ref")
        by_identity = {IDENTITIES[c]: c for c in PARTNERS} | {self.node_identity: "CAN"}
        if actor == "CAN":
            return by_identity.get(creator, "CAN")
        if creator is not None and creator != IDENTITIES[actor]:
            return None
        return actor

    def write(self, actor: str, obj: dict[str, Any]) -> None:
        claimed = self.claim(actor, obj)
        oid, version = obj["id"], version_of(obj)
        if claimed is None or self.owner.get(oid, claimed) != claimed:
            return
        held = self.versions.get(oid, {})
        if obj["type"] == "marking-definition" and held and obj not in held.values():
            return
        self.owner[oid] = claimed
        self.versions.setdefault(oid, {}).setdefault(version, obj)

    def delete(self, actor: str, oid: str, match: Versions) -> None:
        if self.owner.get(oid) != actor:
            return
        held = self.versions[oid]
        for version in [v for v in held if match.selects(v, list(held))]:
            del held[version]
        if not held:
            del self.versions[oid], self.owner[oid]


def stored(connection: sa.Connection) -> dict[str, tuple[str, dict[int, dict[str, Any]]]]:
    found: dict[str, tuple[str, dict[int, dict[str, Any]]]] = {}
    rows = connection.execute(
        sa.select(objects.c.id, objects.c.owner, objects.c.version, objects.c.body).where(
            objects.c.id.in_([*REPORT_IDS, PENDING])
        )
    )
    for oid, owner, version, body in rows:
        found.setdefault(oid, (owner, {}))[1][version] = json.loads(body)
    return found


def seen(connection: sa.Connection) -> dict[str, dict[str, set[int]]]:
    """For each partner, the versions of each test object it may see; checks on the way
    that its "last" is the newest of them."""
    views: dict[str, dict[str, set[int]]] = {}
    for partner in PARTNERS:
        every = page(connection, partner, PageQuery(versions=Versions(last=False, all=True)))
        last = page(connection, partner, PageQuery())
        view: dict[str, set[int]] = {}
        for granted in every.versions:
            view.setdefault(granted.object["id"], set()).add(granted.version)
        newest = {g.object["id"]: g.version for g in last.versions}
        assert newest == {oid: max(vs) for oid, vs in view.items()}
        views[partner] = {oid: vs for oid, vs in view.items() if oid in {*REPORT_IDS, PENDING}}
    return views


def alliance() -> tuple[tuple[Partner, ...], tuple[Community, ...]]:
    clearances = {"USA": "USA:TS", "GBR": "GBR:TOP SECRET", "FRA": "NATO:NS"}
    partners = tuple(
        Partner(
            country=code,
            name=code,
            identity=IDENTITIES[code],
            clearance=Clearance.parse(clearances[code]),
            trust="high",
        )
        for code in PARTNERS
    )
    communities = (
        Community(name="FVEY", members=tuple(Membership(country=c) for c in ("CAN", "USA", "GBR"))),
        Community(name="NATO", members=tuple(Membership(country=c) for c in ("CAN", *PARTNERS))),
    )
    return partners, communities


def no_validation(batch):
    return [[] for _ in batch]


def test_no_partner_changes_another_owners_objects_or_who_sees_them(node):
    with write_transaction(node.engine) as connection:
        save_alliance(connection, *alliance())
        redecide(connection)
    definitions = node_definitions(node.identity_id)
    import_objects(node.engine, definitions, validate=no_validation)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(st.one_of(writes, deletes), min_size=1, max_size=12))
    def run(actions: list[Write | Delete]) -> None:
        with write_transaction(node.engine) as connection:
            connection.execute(objects.delete().where(objects.c.id.in_([*REPORT_IDS, PENDING])))
            connection.execute(withdrawals.delete())
            redecide(connection)  # no grant may remember a definition of an earlier example
        reference = Reference(node.identity_id)
        for action in actions:
            with node.engine.connect() as connection:
                before = seen(connection)
            if isinstance(action, Write):
                body = action.body(node.identity_id, definitions)
                writer = None if action.actor == "CAN" else action.actor
                import_objects(node.engine, [body], received_from=writer, validate=no_validation)
                reference.write(action.actor, body)
            else:
                with write_transaction(node.engine) as connection:
                    # As the TAXII server deletes: what a deleted definition marked is re-decided.
                    if delete_versions(connection, action.actor, action.object_id, action.match):
                        redecide_markings(connection, [action.object_id])
                reference.delete(action.actor, action.object_id, action.match)
            with node.engine.connect() as connection:
                assert stored(connection) == {
                    oid: (reference.owner[oid], held) for oid, held in reference.versions.items()
                }
                after = seen(connection)
            if action.actor != "CAN":
                for partner in PARTNERS:
                    others = {
                        oid for oid, owner in reference.owner.items() if owner != action.actor
                    }
                    assert {o: v for o, v in after[partner].items() if o in others} == {
                        o: v for o, v in before[partner].items() if o in others
                    }, (partner, action)

    run()
