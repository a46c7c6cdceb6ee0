"""Every page plan (walk, per class, by id) gives exactly what a plain reference computes
from the stored rows: the versions of granted classes, chosen by ``match[version]``,
filtered, oldest added first, ``limit + 1`` of them."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from liaison.store import pages
from liaison.store.engine import create_engine
from liaison.store.migrate import upgrade
from liaison.store.objects import Versions
from liaison.store.pages import PageQuery, page
from liaison.store.schema import grants, objects
from tests.conftest import examples

CLASSES = [f"class-{n:02d}" for n in range(24)]
IDS = [f"note--00000000-0000-4000-8000-{n:012d}" for n in range(12)]
TYPES = ["note", "report"]


@dataclass(frozen=True)
class Row:
    id: str
    version: int
    type: str
    date_added: int
    release_class: str
    latest: bool


@st.composite
def stores(draw: st.DrawFn) -> list[Row]:
    """Objects with one to four versions each, in any class, added in any order."""
    drafts = []
    for oid in draw(st.lists(st.sampled_from(IDS), min_size=0, max_size=12, unique=True)):
        versions = draw(st.lists(st.integers(1, 9), min_size=1, max_size=4, unique=True))
        kind = draw(st.sampled_from(TYPES))
        for version in versions:
            drafts.append((oid, version, kind, draw(st.sampled_from(CLASSES)), max(versions)))
    order = draw(st.permutations(range(len(drafts))))
    return [
        Row(oid, version, kind, 1000 + order[n], cls, version == newest)
        for n, (oid, version, kind, cls, newest) in enumerate(drafts)
    ]


@st.composite
def queries(draw: st.DrawFn) -> PageQuery:
    version = draw(st.sampled_from(["last", "first", "all", "first+last", "at"]))
    versions = {
        "last": Versions(),
        "first": Versions(first=True, last=False),
        "all": Versions(last=False, all=True),
        "first+last": Versions(first=True, last=True),
        "at": Versions(last=False, at=tuple(draw(st.sets(st.integers(1, 9), min_size=1)))),
    }[version]
    return PageQuery(
        types=tuple(draw(st.sets(st.sampled_from(TYPES), max_size=1))),
        ids=tuple(draw(st.sets(st.sampled_from(IDS), max_size=2))),
        versions=versions,
        added_after=draw(st.none() | st.integers(999, 1040)),
        limit=draw(st.integers(1, 6)),
    )


def reference(rows: list[Row], granted: set[str], query: PageQuery) -> list[tuple[str, int]]:
    visible = [row for row in rows if row.release_class in granted]
    seen: dict[str, list[int]] = {}
    for row in visible:
        seen.setdefault(row.id, []).append(row.version)
    match = query.versions

    def chosen(row: Row) -> bool:
        if match.all:
            return True
        return (
            (match.last and row.version == max(seen[row.id]))
            or (match.first and row.version == min(seen[row.id]))
            or row.version in match.at
        )

    kept = sorted(
        (
            row
            for row in visible
            if chosen(row)
            and (not query.types or row.type in query.types)
            and (not query.ids or row.id in query.ids)
            and (query.added_after is None or row.date_added > query.added_after)
        ),
        key=lambda row: row.date_added,
    )
    return [(row.id, row.version) for row in kept[: query.limit + 1]]


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    engine = create_engine(database_url)
    upgrade(engine)
    return engine


def test_every_plan_agrees_with_the_reference(engine: sa.Engine) -> None:
    @settings(max_examples=examples(300))
    @given(
        rows=stores(),
        granted=st.sets(st.sampled_from(CLASSES)),
        query=queries(),
        plan=st.sampled_from(["walk", "short walk", "spans", "per class"]),
    )
    def check(rows: list[Row], granted: set[str], query: PageQuery, plan: str) -> None:
        expected = reference(rows, granted, query)
        with engine.connect() as connection:
            transaction = connection.begin()
            try:
                if rows:
                    connection.execute(
                        objects.insert(),
                        [
                            {
                                "id": row.id,
                                "version": row.version,
                                "type": row.type,
                                "spec_version": "2.1",
                                "revoked": False,
                                "latest": row.latest,
                                "date_added": row.date_added,
                                "owner": "CAN",
                                "body": json.dumps({"id": row.id, "v": row.version}),
                                "release_class": row.release_class,
                            }
                            for row in rows
                        ],
                    )
                for class_id in CLASSES:
                    connection.execute(
                        grants.insert().values(
                            partner="USA",
                            class_id=class_id,
                            decision="release" if class_id in granted else "withhold",
                            cuts="[]",
                            reasons="[]",
                            policy_version=1,
                        )
                    )
                # The walk for any partner granted more than one class. A first span of one
                # entry per row wanted makes most walks go on in longer spans, then give way
                # to the per-class plan; a first span of one entry, go on in many spans.
                few, span = {
                    "walk": (1, None),
                    "short walk": (1, query.limit + 1),
                    "spans": (1, 1),
                    "per class": (99, None),
                }[plan]
                original = pages.FEW_CLASSES
                pages.FEW_CLASSES = few
                try:
                    result = page(connection, "USA", query, span=span)
                finally:
                    pages.FEW_CLASSES = original
                got = [(v.object["id"], v.version) for v in result.versions]
                assert result.more == (len(expected) > query.limit)
                assert got == expected[: query.limit]
            finally:
                transaction.rollback()

    check()
