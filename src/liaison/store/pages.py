"""What a partner may see: object versions joined with the partner's grants.

A partner's view is taken within what it may see: "last" is the newest version whose class
is granted to it, "first" the oldest, so a partner gets the newest version it may see and
nothing tells it that a newer one exists.

The read path never loops over objects in Python, and a page reads whole only the rows it
returns. One of three plans answers it, each exact on its own:

- ``match[id]``: the versions of those ids (primary key), kept when their class is granted.
- A partner granted many classes *walks*: the objects in the order they were added, each
  checked against the granted classes on an index that holds ``(date_added, release_class,
  latest)``, until ``limit + 1`` are found. Such a partner sees a large share of what is
  stored, so the walk stops early. It looks at ``WALK_SPAN`` entries per row wanted, then
  at spans twice as long, each from where the last ended, while it has looked at fewer
  entries than the per-class plan would read (one per granted class and row wanted); a walk
  still short of a full page then gives way to the next plan.
- Otherwise *per class*: for each granted class, an index range on ``(release_class,
  date_added)`` yields at most ``limit + 1`` entries (all classes in one UNION ALL
  statement), and the smallest ``limit + 1`` are kept. It costs as many index seeks as the
  partner has classes, however few of the stored objects it may see.

So a page costs about its size, plus at most one bounded walk or one seek per granted
class; it does not grow with the objects stored.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from liaison.store.engine import execute_compiled
from liaison.store.objects import Versions
from liaison.store.schema import grants, objects

# SQLite allows at most 500 terms in one compound SELECT.
_CLASSES_PER_STATEMENT = 400
# A partner granted more classes than this walks the objects in the order they were added.
FEW_CLASSES = 16
# The entries a walk's first span looks at, per row wanted.
WALK_SPAN = 20


@dataclass(frozen=True)
class PageQuery:
    """The filters of one page (TAXII's ``match[...]``, ``added_after``, ``limit``)."""

    types: tuple[str, ...] = ()  # empty: any type
    ids: tuple[str, ...] = ()  # empty: any id
    versions: Versions = field(default_factory=Versions)
    spec_versions: tuple[str, ...] = ()
    added_after: int | None = None
    limit: int = 100


# {class id: (decision, cuts)} of the classes a partner may receive, whole or cut.
Granted = Mapping[str, tuple[str, tuple[str, ...]]]


@dataclass(frozen=True)
class Page:
    versions: list[GrantedVersion]
    more: bool
    granted: Granted  # the partner's grants the page was read with


@dataclass(frozen=True)
class GrantedVersion:
    id: str
    text: str = field(repr=False)  # the stored JSON text (compact, as delivered uncut)
    date_added: int
    release_class: str
    decision: str
    cuts: tuple[str, ...]
    version: int  # the version key: ``modified`` (or ``created``) in microseconds
    owner: str  # who may version it: the node's country for what the node originated

    @functools.cached_property
    def object(self) -> dict[str, Any]:
        """The version's body, parsed on first use: a page served from copies already made
        never parses it."""
        return json.loads(self.text)


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
            objects.c.id,
            objects.c.body,
            objects.c.date_added,
            objects.c.release_class,
            grants.c.decision,
            grants.c.cuts,
            objects.c.version,
            objects.c.owner,
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
        GrantedVersion(oid, body, added, cls, decision, tuple(json.loads(cuts)), version, owner)
        for oid, body, added, cls, decision, cuts, version, owner in connection.execute(query)
    ]


@dataclass(frozen=True)
class VisibleVersion:
    """The newest version of an object a partner may see."""

    type: str
    version: int
    date_added: int
    body: str | None  # its stored text; None for the types the caller left out


