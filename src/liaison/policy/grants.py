"""Compiled release decisions: one grant per (partner, release class), stored, so that what
a partner may see is an indexed join in the database and never a loop over objects.

A new class is decided for every partner when its first object is stored; a change of a
partner, a community or a node rule re-decides every class (there are few) for the partners
concerned, and is recorded in ``policy_changes``. Grants also expire: they hold until the next
date on which a community membership starts or ends, after which ``refresh`` re-decides them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from liaison.ledger.log import Entry, append
from liaison.markings.handling import UnknownMarking
from liaison.markings.read import read_marking
from liaison.policy.classes import ClassKey, class_key
from liaison.policy.decide import (
    Decision,
    Marking,
    ObjectMarkings,
    Originator,
    PolicyContext,
    Reason,
    decide,
)
from liaison.policy.rules import NodeRules
from liaison.stix.consent import CONSENT_TYPE
from liaison.stix.timestamps import from_micros, now_micros
from liaison.store.alliance import read_communities, read_partners
from liaison.store.objects import owned_definitions
from liaison.store.schema import (
    grants,
    node,
    objects,
    policy_changes,
    policy_state,
    release_classes,
    withdrawals,
)

# Properties every STIX 2.1 SDO and SRO must have, beside those of its own type.
_COMMON_REQUIRED = frozenset({"type", "spec_version", "id", "created", "modified"})


@functools.lru_cache(maxsize=512)
def required_properties(stix_type: str | None) -> frozenset[str]:
    """The top-level properties STIX 2.1 requires for ``stix_type`` (from the stix2 library's
    own definitions); for an unknown type only the common ones."""
    if stix_type is None:
        return _COMMON_REQUIRED
    # Here, not at the top: importing stix2 takes a quarter of a second, and most commands
    # that read the policy never ask. The package first, then its registry: a thread that
    # took stix2.registry while another was still importing stix2 would find no 2.1 class
    # registered yet, cut required references instead of withholding, and this cache would
    # keep that answer; importing the package waits until it is whole.
    import stix2  # noqa: F401
    from stix2.registry import class_for_type

    cls = class_for_type(stix_type, "2.1")
    if cls is None:
        return _COMMON_REQUIRED
    own = {name for name, prop in cls._properties.items() if prop.required}
    return _COMMON_REQUIRED | own


@dataclass(frozen=True)
class PolicyWorld:
    """Everything a decision needs besides the class: read once, used for many classes."""

    context: PolicyContext
    node_identity: str
    identities: dict[str, str]  # partner identity id -> country code
    version: int

    def originator(self, key: ClassKey) -> Originator:
        """Who originated the class's objects: its ``created_by_ref``, else its owner."""
        identity = key.originator
        node_country = self.context.node_country
        if identity is None and key.owner not in (None, node_country):
            owner = self.context.partners.get(key.owner)
            return Originator(owner.identity if owner else None, key.owner, False)
        if identity is None or identity == self.node_identity:
            return Originator(identity, node_country, True)
        return Originator(identity, self.identities.get(identity), False)

    def reads_definitions_of(self, key: ClassKey) -> frozenset[str | None]:
        """Whose marking definitions count for the class: its owner's and the node's (the
        standard TLP ids need no stored definition). Another partner's definition of a
        marking the class uses is ignored, so nobody else can decide what it means."""
        return frozenset({key.owner, self.context.node_country})


def load_world(connection: sa.Connection) -> PolicyWorld:
    row = connection.execute(sa.select(node)).one()
    state = connection.execute(sa.select(policy_state)).one()
    partners = read_partners(connection)
    return PolicyWorld(
        context=PolicyContext(
            node_country=row.country,
            partners={p.country: p for p in partners},
            communities=tuple(read_communities(connection)),
            rules=NodeRules.model_validate_json(state.rules),
        ),
        node_identity=row.identity_id,
        identities={p.identity: p.country for p in partners},
        version=state.version,
    )


@dataclass(frozen=True)
class Definition:
    """What a marking id says (a Handling, or None when it is not understood), and who
    defined it (None for the standard TLP ids, which need no definition)."""

    handling: Any
    owner: str | None


def marking_handlings(connection: sa.Connection, ids: Iterable[str]) -> dict[str, Definition]:
    """What each marking id says, and whose definition says it."""
    wanted = sorted(set(ids))
    definitions = owned_definitions(connection, wanted)
    handlings: dict[str, Definition] = {}
    for marking_id in wanted:
        body, owner = definitions.get(marking_id, (None, None))
        try:
            handlings[marking_id] = Definition(read_marking(marking_id, body), owner)
        except UnknownMarking:
            handlings[marking_id] = Definition(None, owner)
    return handlings


def markings_of(
    key: ClassKey, handlings: dict[str, Definition], stix_type: str, readers: frozenset
) -> ObjectMarkings:
    def handling(marking_id: str) -> Any:
        found = handlings.get(marking_id)
        if found is None or (found.owner is not None and found.owner not in readers):
            return None  # unknown: withheld
        return found.handling

    return ObjectMarkings(
        type=stix_type,
        object_level=tuple(Marking(m, handling(m)) for m in key.markings),
        granular=tuple(Marking(m, handling(m), sel) for m, sel in key.granular),
        required=required_properties(key.type),
    )


