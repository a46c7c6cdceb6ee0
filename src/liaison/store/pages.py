"""What a partner may see: object versions joined with the partner's grants.

A partner's view is taken within what it may see: "last" is the newest version whose class
is granted to it, "first" the oldest, so a partner gets the newest version it may see and
nothing tells it that a newer one exists.

The read path never loops over objects. A page is answered per granted release class: for
each class the partner may see, an index range on ``(release_class, date_added)`` yields at
most ``limit + 1`` entries (all classes in one UNION ALL statement), the smallest
``limit + 1`` are kept, and only those rows are read whole. The cost depends on the page size
and the number of granted classes, not on how many objects the store holds or how few of
them the partner may see.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from liaison.store.engine import execute_compiled
from liaison.store.objects import Versions
from liaison.store.schema import grants, objects

# SQLite allows at most 500 terms in one compound SELECT.
_CLASSES_PER_STATEMENT = 400


@dataclass(frozen=True)
class PageQuery:
    """The filters of one page (TAXII's ``match[...]``, ``added_after``, ``limit``)."""

    types: tuple[str, ...] = ()  # empty: any type
    ids: tuple[str, ...] = ()  # empty: any id
    versions: Versions = field(default_factory=Versions)
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
    version: int  # the version key: ``modified`` (or ``created``) in microseconds
    # The stored JSON text of ``object`` (compact, as delivered when nothing is cut).
    text: str = field(default="", repr=False, compare=False)


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
            objects.c.version,
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
        GrantedVersion(
            json.loads(body), added, cls, decision, tuple(json.loads(cuts)), version, body
        )
        for body, added, cls, decision, cuts, version in connection.execute(query)
    ]


def visible_bodies(
    connection: sa.Connection, partner: str, ids: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Of ``ids``, those ``partner`` may see, each with the newest version it may see."""
    wanted = sorted(set(ids))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), 500):
        rows = connection.execute(
            sa.select(objects.c.id, objects.c.body)
            .join(
                grants,
                sa.and_(grants.c.class_id == objects.c.release_class, grants.c.partner == partner),
            )
            .where(
                objects.c.id.in_(wanted[start : start + 500]),
                grants.c.decision != "withhold",
                ~_granted_other(lambda other: other > objects.c.version),
            ),
            {"partner": partner},
        )
        found.update({oid: json.loads(body) for oid, body in rows})
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


def _shape(query: PageQuery, classes: int) -> tuple[Any, ...]:
    """What the page statement's SQL depends on: the number of classes and of each filter's
    values, never the values themselves (those are bound)."""
    match = query.versions
    versions = "all" if match.all else (match.first, match.last, len(match.at))
    return (
        classes,
        query.added_after is not None,
        len(query.types),
        len(query.ids),
        len(query.spec_versions),
        versions,
    )


def _bound(name: str, count: int) -> list[sa.BindParameter[Any]]:
    return [sa.bindparam(f"{name}{i}") for i in range(count)]


def _filters(shape: tuple[Any, ...]) -> list[sa.ColumnElement[bool]]:
    _, added_after, types, ids, spec_versions, versions = shape
    conditions: list[sa.ColumnElement[bool]] = []
    if added_after:
        conditions.append(objects.c.date_added > sa.bindparam("added_after"))
    if types:
        conditions.append(objects.c.type.in_(_bound("type", types)))
    if ids:
        conditions.append(objects.c.id.in_(_bound("id", ids)))
    if spec_versions:
        conditions.append(objects.c.spec_version.in_(_bound("spec", spec_versions)))
    if versions != "all":
        first, last, exact = versions
        chosen: list[sa.ColumnElement[bool]] = []
        if last:
            # The stored newest is always the newest the partner may see when its class is
            # granted (the page only reads granted classes); otherwise look for a newer one.
            chosen.append(
                sa.or_(objects.c.latest.is_(True), ~_granted_other(lambda o: o > objects.c.version))
            )
        if first:
            chosen.append(~_granted_other(lambda o: o < objects.c.version))
        if exact:
            chosen.append(objects.c.version.in_(_bound("version", exact)))
        conditions.append(sa.or_(*chosen) if chosen else sa.false())
    return conditions


def _granted_other(order: Any) -> sa.Exists:
    """Whether the partner may see another version of the same object, ordered by ``order``
    against this one."""
    other = objects.alias("other")
    grant = grants.alias("other_grant")
    return sa.exists().where(
        other.c.id == objects.c.id,
        order(other.c.version),
        grant.c.class_id == other.c.release_class,
        grant.c.partner == sa.bindparam("partner"),
        grant.c.decision != "withhold",
    )


def _values(query: PageQuery, partner: str, classes: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "wanted": query.limit + 1,
        "added_after": query.added_after,
        "partner": partner,
    }
    for name, items in (
        ("class", classes),
        ("type", query.types),
        ("id", query.ids),
        ("spec", query.spec_versions),
        ("version", query.versions.at),
    ):
        values.update({f"{name}{i}": item for i, item in enumerate(items)})
    return values


@functools.lru_cache(maxsize=256)
def _compiled(dialect: sa.Dialect, shape: tuple[Any, ...]) -> sa.Compiled:
    """The page statement of this shape, compiled once: building and compiling the
    per-class UNION costs more than running it."""
    conditions = _filters(shape)
    wanted = sa.bindparam("wanted")
    per_class = [
        sa.select(objects.c.date_added)
        .where(objects.c.release_class == class_id, *conditions)
        .order_by(objects.c.date_added)
        .limit(wanted)
        .subquery()
        .select()
        for class_id in _bound("class", shape[0])
    ]
    keys = (per_class[0] if len(per_class) == 1 else sa.union_all(*per_class)).subquery()
    winners = sa.select(keys.c.date_added).order_by(keys.c.date_added).limit(wanted)
    statement = (
        sa.select(objects.c.body, objects.c.date_added, objects.c.release_class, objects.c.version)
        .where(objects.c.date_added.in_(winners.scalar_subquery()))
        .order_by(objects.c.date_added)
    )
    return statement.compile(dialect=dialect)


def _page_rows(
    connection: sa.Connection, query: PageQuery, partner: str, classes: list[str]
) -> list[Any]:
    """The first ``limit + 1`` versions of these classes matching ``query``: each class's
    own index range gives at most that many keys, the database merges them, and only the
    winners are read whole."""
    compiled = _compiled(connection.dialect, _shape(query, len(classes)))
    params = compiled.construct_params(_values(query, partner, classes))
    return execute_compiled(connection, compiled, params).all()


def page(
    connection: sa.Connection,
    partner: str,
    query: PageQuery,
    granted: Mapping[str, tuple[str, tuple[str, ...]]] | None = None,
) -> Page:
    """One page of the versions ``partner`` may receive, oldest added first. ``granted``
    (``{class id: (decision, cuts)}`` of the classes it may receive, as this connection's
    snapshot holds them) saves reading the grants again."""
    if granted is None:
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
    classes = sorted(granted)
    rows: list[Any] = []
    for start in range(0, len(classes), _CLASSES_PER_STATEMENT):
        rows.extend(
            _page_rows(connection, query, partner, classes[start : start + _CLASSES_PER_STATEMENT])
        )
    if len(classes) > _CLASSES_PER_STATEMENT:
        rows = sorted(rows, key=lambda row: row[1])[:wanted]
    versions = [
        GrantedVersion(json.loads(body), added, cls, *granted[cls], version, body)
        for body, added, cls, version in rows
    ]
    return Page(versions[: query.limit], len(versions) > query.limit)
