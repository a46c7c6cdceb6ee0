"""Object versions: writing a batch in one transaction, and reading them back.

Each version is stored once, keyed on (id, version); ``date_added`` comes from the ``clock``
row, which the writer locks first, so it is unique and grows in commit order; ``latest``
marks the newest version of each id.

Every id has one owner, the agency whose object it is: the first version stored names it,
and a version from anyone else is refused (STIX 2.1 section 3.6: only an object's creator
may version it). Marking definitions are never versioned: a known id is accepted again only
when the definition is identical. Both are checked here, after the writer's lock, so two
writers cannot both claim a new id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

from liaison.policy.classes import ClassKey, class_key
from liaison.stix.timestamps import now_micros
from liaison.store.ownership import Claim, claims, version_of
from liaison.store.schema import clock, objects

Outcome = Literal["added", "present", "refused"]


@dataclass
class Added:
    """What one write did: the outcome for each object, in order, why one was refused or
    not stored (by position), and the release classes of the versions it added."""

    outcomes: list[Outcome]
    classes: dict[str, ClassKey]
    messages: dict[int, str] = field(default_factory=dict)


# Rows per INSERT statement and ids per IN (...) lookup.
BATCH = 500
# A write this large changes the table enough to refresh the database's statistics.
ANALYZE_AFTER = 10_000


@dataclass(frozen=True)
class VersionKey:
    id: str
    version: int


@dataclass(frozen=True)
class Versions:
    """TAXII's ``match[version]``: any mix of ``first``, ``last``, ``all`` and exact
    versions (microseconds), each taken among the versions the partner may see."""

    first: bool = False
    last: bool = True
    all: bool = False
    at: tuple[int, ...] = ()

    def selects(self, version: int, versions: Iterable[int]) -> bool:
        """Whether this filter selects ``version`` among ``versions`` (the visible ones)."""
        known = list(versions)
        return (
            self.all
            or version in self.at
            or (self.first and version == min(known))
            or (self.last and version == max(known))
        )


def add_objects(
    connection: sa.Connection,
    batch: Sequence[dict[str, Any]],
    received_from: str | None = None,
    judged: Mapping[tuple[str, int], Claim] | None = None,
) -> Added:
    """Store every version in ``batch`` not already stored, written by ``received_from`` (a
    partner's code; None for the node's operator). Refuse what that writer may not claim
    (``ownership.claims``, with the claims in ``judged``), a version of an id another agency
    owns, and a marking definition that differs from the one known under its id.

    Must run inside a write transaction: the caller commits or rolls back the whole batch.
    """
    last_added = connection.execute(
        sa.select(clock.c.last_added).where(clock.c.id == 1).with_for_update()
    ).scalar_one()
    keys = [VersionKey(obj["id"], version_of(obj)) for obj in batch]
    stored, owner_of = _stored_versions(connection, {key.id for key in keys})
    # One version each: definitions never change.
    definitions = {
        oid: body
        for oid, (body, _) in owned_definitions(
            connection, {k.id for k, o in zip(keys, batch, strict=True) if _is_definition(o)}
        ).items()
    }

    outcomes: list[Outcome] = []
    messages: dict[int, str] = {}
    classes: dict[str, ClassKey] = {}
    new_rows: list[dict[str, Any]] = []
    newest: dict[str, int] = {}
    seen: set[VersionKey] = set()
    date_added = max(now_micros(), last_added + 1)
    for position, (obj, key, claim) in enumerate(
        zip(batch, keys, claims(connection, batch, received_from, judged), strict=True)
    ):
        if claim.standard:
            outcomes.append("present")
            messages[position] = "a standard definition, known here: not taken from a partner"
            continue
        if claim.owner is None:
            outcomes.append("refused")
            messages[position] = f"{key.id} {claim.refusal}"
            continue
        owner = claim.owner
        holder = owner_of.setdefault(key.id, owner)
        if holder != owner:
            outcomes.append("refused")
            messages[position] = (
                f"{key.id} belongs to {holder}: only its owner may version, revoke or re-mark it"
            )
            continue
        if _is_definition(obj):
            known = definitions.setdefault(key.id, obj)
            if known != obj:
                outcomes.append("refused")
                messages[position] = (
                    f"{key.id} is already defined otherwise: a marking definition never changes"
                )
                continue
        if key in seen or key.version in stored.get(key.id, ()):
            outcomes.append("present")
            continue
        seen.add(key)
        outcomes.append("added")
        newest[key.id] = max(newest.get(key.id, key.version), key.version)
        release = class_key(obj, owner)
        classes.setdefault(release.id, release)
        new_rows.append(_row(obj, key, date_added, received_from, owner, release.id))
        date_added += 1
    if not new_rows:
        return Added(outcomes, classes, messages)

    for row in new_rows:
        row["latest"] = row["version"] == newest[row["id"]] and row["version"] > max(
            stored.get(row["id"], (-1,))
        )
    superseded = [
        {"oid": oid, "newest": version}
        for oid, version in newest.items()
        if stored.get(oid) and version > max(stored[oid])
    ]
    for start in range(0, len(new_rows), BATCH):
        _insert_batch(connection, new_rows[start : start + BATCH])
    if superseded:
        connection.execute(
            objects.update()
            .where(objects.c.id == sa.bindparam("oid"))
            .where(objects.c.version < sa.bindparam("newest"))
            .where(objects.c.latest.is_(True))
            .values(latest=False),
            superseded,
        )
    connection.execute(
        clock.update().where(clock.c.id == 1).values(last_added=new_rows[-1]["date_added"])
    )
    if len(new_rows) >= ANALYZE_AFTER:
        # Fresh statistics: without them PostgreSQL plans the next id lookups as full scans
        # until autovacuum catches up (a re-import 20x slower), and SQLite, which keeps none
        # by itself, reads a partner's page 3-4x slower at 100,000 objects (SQLite samples a
        # bounded number of rows per index: engine.py, analysis_limit).
        connection.exec_driver_sql("ANALYZE objects")
    return Added(outcomes, classes, messages)


def _is_definition(obj: dict[str, Any]) -> bool:
    return obj.get("type") == "marking-definition"


def _insert_batch(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    connection.execute(objects.insert(), rows)


def _row(
    obj: dict[str, Any],
    key: VersionKey,
    date_added: int,
    received_from: str | None,
    owner: str,
    release_class: str,
) -> dict[str, Any]:
    modified = obj.get("modified") or obj.get("created")
    return {
        "id": key.id,
        "version": key.version,
        "modified": modified if isinstance(modified, str) else None,
        "type": obj["type"],
        "spec_version": str(obj.get("spec_version", "2.1")),
        "created_by_ref": obj.get("created_by_ref"),
        "revoked": bool(obj.get("revoked", False)),
        "latest": False,
        "date_added": date_added,
        "received_from": received_from,
        "owner": owner,
        "body": json.dumps(obj, ensure_ascii=False, separators=(",", ":")),
        "release_class": release_class,
    }


def _stored_versions(
    connection: sa.Connection, ids: set[str]
) -> tuple[dict[str, set[int]], dict[str, str]]:
    """The stored versions of each of ``ids``, and its owner."""
    found: dict[str, set[int]] = {}
    owners: dict[str, str] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), BATCH):
        chunk = ordered[start : start + BATCH]
        rows = connection.execute(
            sa.select(objects.c.id, objects.c.version, objects.c.owner).where(
                objects.c.id.in_(chunk)
            )
        )
        for oid, version, owner in rows:
            found.setdefault(oid, set()).add(version)
            owners[oid] = owner
    return found, owners


@dataclass(frozen=True)
class StoredVersion:
    """One stored version with the server's bookkeeping beside the STIX object."""

    object: dict[str, Any]
    date_added: int
    received_from: str | None
    owner: str