def decide_class(
    key: ClassKey, world: PolicyWorld, handlings: dict[str, Definition], partner: str, at: date
) -> Decision:
    if partner in key.withdrawn:
        return Decision(
            "withhold",
            (Reason("withdrawn", f"an officer withdrew this version from {partner}"),),
        )
    stix_type = "marking-definition" if key.definition else (key.type or "object")
    return decide(
        markings_of(key, handlings, stix_type, world.reads_definitions_of(key)),
        world.originator(key),
        key.consents,
        partner,
        world.context,
        at,
    )


@dataclass(frozen=True)
class Change:
    partner: str
    class_id: str
    before: str | None
    after: str


def redecide(
    connection: sa.Connection,
    class_ids: Iterable[str] | None = None,
    partners: Iterable[str] | None = None,
    at: date | None = None,
) -> list[Change]:
    """Decide the given classes (default all) for the given partners (default all) and
    store the grants; the grants whose decision or cuts changed."""
    at = at or date.today()
    world = load_world(connection)
    query = sa.select(release_classes.c.id, release_classes.c.key)
    if class_ids is not None:
        wanted = list(class_ids)
        if not wanted:
            return []
        query = query.where(release_classes.c.id.in_(wanted))
    keys = [ClassKey.from_canonical(text) for _, text in connection.execute(query)]
    codes = sorted(world.context.partners) if partners is None else sorted(set(partners))
    handlings = marking_handlings(
        connection,
        [m for key in keys for m in key.markings] + [m for key in keys for m, _ in key.granular],
    )
    previous = _current(connection, [k.id for k in keys], codes)
    changes: list[Change] = []
    rows: list[dict[str, Any]] = []
    for key in keys:
        for code in codes:
            decision = decide_class(key, world, handlings, code, at)
            rows.append(_grant_row(code, key.id, decision, world.version))
            before = previous.get((code, key.id))
            now = (decision.decision, list(decision.cuts))
            if before != now:
                changes.append(Change(code, key.id, before[0] if before else None, now[0]))
    _replace(connection, [k.id for k in keys], codes, rows)
    # A consent holds through its last day: the grants it made are decided again the day after.
    ends = [c.until + timedelta(days=1) for key in keys for c in key.consents if c.until]
    _set_validity(connection, world, at, ends, everything=class_ids is None and partners is None)
    return changes


def _current(
    connection: sa.Connection, class_ids: list[str], codes: list[str]
) -> dict[tuple[str, str], tuple[str, list[str]]]:
    found: dict[tuple[str, str], tuple[str, list[str]]] = {}
    for start in range(0, len(class_ids), 500):
        rows = connection.execute(
            sa.select(grants.c.partner, grants.c.class_id, grants.c.decision, grants.c.cuts).where(
                grants.c.class_id.in_(class_ids[start : start + 500]),
                grants.c.partner.in_(codes),
            )
        )
        for partner, class_id, decision, cuts in rows:
            found[(partner, class_id)] = (decision, json.loads(cuts))
    return found


def _replace(
    connection: sa.Connection, class_ids: list[str], codes: list[str], rows: list[dict[str, Any]]
) -> None:
    for start in range(0, len(class_ids), 500):
        connection.execute(
            grants.delete().where(
                grants.c.class_id.in_(class_ids[start : start + 500]), grants.c.partner.in_(codes)
            )
        )
    if rows:
        connection.execute(grants.insert(), rows)


def _grant_row(partner: str, class_id: str, decision: Decision, version: int) -> dict[str, Any]:
    return {
        "partner": partner,
        "class_id": class_id,
        "decision": decision.decision,
        "cuts": json.dumps(list(decision.cuts)),
        "reasons": json.dumps([{"code": r.code, "text": r.text} for r in decision.reasons]),
        "policy_version": version,
    }


def _set_validity(
    connection: sa.Connection,
    world: PolicyWorld,
    at: date,
    ends: list[date],
    *,
    everything: bool,
) -> None:
    """Grants decided at ``at`` hold until the next membership date after it, or the day
    after a consent they used ends (``ends``). When only some were re-decided, the others
    keep their own expiry: the earlier of the two stands."""
    boundaries = [
        day
        for community in world.context.communities
        for member in community.members
        for day in (member.joined, member.left)
        if day is not None and day > at
    ] + [day for day in ends if day > at]
    until = min(boundaries, default=None)
    if not everything:
        current = connection.execute(sa.select(policy_state.c.valid_until)).scalar_one()
        if current is not None:
            until = current if until is None else min(current, until)
    connection.execute(policy_state.update().values(decided_on=at, valid_until=until))


