"""Why an object may or may not go to a partner: the decision, its reasons, and the copy.

This recomputes the decision from the rules (at any date), for the object and for every
object it references, so a disclosure officer sees exactly what the compiled grants encode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from liaison.errors import NotFound, UnknownPartner
from liaison.policy.classes import ClassKey
from liaison.policy.copies import make_copy, required_references, sendable
from liaison.policy.decide import Decision, Reason
from liaison.policy.grants import PolicyWorld, decide_class, load_world, marking_handlings
from liaison.policy.tearline import references
from liaison.store.objects import latest_bodies
from liaison.store.schema import objects, release_classes


@dataclass(frozen=True)
class Explanation:
    object_id: str
    partner: str
    at: date
    decision: Decision
    cut_fields: tuple[str, ...]
    cut_references: tuple[str, ...]
    copy: dict[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        return {
            "object": self.object_id,
            "partner": self.partner,
            "at": self.at.isoformat(),
            "decision": self.decision.decision,
            "reasons": [{"code": r.code, "text": r.text} for r in self.decision.reasons],
            "cuts": {"fields": list(self.cut_fields), "references": list(self.cut_references)},
            "copy": self.copy,
        }


def _decide_object(
    connection: sa.Connection, world: PolicyWorld, key: ClassKey, partner: str, at: date
) -> Decision:
    handlings = marking_handlings(connection, [*key.markings, *(m for m, _ in key.granular)])
    return decide_class(key, world, handlings, partner, at)


def explain(
    connection: sa.Connection, object_id: str, partner: str, at: date | None = None
) -> Explanation:
    at = at or date.today()
    found = latest_classes(connection, [object_id]).get(object_id)
    if found is None:
        raise NotFound(f"no object {object_id} in the store")
    obj, key = found
    world = load_world(connection)
    if partner not in world.context.partners:
        raise UnknownPartner(f"{partner} is not a known partner")
    decision = _decide_object(connection, world, key, partner, at)
    if not decision.released:
        return Explanation(object_id, partner, at, decision, (), (), None)

    def released(ids: set[str]) -> set[str]:
        return {
            i
            for i, (_, target) in latest_classes(connection, ids).items()
            if _decide_object(connection, world, target, partner, at).released
        }

    def requiring(ids: set[str]) -> dict[str, list[set[str]]]:
        return {i: required_references(b) for i, b in latest_bodies(connection, ids).items()}

    visible = sendable(references(obj), released, requiring)
    made = make_copy(obj, decision.cuts, visible)
    if made is None:
        withheld = Decision(
            "withhold",
            (
                *decision.reasons,
                Reason(
                    "references-cut",
                    f"every object a required reference points at is withheld from {partner}",
                ),
            ),
        )
        return Explanation(object_id, partner, at, withheld, (), (), None)
    copy, removed = made
    if removed and decision.decision == "release":
        decision = Decision(
            "release-with-cuts",
            (
                *decision.reasons,
                Reason("references-cut", f"{len(removed)} references to withheld objects cut"),
            ),
        )
    return Explanation(object_id, partner, at, decision, decision.cuts, tuple(removed), copy)


def latest_classes(
    connection: sa.Connection, ids: set[str] | list[str]
) -> dict[str, tuple[dict[str, Any], ClassKey]]:
    """The latest version of each of ``ids`` with its release class (which names its owner
    and the partners it was withdrawn from)."""
    wanted = sorted(set(ids))
    found: dict[str, tuple[dict[str, Any], ClassKey]] = {}
    for start in range(0, len(wanted), 500):
        rows = connection.execute(
            sa.select(objects.c.id, objects.c.body, release_classes.c.key)
            .join(release_classes, release_classes.c.id == objects.c.release_class)
            .where(objects.c.id.in_(wanted[start : start + 500]), objects.c.latest.is_(True))
        )
        found.update(
            {oid: (json.loads(body), ClassKey.from_canonical(key)) for oid, body, key in rows}
        )
    return found