def visible_versions(
    connection: sa.Connection,
    ids: Iterable[str],
    granted: Container[str],
    bodiless: frozenset[str],
) -> dict[str, VisibleVersion]:
    """Of ``ids``, those a partner granted the classes ``granted`` may see, each with the
    newest version it may see (``granted`` as this connection's snapshot holds them:
    :func:`granted_classes`), and its stored text, except for objects of the types in
    ``bodiless``. Every version of each id is read by primary key and the grants are
    applied here: a partner's newest visible version may be older than the latest."""
    wanted = sorted(set(ids))
    found: dict[str, VisibleVersion] = {}
    statement = _visible_statement()
    kinds = sorted(bodiless) or [""]
    for start in range(0, len(wanted), 500):
        rows = connection.execute(statement, {"ids": wanted[start : start + 500], "kinds": kinds})
        for oid, release_class, kind, version, added, body in rows:
            if release_class not in granted:
                continue
            seen = found.get(oid)
            if seen is None or version > seen.version:
                found[oid] = VisibleVersion(kind, version, added, body)
    return found


@functools.cache
def _visible_statement() -> sa.Select[Any]:
    """Built once: the statement's shape never changes (its id list is expanded when run)."""
    return sa.select(
        objects.c.id,
        objects.c.release_class,
        objects.c.type,
        objects.c.version,
        objects.c.date_added,
        sa.case(
            (objects.c.type.in_(sa.bindparam("kinds", expanding=True)), sa.null()),
            else_=objects.c.body,
        ),
    ).where(objects.c.id.in_(sa.bindparam("ids", expanding=True)))


def granted_classes(connection: sa.Connection, partner: str) -> Granted:
    """The classes ``partner`` may receive, each with its decision and cuts."""
    return {
        class_id: (decision, tuple(json.loads(cuts)))
        for class_id, decision, cuts in connection.execute(
            sa.select(grants.c.class_id, grants.c.decision, grants.c.cuts).where(
                grants.c.partner == partner, grants.c.decision != "withhold"
            )
        )
    }


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


def _shape(query: PageQuery, plan: str, classes: int, bounded: bool = False) -> tuple[Any, ...]:
    """What a page statement's SQL depends on: the plan, the number of classes and of each
    filter's values, never the values themselves (those are bound)."""
    match = query.versions
    versions = "all" if match.all else (match.first, match.last, len(match.at))
    return (
        plan,
        classes,
        bounded,
        query.added_after is not None,
        len(query.types),
        len(query.ids),
        len(query.spec_versions),
        versions,
    )


def _bound(name: str, count: int) -> list[sa.BindParameter[Any]]:
    return [sa.bindparam(f"{name}{i}") for i in range(count)]


def _filters(shape: tuple[Any, ...]) -> list[sa.ColumnElement[bool]]:
    _, _, _, added_after, types, ids, spec_versions, versions = shape
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


