"""Why an object may or may not go to a partner: the decision, its reasons, and the copy.

This recomputes the decision from the rules (at any date), for the object and for every
object it references, so a disclosure officer sees exactly what the compiled grants encode.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from liaison.errors import NotFound, UnknownPartner
from liaison.policy.classes import class_key
from liaison.policy.copies import make_copy, sendable
from liaison.policy.decide import Decision, Reason
from liaison.policy.grants import PolicyWorld, decide_class, load_world, marking_handlings
from liaison.policy.tearline import references
from liaison.store.objects import latest_bodies


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
    connection: sa.Connection, world: PolicyWorld, obj: dict[str, Any], partner: str, at: date
) -> Decision:
    key = class_key(obj)
    handlings = marking_handlings(connection, [*key.markings, *(m for m, _ in key.granular)])
    return decide_class(key, world, handlings, partner, at)


def explain(
    connection: sa.Connection, object_id: str, partner: str, at: date | None = None
) -> Explanation:
    at = at or date.today()
    obj = latest_bodies(connection, [object_id]).get(object_id)
    if obj is None:
        raise NotFound(f"no object {object_id} in the store")
    world = load_world(connection)
    if partner not in world.context.partners:
        raise UnknownPartner(f"{partner} is not a known partner")
    decision = _decide_object(connection, world, obj, partner, at)
    if not decision.released:
        return Explanation(object_id, partner, at, decision, (), (), None)

    def released(ids: set[str]) -> set[str]:
        return {
            i
            for i, target in latest_bodies(connection, ids).items()
            if _decide_object(connection, world, target, partner, at).released
        }

    visible = sendable(references(obj), released, lambda ids: latest_bodies(connection, ids))
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
