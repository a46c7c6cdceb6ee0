"""What a partner may see: object versions joined with the partner's grants.

These are the only queries the read path needs; each is one indexed join (grants by
partner and class, objects by class and ``date_added``), never a loop over objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from liaison.store.schema import grants, objects


@dataclass(frozen=True)
class GrantedVersion:
    object: dict[str, Any]
    date_added: int
    release_class: str
    decision: str
    cuts: tuple[str, ...]


def granted_versions(
    connection: sa.Connection,
    partner: str,
    *,
    latest_only: bool = True,
    added_after: int | None = None,
    limit: int | None = None,
) -> list[GrantedVersion]:
    """The versions ``partner`` may receive (whole or with cuts), oldest added first."""
    query = (
        sa.select(
            objects.c.body,
            objects.c.date_added,
            objects.c.release_class,
            grants.c.decision,
            grants.c.cuts,
        )
        .join(
            grants,
            sa.and_(grants.c.class_id == objects.c.release_class, grants.c.partner == partner),
        )
        .where(grants.c.decision != "withhold")
        .order_by(objects.c.date_added)
    )
    if latest_only:
        query = query.where(objects.c.latest.is_(True))
    if added_after is not None:
        query = query.where(objects.c.date_added > added_after)
    if limit is not None:
        query = query.limit(limit)
    return [
        GrantedVersion(json.loads(body), added, cls, decision, tuple(json.loads(cuts)))
        for body, added, cls, decision, cuts in connection.execute(query)
    ]


def visible_ids(connection: sa.Connection, partner: str, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` ``partner`` may see (their latest version is granted)."""
    wanted = sorted(set(ids))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        rows = connection.execute(
            sa.select(objects.c.id)
            .join(
                grants,
                sa.and_(grants.c.class_id == objects.c.release_class, grants.c.partner == partner),
            )
            .where(
                objects.c.id.in_(wanted[start : start + 500]),
                objects.c.latest.is_(True),
                grants.c.decision != "withhold",
            )
        )
        found.update(rows.scalars())
    return found


def count_latest_in_classes(connection: sa.Connection, class_ids: list[str]) -> int:
    """How many objects (latest versions) belong to these release classes."""
    total = 0
    for start in range(0, len(class_ids), 500):
        total += connection.execute(
            sa.select(sa.func.count())
            .select_from(objects)
            .where(
                objects.c.release_class.in_(class_ids[start : start + 500]),
                objects.c.latest.is_(True),
            )
        ).scalar_one()
    return total


def visibility_counts(connection: sa.Connection) -> dict[str, dict[str, int]]:
    """For each partner, how many objects (latest versions) it may see whole, with cuts, or
    not at all: one grouped join."""
    rows = connection.execute(
        sa.select(grants.c.partner, grants.c.decision, sa.func.count())
        .select_from(objects)
        .join(grants, grants.c.class_id == objects.c.release_class)
        .where(objects.c.latest.is_(True))
        .group_by(grants.c.partner, grants.c.decision)
    )
    counts: dict[str, dict[str, int]] = {}
    for partner, decision, count in rows:
        counts.setdefault(partner, {"release": 0, "release-with-cuts": 0, "withhold": 0})
        counts[partner][decision] = count
    return counts