def _stored(row: sa.Row) -> StoredVersion:
    return StoredVersion(json.loads(row.body), row.date_added, row.received_from, row.owner)


def latest_versions(connection: sa.Connection, type_: str | None = None) -> Iterator[StoredVersion]:
    """The newest version of every object (of ``type_``), oldest added first."""
    query = sa.select(
        objects.c.body, objects.c.date_added, objects.c.received_from, objects.c.owner
    ).where(objects.c.latest.is_(True))
    if type_ is not None:
        query = query.where(objects.c.type == type_)
    for row in connection.execute(query.order_by(objects.c.date_added)):
        yield _stored(row)


def versions_of(connection: sa.Connection, object_id: str) -> list[StoredVersion]:
    """Every stored version of ``object_id``, oldest first; empty if there is none."""
    rows = connection.execute(
        sa.select(objects.c.body, objects.c.date_added, objects.c.received_from, objects.c.owner)
        .where(objects.c.id == object_id)
        .order_by(objects.c.version)
    )
    return [_stored(row) for row in rows]


def count_versions(connection: sa.Connection) -> int:
    return connection.execute(sa.select(sa.func.count()).select_from(objects)).scalar_one()


def delete_versions(connection: sa.Connection, owner: str, object_id: str, match: Versions) -> int:
    """Delete the versions of ``object_id`` that ``match`` selects, if ``owner`` owns it;
    how many were deleted. The newest remaining version becomes the latest."""
    stored = (
        connection.execute(
            sa.select(objects.c.version).where(objects.c.id == object_id, objects.c.owner == owner)
        )
        .scalars()
        .all()
    )
    doomed = [v for v in stored if match.selects(v, stored)]
    if not doomed:
        return 0
    connection.execute(
        objects.delete().where(objects.c.id == object_id, objects.c.version.in_(doomed))
    )
    remaining = [v for v in stored if v not in doomed]
    if remaining:
        connection.execute(
            objects.update()
            .where(objects.c.id == object_id, objects.c.version == max(remaining))
            .values(latest=True)
        )
    return len(doomed)


