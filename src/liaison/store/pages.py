"""What a partner may see: object versions joined with the partner's grants.

The read path never loops over objects. A page is answered per granted release class: for
each class the partner may see, an index range on ``(release_class, date_added)`` yields at
most ``limit + 1`` entries (all classes in one UNION ALL statement), the smallest
``limit + 1`` are kept, and only those rows are read whole. The cost depends on the page size
and the number of granted classes, not on how many objects the store holds or how few of
them the partner may see.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from liaison.store.schema import grants, objects

# SQLite allows at most 500 terms in one compound SELECT.
_CLASSES_PER_STATEMENT = 400
Versions = Literal["last", "first", "all"] | tuple[int, ...]


@dataclass(frozen=True)
class PageQuery:
    """The filters of one page (TAXII's ``match[...]``, ``added_after``, ``limit``)."""

    types: tuple[str, ...] = ()  # empty: any type
    ids: tuple[str, ...] = ()  # empty: any id
    versions: Versions = "last"
    spec_versions: tuple[str, ...] = ()
    added_after: int | None = None
    limit: int = 100


@dataclass(frozen=True)
class Page:
    versions: list[GrantedVersion]
    more: bool


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
    not at all: objects are counted once per class, then joined with the grants."""
    per_class = (
        sa.select(objects.c.release_class, sa.func.count().label("n"))
        .where(objects.c.latest.is_(True))
        .group_by(objects.c.release_class)
        .subquery()
    )
    rows = connection.execute(
        sa.select(grants.c.partner, grants.c.decision, sa.func.sum(per_class.c.n))
        .join(per_class, per_class.c.release_class == grants.c.class_id)
        .group_by(grants.c.partner, grants.c.decision)
    )
    counts: dict[str, dict[str, int]] = {}
    for partner, decision, count in rows:
        counts.setdefault(partner, {"release": 0, "release-with-cuts": 0, "withhold": 0})
        counts[partner][decision] = int(count)
    return counts


def _filters(query: PageQuery) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if query.added_after is not None:
        conditions.append(objects.c.date_added > query.added_after)
    if query.types:
        conditions.append(objects.c.type.in_(query.types))
    if query.ids:
        conditions.append(objects.c.id.in_(query.ids))
    if query.spec_versions:
        conditions.append(objects.c.spec_version.in_(query.spec_versions))
    if query.versions == "last":
        conditions.append(objects.c.latest.is_(True))
    elif query.versions == "first":
        earlier = objects.alias("earlier")
        conditions.append(
            ~sa.exists().where(earlier.c.id == objects.c.id, earlier.c.version < objects.c.version)
        )
    elif isinstance(query.versions, tuple):
        conditions.append(objects.c.version.in_(query.versions))
    return conditions


def page(connection: sa.Connection, partner: str, query: PageQuery) -> Page:
    """One page of the versions ``partner`` may receive, oldest added first."""
    granted = {
        class_id: (decision, tuple(json.loads(cuts)))
        for class_id, decision, cuts in connection.execute(
            sa.select(grants.c.class_id, grants.c.decision, grants.c.cuts).where(
                grants.c.partner == partner, grants.c.decision != "withhold"
            )
        )
    }
    if not granted or query.limit <= 0:
        return Page([], False)
    wanted = query.limit + 1
    conditions = _filters(query)
    keys: list[int] = []
    classes = sorted(granted)
    for start in range(0, len(classes), _CLASSES_PER_STATEMENT):
        per_class = [
            sa.select(objects.c.date_added)
            .where(objects.c.release_class == class_id, *conditions)
            .order_by(objects.c.date_added)
            .limit(wanted)
            .subquery()
            .select()
            for class_id in classes[start : start + _CLASSES_PER_STATEMENT]
        ]
        statement = per_class[0] if len(per_class) == 1 else sa.union_all(*per_class)
        keys.extend(connection.execute(statement).scalars())
    keys = sorted(keys)[:wanted]
    if not keys:
        return Page([], False)
    rows = connection.execute(
        sa.select(objects.c.body, objects.c.date_added, objects.c.release_class)
        .where(objects.c.date_added.in_(keys))
        .order_by(objects.c.date_added)
    ).all()
    versions = [
        GrantedVersion(json.loads(body), added, cls, *granted[cls]) for body, added, cls in rows
    ]
    return Page(versions[: query.limit], len(versions) > query.limit)