def register_classes(connection: sa.Connection, keys: dict[str, ClassKey]) -> list[Change]:
    """Store the classes not yet known and decide them for every partner."""
    if not keys:
        return []
    known: set[str] = set()
    ids = sorted(keys)
    for start in range(0, len(ids), 500):
        known.update(
            connection.execute(
                sa.select(release_classes.c.id).where(
                    release_classes.c.id.in_(ids[start : start + 500])
                )
            ).scalars()
        )
    new = [i for i in ids if i not in known]
    if new:
        connection.execute(
            release_classes.insert(), [{"id": i, "key": keys[i].canonical()} for i in new]
        )
    return redecide(connection, new)


def redecide_markings(connection: sa.Connection, marking_ids: Iterable[str]) -> list[Change]:
    """Re-decide the classes that refer to these markings: their definitions just arrived,
    and a marking that was unknown (withheld) may now be readable."""
    ids = sorted(set(marking_ids))
    if not ids:
        return []
    query = sa.select(release_classes.c.id).where(
        sa.or_(*(release_classes.c.key.contains(f'"{marking_id}"') for marking_id in ids))
    )
    return redecide(connection, list(connection.execute(query).scalars()))


def record_change(connection: sa.Connection, kind: str, detail: dict[str, Any]) -> int:
    """Bump the policy version and log the change; the new version."""
    version = connection.execute(sa.select(policy_state.c.version)).scalar_one() + 1
    connection.execute(policy_state.update().values(version=version))
    (entry,) = append(
        connection, [Entry("policy", {"version": version, "change": kind, "detail": detail})]
    )
    connection.execute(
        policy_changes.insert().values(
            at=now_micros(),
            version=version,
            kind=kind,
            detail=json.dumps(detail, sort_keys=True),
            entry=entry,
        )
    )
    return version


def read_changes(connection: sa.Connection) -> list[dict[str, Any]]:
    """The policy change log, oldest first: ``{version, at, kind, detail}``."""
    rows = connection.execute(sa.select(policy_changes).order_by(policy_changes.c.seq))
    return [
        {
            "version": row.version,
            "at": from_micros(row.at),
            "kind": row.kind,
            "detail": json.loads(row.detail),
        }
        for row in rows
    ]


def set_rules(connection: sa.Connection, rules: NodeRules) -> bool:
    """Store the node's rules; True if they changed."""
    current = connection.execute(sa.select(policy_state.c.rules)).scalar_one()
    text = rules.model_dump_json()
    if current == text:
        return False
    connection.execute(policy_state.update().values(rules=text))
    return True


def grants_expired(connection: sa.Connection, today: date | None = None) -> bool:
    """Whether a membership date has passed since the grants were decided."""
    today = today or date.today()
    valid_until = connection.execute(sa.select(policy_state.c.valid_until)).scalar_one()
    return valid_until is not None and today >= valid_until


def refresh(connection: sa.Connection, today: date | None = None) -> list[Change]:
    """Re-decide everything if a membership date has passed since the grants were made."""
    today = today or date.today()
    if grants_expired(connection, today):
        return redecide(connection, at=today)
    return []


def grant_of(connection: sa.Connection, partner: str, class_id: str) -> Decision | None:
    row = connection.execute(
        sa.select(grants).where(grants.c.partner == partner, grants.c.class_id == class_id)
    ).first()
    if row is None:
        return None
    reasons = tuple(Reason(r["code"], r["text"]) for r in json.loads(row.reasons))
    return Decision(row.decision, reasons, tuple(json.loads(row.cuts)))


def rebuild(connection: sa.Connection) -> int:
    """Recompute every object's class, then every class and grant, from the objects alone
    (with the consents among them); the number of classes."""
    connection.execute(grants.delete())
    connection.execute(release_classes.delete())
    keys: dict[str, ClassKey] = {}
    updates: list[dict[str, Any]] = []
    withdrawn: dict[tuple[str, int], list[str]] = {}
    for oid, version, partner in connection.execute(
        sa.select(withdrawals.c.object_id, withdrawals.c.version, withdrawals.c.partner)
    ):
        withdrawn.setdefault((oid, version), []).append(partner)
    # Here, not at the top: policy.consent builds on this module.
    from liaison.policy.consent import consents, terms_for

    country = connection.execute(sa.select(node.c.country)).scalar_one()
    held = consents(connection)
    rows = connection.execute(
        sa.select(objects.c.id, objects.c.version, objects.c.owner, objects.c.body)
    )
    for oid, version, owner, body in rows:
        obj = json.loads(body)
        key = class_key(
            obj,
            owner,
            consents=terms_for(held, obj, owner, country) if obj["type"] != CONSENT_TYPE else (),
            withdrawn=tuple(withdrawn.get((oid, version), ())),
        )
        keys.setdefault(key.id, key)
        updates.append({"oid": oid, "ver": version, "cls": key.id})
    for start in range(0, len(updates), 1000):
        connection.execute(
            objects.update()
            .where(objects.c.id == sa.bindparam("oid"), objects.c.version == sa.bindparam("ver"))
            .values(release_class=sa.bindparam("cls")),
            updates[start : start + 1000],
        )
    register_classes(connection, keys)
    return len(keys)