def owned_definitions(
    connection: sa.Connection, ids: Iterable[str]
) -> dict[str, tuple[dict[str, Any], str]]:
    """The stored marking definitions among ``ids``, each with its owner."""
    wanted = sorted(set(ids))
    found: dict[str, tuple[dict[str, Any], str]] = {}
    for start in range(0, len(wanted), BATCH):
        rows = connection.execute(
            sa.select(objects.c.id, objects.c.body, objects.c.owner).where(
                objects.c.id.in_(wanted[start : start + BATCH]),
                objects.c.type == "marking-definition",
                objects.c.latest.is_(True),
            )
        )
        found.update({oid: (json.loads(body), owner) for oid, body, owner in rows})
    return found


def latest_bodies(connection: sa.Connection, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The latest version of each of ``ids`` the store holds, by id."""
    wanted = sorted(set(ids))
    bodies: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), BATCH):
        rows = connection.execute(
            sa.select(objects.c.id, objects.c.body).where(
                objects.c.id.in_(wanted[start : start + BATCH]), objects.c.latest.is_(True)
            )
        )
        bodies.update({oid: json.loads(body) for oid, body in rows})
    return bodies


def stored_text(obj: dict[str, Any]) -> str:
    """The text a version is stored as (its ``body``)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def stored_identically(connection: sa.Connection, batch: Sequence[dict[str, Any]]) -> set[int]:
    """The positions in ``batch`` of objects the store already holds with the same text: the
    same id and version, byte for byte (the version is in the text). An importer need not
    validate those again."""
    positions: dict[str, list[int]] = {}
    for position, obj in enumerate(batch):
        if isinstance(obj.get("id"), str):
            positions.setdefault(obj["id"], []).append(position)
    wanted = sorted(positions)
    found: set[int] = set()
    for start in range(0, len(wanted), BATCH):
        bodies: dict[str, set[str]] = {}
        rows = connection.execute(
            sa.select(objects.c.id, objects.c.body).where(
                objects.c.id.in_(wanted[start : start + BATCH])
            )
        )
        for oid, body in rows:
            bodies.setdefault(oid, set()).add(body)
        for oid, stored in bodies.items():
            found.update(p for p in positions[oid] if stored_text(batch[p]) in stored)
    return found