def _values(
    query: PageQuery, partner: str, classes: list[str], upper: int | None = None
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "wanted": query.limit + 1,
        "added_after": query.added_after,
        "partner": partner,
        "upper": upper,
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


_WHOLE = (
    objects.c.id,
    objects.c.body,
    objects.c.date_added,
    objects.c.release_class,
    objects.c.version,
    objects.c.owner,
)


@functools.lru_cache(maxsize=256)
def _compiled(dialect: sa.Dialect, shape: tuple[Any, ...]) -> sa.Compiled:
    """The page statement of this shape, compiled once: building and compiling it costs
    more than running it."""
    plan, classes, bounded = shape[:3]
    conditions = _filters(shape)
    wanted = sa.bindparam("wanted")
    if plan == "classes":
        per_class = [
            sa.select(objects.c.date_added)
            .where(objects.c.release_class == class_id, *conditions)
            .order_by(objects.c.date_added)
            .limit(wanted)
            .subquery()
            .select()
            for class_id in _bound("class", classes)
        ]
        keys = (per_class[0] if len(per_class) == 1 else sa.union_all(*per_class)).subquery()
        winners = sa.select(keys.c.date_added).order_by(keys.c.date_added).limit(wanted)
        statement = (
            sa.select(*_WHOLE)
            .where(objects.c.date_added.in_(winners.scalar_subquery()))
            .order_by(objects.c.date_added)
        )
    else:
        if plan == "walk":
            # ``|| ''`` keeps the planner off the per-class index (SQLite would otherwise
            # seek each class and sort): the walk follows date_added.
            granted = objects.c.release_class.concat(sa.literal_column("''")).in_(
                _bound("class", classes)
            )
        else:  # "ids": the primary key finds the versions, few per id
            granted = objects.c.release_class.in_(_bound("class", classes))
        if bounded:
            conditions.append(objects.c.date_added <= sa.bindparam("upper"))
        statement = (
            sa.select(*_WHOLE)
            .where(granted, *conditions)
            .order_by(objects.c.date_added)
            .limit(wanted)
        )
    compiled = statement.compile(dialect=dialect)
    if plan == "walk" and dialect.name == "sqlite":
        # SQLite would walk the unique index on date_added, which lacks the class: every
        # entry would read its row, the report's text included, to find the class.
        compiled.string = compiled.string.replace(
            "FROM objects \n", "FROM objects INDEXED BY ix_objects_added_class \n", 1
        )
    return compiled


@functools.lru_cache(maxsize=8)
def _span_end(dialect: sa.Dialect, added_after: bool) -> sa.Compiled:
    """The ``date_added`` of the entry a walk's span ends at (none: the walk reaches the end)."""
    statement = sa.select(objects.c.date_added)
    if added_after:
        statement = statement.where(objects.c.date_added > sa.bindparam("added_after"))
    statement = (
        statement.order_by(objects.c.date_added)
        .limit(sa.bindparam("one"))
        .offset(sa.bindparam("skip"))
    )
    return statement.compile(dialect=dialect)


def _run(
    connection: sa.Connection,
    query: PageQuery,
    partner: str,
    classes: list[str],
    plan: str,
    upper: int | None = None,
) -> list[Any]:
    compiled = _compiled(connection.dialect, _shape(query, plan, len(classes), upper is not None))
    params = compiled.construct_params(_values(query, partner, classes, upper))
    return execute_compiled(connection, compiled, params).all()


def _page_rows(
    connection: sa.Connection,
    query: PageQuery,
    partner: str,
    classes: list[str],
    span: int | None = None,
) -> list[Any]:
    """The first ``limit + 1`` versions of these classes matching ``query``, by the
    cheapest plan that answers exactly (see the module's docstring)."""
    if query.ids:
        return _run(connection, query, partner, classes, "ids")
    wanted = query.limit + 1
    if len(classes) > FEW_CLASSES:
        # Spans that double, each going on where the last ended, until the walk has looked
        # at as many entries as the per-class plan would read at most.
        span = WALK_SPAN * wanted if span is None else span
        budget = len(classes) * wanted
        rows: list[Any] = []
        after, walked = query.added_after, 0
        while True:
            end = _span_end(connection.dialect, after is not None)
            params = end.construct_params({"added_after": after, "one": 1, "skip": span - 1})
            upper = execute_compiled(connection, end, params).scalar()
            rest = replace(query, added_after=after, limit=wanted - len(rows) - 1)
            rows += _run(connection, rest, partner, classes, "walk", upper)
            if upper is None or len(rows) == wanted:
                return rows
            walked += span
            if walked >= budget:
                break
            after, span = upper, min(span * 2, budget - walked)
    return _run(connection, query, partner, classes, "classes")


def page(
    connection: sa.Connection,
    partner: str,
    query: PageQuery,
    granted: Granted | None = None,
    *,
    span: int | None = None,
) -> Page:
    """One page of the versions ``partner`` may receive, oldest added first. ``granted``
    (``{class id: (decision, cuts)}`` of the classes it may receive, as this connection's
    snapshot holds them) saves reading the grants again; ``span`` sets how far a walk looks
    (tests use it to reach every plan on small stores)."""
    if granted is None:
        granted = granted_classes(connection, partner)
    if not granted or query.limit <= 0:
        return Page([], False, granted)
    wanted = query.limit + 1
    classes = sorted(granted)
    rows: list[Any] = []
    for start in range(0, len(classes), _CLASSES_PER_STATEMENT):
        chunk = classes[start : start + _CLASSES_PER_STATEMENT]
        rows.extend(_page_rows(connection, query, partner, chunk, span))
    if len(classes) > _CLASSES_PER_STATEMENT:
        rows = sorted(rows, key=lambda row: row[2])[:wanted]
    versions = [
        GrantedVersion(oid, body, added, cls, *granted[cls], version, owner)
        for oid, body, added, cls, version, owner in rows
    ]
    return Page(versions[: query.limit], len(versions) > query.limit, granted)
