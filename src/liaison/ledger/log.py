"""The ledger: an append-only log of disclosures and of every change to who may see what.

Each entry is canonical JSON (RFC 8785, through the ``rfc8785`` library) and a leaf of the
RFC 9162 Merkle tree of ``ledger/merkle.py``. Appending happens inside the caller's write
transaction, under a lock on the one head row: several server processes append to one log
without gaps or forks, and an entry exists exactly when the change or disclosure it records
was committed. The hashes of completed (perfect) subtrees are stored as they are made, so a
proof reads O(log n) rows in one query however long the log grows.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from liaison.errors import InvalidProof, LedgerTampered, NotFound
from liaison.ledger import anchor, merkle
from liaison.ledger.note import (
    Checkpoint,
    Verifier,
    cosignature_line,
    note_text,
    open_checkpoint,
    parse_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    verifier_key,
    verify_cosignature,
)
from liaison.stix.timestamps import from_micros, now_micros, to_micros
from liaison.store.engine import execute_compiled, upsert
from liaison.store.schema import (
    disclosures,
    ledger_checkpoints,
    ledger_cosignatures,
    ledger_entries,
    ledger_head,
    ledger_nodes,
    ledger_witnesses,
    policy_changes,
)

# Entry kinds. A disclosure names partner and object; the others record who may see what.
KINDS = ("disclosure", "policy", "credentials", "certificate", "witness", "node-key", "consent")


@dataclass(frozen=True)
class Entry:
    """One entry: its ``kind`` and its fields (strings, integers, lists, objects; no floats,
    so that the canonical encoding is the same in every implementation)."""

    kind: str
    fields: Mapping[str, Any]
    partner: str | None = None
    object_id: str | None = None


@dataclass(frozen=True)
class StoredEntry:
    seq: int
    kind: str
    body: bytes

    @property
    def content(self) -> dict[str, Any]:
        return json.loads(self.body)


def origin_of(country: str, public_key: Ed25519PublicKey) -> str:
    """The log's name in its checkpoints, also the signing key's name: unique per node key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"liaison.{country.lower()}/ledger/{hashlib.sha256(raw).hexdigest()[:16]}"


def node_verifier(country: str, public_key: Ed25519PublicKey) -> Verifier:
    return parse_verifier_key(verifier_key(origin_of(country, public_key), public_key))


# --- appending ---------------------------------------------------------------------------


def encode(seq: int, at: int, entry: Entry) -> bytes:
    """The canonical bytes of an entry: what its leaf hash covers."""
    if entry.kind not in KINDS:
        raise ValueError(f"unknown ledger entry kind {entry.kind!r}")
    return rfc8785.dumps({**entry.fields, "seq": seq, "kind": entry.kind, "at": from_micros(at)})


def append(connection: sa.Connection, entries: Sequence[Entry]) -> list[int]:
    """Append ``entries`` inside the caller's write transaction; their sequence numbers.

    The head row is locked first (``FOR UPDATE`` on PostgreSQL; SQLite's write transactions
    are already serial), so concurrent appenders queue and never fork the log.
    """
    if not entries:
        return []
    head = connection.execute(
        sa.select(ledger_head.c.size, ledger_head.c.frontier)
        .where(ledger_head.c.id == 1)
        .with_for_update()
    ).one()
    size, frontier = head.size, _split(head.frontier)
    at = now_micros()
    bodies = [encode(size + i, at, entry) for i, entry in enumerate(entries)]
    tree = merkle.Appender(size, frontier)
    created = tree.extend([merkle.leaf_hash(body) for body in bodies])
    _insert_many(
        connection,
        ledger_entries,
        [
            {
                "seq": size + i,
                "kind": entry.kind,
                "partner": entry.partner,
                "object_id": entry.object_id,
                "body": body.decode(),
            }
            for i, (entry, body) in enumerate(zip(entries, bodies, strict=True))
        ],
    )
    _insert_many(
        connection,
        ledger_nodes,
        [{"level": level, "index": index, "hash": value} for level, index, value in created],
    )
    connection.execute(
        ledger_head.update()
        .where(ledger_head.c.id == 1)
        .values(size=tree.size, frontier=b"".join(tree.frontier))
    )
    return list(range(size, size + len(entries)))


def lock_head(connection: sa.Connection) -> None:
    """Wait for the appenders ahead and keep the others waiting until the caller's write
    transaction ends (``FOR UPDATE`` on PostgreSQL; SQLite's write transactions are serial):
    what is read afterwards includes everything they appended and recorded."""
    connection.execute(
        sa.select(ledger_head.c.size).where(ledger_head.c.id == 1).with_for_update()
    ).one()


@functools.lru_cache(maxsize=16)
def _compiled_insert(dialect: sa.Dialect, table: sa.Table) -> sa.Compiled:
    return table.insert().compile(dialect=dialect)


def _insert_many(connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """A plain executemany of a precompiled INSERT: on the read path's hot loop, building
    and compiling the statement through SQLAlchemy costs more than the insert itself."""
    execute_compiled(connection, _compiled_insert(connection.dialect, table), rows)


def _split(frontier: bytes) -> list[bytes]:
    step = merkle.HASH_SIZE
    return [frontier[i : i + step] for i in range(0, len(frontier), step)]


# --- reading -----------------------------------------------------------------------------


def tree_size(connection: sa.Connection) -> int:
    return connection.execute(sa.select(ledger_head.c.size)).scalar_one()


def tree_root(connection: sa.Connection, size: int | None = None) -> bytes:
    """The root of the tree of the first ``size`` entries (default: all), from stored nodes."""
    size = tree_size(connection) if size is None else size
    nodes = merkle.range_nodes(size)
    hashes = _read_nodes(connection, nodes)
    return merkle.root_from_range([hashes[node] for node in nodes])


def entries(
    connection: sa.Connection,
    *,
    partner: str | None = None,
    object_id: str | None = None,
    kind: str | None = None,
    limit: int | None = None,
) -> list[StoredEntry]:
    query = sa.select(ledger_entries.c.seq, ledger_entries.c.kind, ledger_entries.c.body)
    if partner is not None:
        query = query.where(ledger_entries.c.partner == partner)
    if object_id is not None:
        query = query.where(ledger_entries.c.object_id == object_id)
    if kind is not None:
        query = query.where(ledger_entries.c.kind == kind)
    query = query.order_by(ledger_entries.c.seq)
    if limit is not None:
        query = query.limit(limit)
    return [StoredEntry(seq, k, body.encode()) for seq, k, body in connection.execute(query)]


def entry_partners(connection: sa.Connection) -> set[str]:
    """The partners that entries are about: today's, and those since removed."""
    query = sa.select(ledger_entries.c.partner).where(ledger_entries.c.partner.is_not(None))
    return set(connection.execute(query.distinct()).scalars())


def entry(connection: sa.Connection, seq: int) -> StoredEntry:
    row = connection.execute(
        sa.select(ledger_entries.c.seq, ledger_entries.c.kind, ledger_entries.c.body).where(
            ledger_entries.c.seq == seq
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"no ledger entry {seq}")
    return StoredEntry(row.seq, row.kind, row.body.encode())


def _read_nodes(
    connection: sa.Connection, nodes: Sequence[merkle.NodeId]
) -> dict[merkle.NodeId, bytes]:
    """The stored hashes of ``nodes``, in one query."""
    if not nodes:
        return {}
    wanted = sorted(set(nodes))
    by_level: dict[int, list[int]] = {}
    for level, index in wanted:
        by_level.setdefault(level, []).append(index)
    # One primary-key range per level: SQLite plans a row-value IN list as a table scan.
    rows = connection.execute(
        sa.select(ledger_nodes.c.level, ledger_nodes.c.index, ledger_nodes.c.hash).where(
            sa.or_(
                *(
                    sa.and_(ledger_nodes.c.level == level, ledger_nodes.c.index.in_(indices))
                    for level, indices in by_level.items()
                )
            )
        )
    )
    found = {(level, index): bytes(value) for level, index, value in rows}
    if len(found) != len(wanted):
        missing = next(node for node in wanted if node not in found)
        raise LedgerTampered(
            f"the stored Merkle node {missing} is missing", entry=missing[1] << missing[0]
        )
    return found


def inclusion_proof(connection: sa.Connection, seq: int, size: int) -> list[bytes]:
    """The RFC 9162 inclusion proof of entry ``seq`` in the tree of ``size`` entries."""
    _check_size(connection, size)
    if not 0 <= seq < size:
        raise NotFound(f"entry {seq} is not in the tree of {size} entries")
    plan = merkle.inclusion_nodes(seq, size)
    return plan.assemble(_read_nodes(connection, plan.node_ids))


def consistency_proof(connection: sa.Connection, old: int, new: int) -> list[bytes]:
    """The RFC 9162 consistency proof from the tree of ``old`` entries to that of ``new``."""
    _check_size(connection, new)
    if not 0 < old <= new:
        raise NotFound(f"no consistency proof from size {old} to size {new}")
    plan = merkle.consistency_nodes(old, new)
    return plan.assemble(_read_nodes(connection, plan.node_ids))


def _check_size(connection: sa.Connection, size: int) -> None:
    current = tree_size(connection)
    if not 0 < size <= current:
        raise NotFound(f"the ledger has {current} entries; there is no tree of size {size}")


# --- checkpoints -------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: str  # the C2SP signed note, with any cosignatures


def checkpoint(connection: sa.Connection, country: str, key: Ed25519PrivateKey) -> SignedCheckpoint:
    """A signed checkpoint of the whole log: the stored one when the log has not grown since,
    else a new one, signed and stored (inside the caller's write transaction).

    A new checkpoint is also appended to the node's anchor file when the transaction commits
    (ledger/anchor.py). The first time a node's anchor file is wanted and does not exist (a
    ledger older than anchor files), the checkpoints stored so far go into it first."""
    size = tree_size(connection)
    latest = latest_checkpoint(connection)
    verifier = node_verifier(country, key.public_key())
    path = anchor.bound_path(connection)
    anchored = _stored_notes(connection, verifier) if path and not path.exists() else []
    if latest is not None and latest.checkpoint.size == size:
        if path and anchored:
            anchor.on_commit(connection, path, anchored)
        return latest
    origin = origin_of(country, key.public_key())
    signed = sign_checkpoint(Checkpoint(origin, size, tree_root(connection, size)), origin, key)
    # Another server process may sign the same tree at the same time: Ed25519 signatures are
    # deterministic, so both notes are the same and either row will do.
    connection.execute(
        upsert(connection, ledger_checkpoints)
        .values(size=size, note=signed, at=now_micros())
        .on_conflict_do_nothing()
    )
    if path:
        anchor.on_commit(connection, path, [*anchored, signed])
    return SignedCheckpoint(open_checkpoint(signed, [verifier]), signed)


def _stored_notes(connection: sa.Connection, verifier: Verifier) -> list[str]:
    """The stored checkpoints signed by ``verifier``, smallest first: what goes into a new
    anchor file (a note that does not verify is `verify`'s to report, not to anchor)."""
    notes = []
    for note in connection.execute(
        sa.select(ledger_checkpoints.c.note).order_by(ledger_checkpoints.c.size)
    ).scalars():
        try:
            open_checkpoint(note, [verifier], origin=verifier.name)
        except (InvalidProof, ValueError):
            continue
        notes.append(note)
    return notes


def latest_checkpoint(connection: sa.Connection) -> SignedCheckpoint | None:
    row = connection.execute(
        sa.select(ledger_checkpoints.c.size, ledger_checkpoints.c.note)
        .order_by(ledger_checkpoints.c.size.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        return None
    return SignedCheckpoint(
        _parse_stored(row.note), with_cosignatures(connection, row.size, row.note)
    )


def _parse_stored(note: str) -> Checkpoint:
    return parse_checkpoint(note_text(note))


def with_cosignatures(connection: sa.Connection, size: int, note: str) -> str:
    """The stored checkpoint note with the cosignature lines witnesses returned for it."""
    lines = connection.execute(
        sa.select(ledger_cosignatures.c.signature)
        .where(ledger_cosignatures.c.size == size)
        .order_by(ledger_cosignatures.c.witness)
    ).scalars()
    extra = "".join(f"{line}\n" for line in lines)
    return note + extra


def checkpoint_at(connection: sa.Connection, size: int) -> str:
    note = connection.execute(
        sa.select(ledger_checkpoints.c.note).where(ledger_checkpoints.c.size == size)
    ).scalar_one_or_none()
    if note is None:
        raise NotFound(f"no checkpoint of size {size}")
    return with_cosignatures(connection, size, note)


# --- witnesses ---------------------------------------------------------------------------


def add_witness(connection: sa.Connection, partner: str, vkey: str) -> Verifier:
    """Let ``partner`` cosign this node's checkpoints with the key ``vkey``; logged."""
    witness = parse_verifier_key(vkey)
    connection.execute(
        upsert(connection, ledger_witnesses)
        .values(name=witness.name, partner=partner, vkey=vkey, added=now_micros())
        .on_conflict_do_update(index_elements=["name"], set_={"partner": partner, "vkey": vkey})
    )
    append(connection, [Entry("witness", {"partner": partner, "vkey": vkey}, partner=partner)])
    return witness


def witnesses(connection: sa.Connection, partner: str | None = None) -> list[Verifier]:
    query = sa.select(ledger_witnesses.c.vkey).order_by(ledger_witnesses.c.name)
    if partner is not None:
        query = query.where(ledger_witnesses.c.partner == partner)
    return [parse_verifier_key(vkey) for vkey in connection.execute(query).scalars()]


def witness_rows(connection: sa.Connection) -> list[dict[str, str]]:
    rows = connection.execute(
        sa.select(
            ledger_witnesses.c.partner, ledger_witnesses.c.name, ledger_witnesses.c.vkey
        ).order_by(ledger_witnesses.c.partner, ledger_witnesses.c.name)
    )
    return [{"partner": p, "name": n, "vkey": v} for p, n, v in rows]


def add_cosignature(connection: sa.Connection, partner: str, cosigned: str) -> list[str]:
    """Store the cosignatures of ``partner``'s witnesses found on ``cosigned`` (a checkpoint
    note this node signed, with their lines appended); the witness names stored. Raises
    InvalidProof when the note is not one of ours or no witness of the partner signed it."""
    body = note_text(cosigned)
    size = parse_checkpoint(body).size
    if note_text(checkpoint_at(connection, size)) != body:
        raise InvalidProof(f"that is not the checkpoint of size {size} this node signed")
    stored = []
    for witness in witnesses(connection, partner):
        try:
            line = cosignature_line(cosigned, witness)
        except InvalidProof:
            continue
        connection.execute(
            upsert(connection, ledger_cosignatures)
            .values(size=size, witness=witness.name, signature=line, at=now_micros())
            .on_conflict_do_nothing()
        )
        stored.append(witness.name)
    if not stored:
        raise InvalidProof(f"no witness of {partner} cosigned the checkpoint of size {size}")
    return stored


# --- verification ------------------------------------------------------------------------

# Entries are read, checked and hashed in aligned chunks of 2**_CHUNK_LEVEL, and the Merkle
# tree recomputed from them a level at a time (merkle.Rebuilder), so that stored nodes are
# compared in bulk and memory does not grow with the log.
_CHUNK_LEVEL = 14
_FETCH = 4_096  # rows read from the driver at once, at least
_CURSORS = itertools.count()

_sha256 = hashlib.sha256


@dataclass(frozen=True)
class AnchorCheck:
    """What the anchor file vouched for: its path, the distinct checkpoints it holds, and the
    largest tree size among them (0: none)."""

    path: str
    checkpoints: int
    size: int


@dataclass(frozen=True)
class Verified:
    size: int
    root: bytes
    checkpoints: int
    cosignatures: int
    # Disclosure records matched one to one with their entries.
    disclosures: int = 0
    anchor: AnchorCheck | None = None
    # What was found and tolerated (a torn last line in the anchor file, ...).
    warnings: tuple[str, ...] = ()


def verify(
    connection: sa.Connection,
    country: str,
    public_key: Ed25519PublicKey,
    progress: Callable[[int], None] | None = None,
    *,
    anchor_file: Path | None = None,
) -> Verified:
    """Recompute the whole log from its entries and check it against everything stored:
    each entry's place and fields, every Merkle node, the head, every signed checkpoint and
    cosignature, every checkpoint in the anchor file (``anchor_file``, by default the one
    bound to the store's node), the disclosure records one to one with the disclosure
    entries, and the policy records that point into the log. Raises LedgerTampered naming
    the first bad entry.

    Everything is read in one pass of ordered queries (entries, each level of the tree,
    disclosure and policy records), so on PostgreSQL the caller's connection should read
    one snapshot (REPEATABLE READ) when others may append meanwhile."""
    origin = origin_of(country, public_key)
    verifier = node_verifier(country, public_key)
    head_size = tree_size(connection)
    checkpoints = {
        size: note
        for size, note in connection.execute(
            sa.select(ledger_checkpoints.c.size, ledger_checkpoints.c.note)
        )
    }
    roots: dict[int, bytes] = {}
    for size, note in checkpoints.items():
        try:
            signed = open_checkpoint(note, [verifier])
        except Exception as error:
            raise LedgerTampered(
                f"the checkpoint of size {size} does not verify: {error}"
            ) from None
        if signed.size != size or signed.origin != origin:
            raise LedgerTampered(f"the checkpoint stored as size {size} is for another tree")
        roots[size] = signed.root
    largest = max(roots, default=0)
    if largest > head_size:
        raise LedgerTampered(
            f"a signed checkpoint covers {largest} entries but the log has {head_size}: "
            f"entries from {head_size} on are missing",
            entry=head_size,
        )
    warnings: list[str] = []
    path = Path(anchor_file).absolute() if anchor_file else anchor.bound_path(connection)
    anchored: dict[int, tuple[bytes, int]] = {}
    if path is not None:
        anchored = _check_anchor(path, checkpoints, roots, verifier, head_size, warnings)
    signed_roots = {**roots, **{size: root for size, (root, _) in anchored.items()}}
    due = sorted(signed_roots, reverse=True)  # the sizes to check the tree at, smallest last
    records = _Records(connection)
    stored = _StoredNodes(connection, head_size)
    tree = merkle.Rebuilder(_CHUNK_LEVEL)
    try:
        for rows in _entry_chunks(connection, 1 << _CHUNK_LEVEL):
            start = tree.size
            leaves = _leaf_hashes(rows)
            bad_leaf = stored.leaf_difference(start, leaves)
            walked: list[_Visit] = []
            try:
                _check_entries(rows, start, bad_leaf, walked)
            finally:
                records.walk(walked)  # the entries before an error too: it may be earlier
            for level, first, hashes in tree.add(leaves):
                if level:
                    stored.check(level, first, hashes)
            while due and due[-1] <= tree.size:
                size = due.pop()
                if tree.root(size) != signed_roots[size]:
                    known = records.error
                    if known is not None and known.entry is not None and known.entry < size:
                        raise known  # a changed entry, named exactly, that the checkpoint covers
                    first = max((s for s in signed_roots if s < size), default=0)
                    where = (
                        f" (anchored on line {anchored[size][1]} of {path})"
                        if size not in roots
                        else ""
                    )
                    raise LedgerTampered(
                        f"the entries before {size} are not those the checkpoint of size "
                        f"{size}{where} signed (changed at or after entry {first})",
                        entry=first,
                    )
            if progress is not None:
                progress(len(rows))
        if tree.size != head_size:
            raise LedgerTampered(
                f"the head says {head_size} entries but {tree.size} are stored",
                entry=min(tree.size, head_size),
            )
        stored.finish()
        head = connection.execute(sa.select(ledger_head.c.frontier)).scalar_one()
        if bytes(head) != b"".join(tree.frontier()):
            raise LedgerTampered("the stored head does not match the entries")
        records.finish(head_size)
        cosignatures = _verify_cosignatures(connection, checkpoints, roots)
        for size, root in sorted(roots.items()):
            # The log matches the anchored tree (checked above), so the stored one is not it.
            if size in anchored and anchored[size][0] != root:
                raise LedgerTampered(
                    f"the checkpoint of size {size} stored in the database is not the one on "
                    f"line {anchored[size][1]} of the anchor file {path}, which the log "
                    "matches: the node's key signed both"
                )
    except LedgerTampered as error:
        # A record found wrong at an earlier entry is the first bad entry.
        raise records.earlier(error) from None
    finally:
        records.close()
        stored.close()
    if records.error is not None:
        raise records.error
    if records.duplicates:
        warnings.append(
            f"{records.duplicates} disclosure entries repeat an earlier entry of the same copy "
            "(recorded twice by concurrent requests before this version): each has its record"
        )
    check = (
        AnchorCheck(str(path), len(anchored), max(anchored, default=0))
        if path is not None
        else None
    )
    return Verified(
        head_size,
        tree.root(),
        len(roots),
        cosignatures,
        disclosures=records.matched,
        anchor=check,
        warnings=tuple(warnings),
    )


def _check_anchor(
    path: Path,
    stored: Mapping[int, str],
    roots: Mapping[int, bytes],
    verifier: Verifier,
    head_size: int,
    warnings: list[str],
) -> dict[int, tuple[bytes, int]]:
    """The root and first line of each tree size in the anchor file, once every record is
    found signed by the node's key and within the log. Where a stored checkpoint differs, the
    anchored one is what the log is checked against."""
    reading = anchor.Reading(path)
    found: dict[int, tuple[bytes, int]] = {}
    # Each distinct note is verified once: the stored ones already are, and one checkpoint
    # may be anchored on several lines (signed by several processes at once).
    opened = {note: (size, roots[size]) for size, note in stored.items() if size in roots}
    for record in anchor.read(path, reading):
        known = opened.get(record.note)
        if known is None:
            try:
                signed = open_checkpoint(record.note, [verifier], origin=verifier.name)
            except (InvalidProof, ValueError) as error:
                raise LedgerTampered(
                    f"line {record.line} of the anchor file {path} is not a checkpoint signed "
                    f"by this node's key: {error}"
                ) from None
            known = opened[record.note] = (signed.size, signed.root)
        size, root = known
        if size != record.size:
            raise LedgerTampered(
                f"line {record.line} of the anchor file {path} says size {record.size} "
                f"but holds the checkpoint of size {size}"
            )
        first = found.setdefault(record.size, (root, record.line))
        if first[0] != root:
            raise LedgerTampered(
                f"the node's key signed two different trees of size {record.size}: lines "
                f"{first[1]} and {record.line} of the anchor file {path}"
            )
    warnings.extend(reading.warnings)
    if not found:
        if stored:
            where = "holds no checkpoint" if reading.exists else "is missing"
            raise LedgerTampered(
                f"the ledger's anchor file {path} {where}, but the database holds "
                f"{len(stored)} signed checkpoints (the largest of {max(stored)} entries): "
                "nothing outside the database vouches for the log. Restore the file from the "
                "backup of the node's home (or set LIAISON_LEDGER_ANCHOR to where it is). If "
                "this node never had one (its ledger is older than anchor files), `liaison "
                "ledger checkpoint` creates it from the database's checkpoints; verify then "
                "holds the log to them, but cannot tell whether it was cut back before."
            )
        warnings.append(
            "no checkpoint has been signed yet: nothing outside the database vouches for the "
            "log (`liaison ledger checkpoint` signs one)"
        )
        return found
    unanchored = len(roots.keys() - found.keys())
    if unanchored:
        warnings.append(
            f"{unanchored} checkpoints stored in the database are not in the anchor file "
            f"{path} (signed before it existed, or by a process with another "
            "LIAISON_LEDGER_ANCHOR)"
        )
    largest = max(found)
    if largest > head_size:
        raise LedgerTampered(
            f"the anchor file {path} holds a checkpoint of {largest} entries (line "
            f"{found[largest][1]}) but the log has {head_size}: entries from {head_size} on "
            "were cut off",
            entry=head_size,
        )
    return found


class _Rows:
    """The rows of one ordered query, read from the driver as they are wanted: a server-side
    cursor on PostgreSQL, so that memory does not grow with the log. verify reads about four
    rows per entry, and a SQLAlchemy Row costs more than the driver's row does; the query's
    only parameters are integers of ours, so it is compiled with them in place."""

    def __init__(self, connection: sa.Connection, query: sa.Select[Any]) -> None:
        sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
        raw: Any = connection.connection.dbapi_connection  # in the connection's transaction
        if connection.dialect.name == "postgresql":
            self._cursor = raw.cursor(name=f"liaison_verify_{next(_CURSORS)}")
        else:
            self._cursor = raw.cursor()
        # The engine's cursor events see it as any statement (the benchmark counts them).
        connection.dispatch.before_cursor_execute(connection, self._cursor, sql, (), None, False)
        self._cursor.execute(sql)
        connection.dispatch.after_cursor_execute(connection, self._cursor, sql, (), None, False)
        self._buffer: list[Any] = []
        self._done = False

    def take(self, count: int) -> list[Any]:
        """The next ``count`` rows (fewer only at the end)."""
        buffer = self._buffer
        while len(buffer) < count and not self._done:
            more = self._cursor.fetchmany(max(count - len(buffer), _FETCH))
            self._done = not more
            buffer.extend(more)
        if len(buffer) == count:
            self._buffer = []
            return buffer
        self._buffer = buffer[count:]
        return buffer[:count]

    def __iter__(self) -> Iterator[Any]:
        while rows := self.take(_FETCH):
            yield from rows

    def close(self) -> None:
        self._cursor.close()


def _entry_chunks(connection: sa.Connection, width: int) -> Iterator[list[Any]]:
    """The entries in order, ``width`` at a time: one query."""
    rows = _Rows(
        connection,
        sa.select(
            ledger_entries.c.seq,
            ledger_entries.c.kind,
            ledger_entries.c.partner,
            ledger_entries.c.object_id,
            ledger_entries.c.body,
        ).order_by(ledger_entries.c.seq),
    )
    try:
        while chunk := rows.take(width):
            yield chunk
    finally:
        rows.close()


def _leaf_hashes(rows: Sequence[Any]) -> list[bytes]:
    """The leaf hash of each entry's body, as stored."""
    try:
        return [_sha256(b"\x00" + row[4].encode()).digest() for row in rows]
    except AttributeError:  # a body that is not text: its entry's check reports it
        return [_sha256(b"\x00" + _bytes(row[4])).digest() for row in rows]


def _check_entries(
    rows: Sequence[Any], start: int, bad_leaf: int | None, walked: list[_Visit]
) -> None:
    """Check entries ``start``, ... (``rows``) in order, each in its place, canonical and
    filed rightly, and its leaf hash stored (all but the one at ``bad_leaf``); add each to
    ``walked`` once checked, for the records."""
    for position, (seq, kind, partner, object_id, body) in enumerate(rows):
        if seq != start + position:
            raise LedgerTampered(
                f"entry {start + position} is missing (the next stored entry is {seq})",
                entry=start + position,
            )
        key = _disclosure_said(seq, kind, partner, object_id, body)
        if key is not None:  # the usual case: all _check_entry checks, at once
            if position == bad_leaf:
                raise _leaf_differs(seq)
            walked.append((seq, kind, key, None))
        else:
            content = _check_entry(seq, kind, partner, object_id, body)
            if position == bad_leaf:
                raise _leaf_differs(seq)
            walked.append(_visiting(seq, kind, content))


def _bytes(body: Any) -> bytes:
    """What a leaf hash covers; a body that is not text (SQLite stores what it is given) is
    reported by the entry's own check, before its leaf."""
    return body.encode() if isinstance(body, str) else b""


def _leaf_differs(seq: int) -> LedgerTampered:
    return LedgerTampered(f"entry {seq} does not match its hash in the Merkle tree", entry=seq)


# A disclosure as both sides say it: partner, object, SHA-256, release class, version.
_Disclosed = tuple[Any, Any, Any, Any, Any]
# An entry as _Records visits it: seq, kind, what a disclosure says, a policy's version.
_Visit = tuple[int, str, _Disclosed | None, Any]


# A disclosure entry as disclosure_entry writes it (ledger/disclosures.py, backfill.py), in
# canonical form: RFC 8785's key order, strings that need no escape, seq a plain integer. A
# body that matches is its own RFC 8785 encoding, and its fields are the groups: it need not
# be parsed and encoded again. Any other body takes the general path (_check_entry).
_TEXT = r'"([^"\\\x00-\x1f\ud800-\udfff]*+)"'
_DISCLOSURE = re.compile(
    rf'\{{"at":{_TEXT},(?:"fingerprint":{_TEXT},)?"kind":"disclosure","object_id":{_TEXT},'
    rf'"partner":{_TEXT},(?:"recorded":{_TEXT},)?"release_class":{_TEXT},'
    rf'"seq":(0|[1-9][0-9]*),"sha256":{_TEXT},"version":{_TEXT}\}}'
)


def _disclosure_said(
    seq: int, kind: str, partner: str | None, object_id: str | None, body: Any
) -> _Disclosed | None:
    """What a disclosure entry written by disclosure_entry says, when its body is canonical,
    in its place and filed under its kind, partner and object (what _check_entry checks);
    None for any other entry, which _check_entry then reads."""
    match = _DISCLOSURE.fullmatch(body) if isinstance(body, str) else None
    if match is None or kind != "disclosure":
        return None
    said = match.groups()
    if said[6] != str(seq) or said[3] != partner or said[2] != object_id:
        return None
    return said[3], said[2], said[7], said[5], said[8]


def _check_entry(
    seq: int, kind: str, partner: str | None, object_id: str | None, body: str
) -> dict[str, Any]:
    """The entry's content, once it is found in its place, canonical and filed rightly."""
    if not isinstance(body, str):
        raise LedgerTampered(f"entry {seq} is not text", entry=seq)
    try:
        content = json.loads(body)
    except (ValueError, RecursionError):
        raise LedgerTampered(f"entry {seq} is not JSON", entry=seq) from None
    if not isinstance(content, dict):
        raise LedgerTampered(f"entry {seq} is not a JSON object", entry=seq)
    if content.get("seq") != seq:
        raise LedgerTampered(
            f"entry {seq} is out of place (it says {content.get('seq')})", entry=seq
        )
    if _plain_canonical(content) != body and rfc8785.dumps(content) != body.encode():
        raise LedgerTampered(f"entry {seq} is not in canonical form", entry=seq)
    if content.get("kind") != kind:
        raise LedgerTampered(f"entry {seq} is filed under the wrong kind", entry=seq)
    # Every kind: receipts find a partner's entries by these columns.
    if content.get("partner") != partner or content.get("object_id") != object_id:
        raise LedgerTampered(f"entry {seq} is filed under the wrong partner or object", entry=seq)
    return content


def _plain_canonical(content: dict[str, Any]) -> str:
    """RFC 8785's encoding for what Liaison writes (strings, integers below 2**53, lists,
    objects with ASCII keys), at json's speed; anything else falls back to ``rfc8785``."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class _StoredNodes:
    """The stored Merkle nodes, each level read in index order by one query as the walk
    reaches it, held against the nodes recomputed from the entries. A leaf that differs is
    the walk's to report, at its entry; the first inner node found wrong is kept and reported
    after the walk (``finish``), as the entries' own checks name the entry more exactly."""

    def __init__(self, connection: sa.Connection, size: int) -> None:
        self._connection = connection
        self._size = size  # the head's: a node at or past size >> level is beyond the end
        self._levels: dict[int, _Rows] = {}
        self._error: tuple[tuple[int, int], LedgerTampered] | None = None

    def leaf_difference(self, first: int, leaves: Sequence[bytes]) -> int | None:
        """The position in ``leaves`` (leaf hashes ``first``, ``first + 1``, ...) of the first
        one stored differently or not at all; None when all are stored as they are."""
        found = self._difference(0, first, leaves)
        return None if found is None else found[0]

    def check(self, level: int, first: int, hashes: Sequence[bytes]) -> None:
        """Hold the stored nodes ``first``, ... of ``level`` to ``hashes``."""
        found = self._difference(level, first, hashes)
        if found is None:
            return
        position, how = found
        index = first + position
        if how == "beyond":
            error = LedgerTampered(
                "the Merkle tree has nodes beyond the log's end", entry=self._size
            )
        else:
            error = LedgerTampered(
                f"the stored Merkle node ({level}, {index}) is {how}", entry=index << level
            )
        if self._error is None or (level, index) < self._error[0]:
            self._error = ((level, index), error)

    def _difference(
        self, level: int, first: int, hashes: Sequence[bytes]
    ) -> tuple[int, str] | None:
        rows = self._level(level).take(len(hashes))
        # Two list comparisons, in C: the common case.
        if [row[0] for row in rows] == list(range(first, first + len(hashes))) and [
            row[1] for row in rows
        ] == hashes:
            return None
        for position, value in enumerate(hashes):
            if position >= len(rows):
                return position, "missing"
            index, stored = rows[position]
            if index != first + position:
                beyond = isinstance(index, int) and index >= self._size >> level
                return position, "beyond" if beyond else "missing"
            if stored != value:
                return position, "wrong"
        raise AssertionError("the stored nodes differ but none was found")  # pragma: no cover

    def _level(self, level: int) -> _Rows:
        rows = self._levels.get(level)
        if rows is None:
            rows = self._levels[level] = _Rows(
                self._connection,
                sa.select(ledger_nodes.c.index, ledger_nodes.c.hash)
                .where(ledger_nodes.c.level == level)
                .order_by(ledger_nodes.c.index),
            )
        return rows

    def finish(self) -> None:
        """After the walk, every node of the tree held to the entries: the first wrong or
        missing one, and then any node more than the tree has."""
        if self._error is not None:
            raise self._error[1]
        stored = self._connection.execute(
            sa.select(sa.func.count()).select_from(ledger_nodes)
        ).scalar_one()
        # A tree of n leaves has one perfect node per (level, index) with index < n >> level.
        size = self._size
        if stored != sum(size >> level for level in range(size.bit_length())):
            raise LedgerTampered("the Merkle tree has nodes beyond the log's end", entry=size)

    def close(self) -> None:
        for rows in self._levels.values():
            rows.close()


def _verify_cosignatures(
    connection: sa.Connection, checkpoints: Mapping[int, str], roots: Mapping[int, bytes]
) -> int:
    known = {w.name: w for w in witnesses(connection)}
    count = 0
    for size, name, line in connection.execute(
        sa.select(
            ledger_cosignatures.c.size,
            ledger_cosignatures.c.witness,
            ledger_cosignatures.c.signature,
        )
    ):
        witness = known.get(name)
        if size not in roots or witness is None:
            raise LedgerTampered(f"a cosignature of size {size} by {name} has no checkpoint")
        note = note_text(checkpoints[size])
        try:
            verify_cosignature(f"{note}\n{line}\n", witness)
        except InvalidProof:
            raise LedgerTampered(
                f"the checkpoint of size {size} is not the one {name} cosigned"
            ) from None
        count += 1
    return count


class _Ahead:
    """The rows of a stream as items (``convert``, a batch at a time), from the current one
    on, looked ahead in without being consumed."""

    def __init__(self, rows: _Rows, convert: Callable[[list[Any]], list[Any]]) -> None:
        self._rows = rows
        self._convert = convert
        self._items: list[Any] = []
        self._at = 0

    def peek(self, count: int) -> list[Any]:
        """The next ``count`` items (fewer only at the end), not consumed."""
        wanted = self._at + count - len(self._items)
        if wanted > 0:
            more = self._convert(self._rows.take(max(wanted, _FETCH)))
            self._items = self._items[self._at :] + more
            self._at = 0
        return self._items[self._at : self._at + count]

    @property
    def current(self) -> Any:
        found = self.peek(1)
        return found[0] if found else None

    def advance(self, count: int = 1) -> None:
        self._at += count

    def close(self) -> None:
        self._rows.close()


class _Records:
    """The records kept outside the log, walked beside it in entry order: the disclosures one
    to one with the disclosure entries (a record for each entry and an entry for each record,
    with the same partner, object, version, digest and release class), and each policy
    change with its entry. Both tables are streamed ordered by entry, so verification holds
    a batch of each in memory however long the log. The first record found wrong is kept
    (``error``): the log's own checks go on, and the lower entry is reported."""

    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection
        self.error: LedgerTampered | None = None
        self.matched = 0
        self.duplicates = 0
        # Disclosure records as (entry, what they say, in _Disclosed's order).
        self._disclosures = _Ahead(
            _Rows(
                connection,
                sa.select(
                    disclosures.c.entry,
                    disclosures.c.partner,
                    disclosures.c.object_id,
                    disclosures.c.digest,
                    disclosures.c.release_class,
                    disclosures.c.version,
                ).order_by(disclosures.c.entry.nulls_first()),
            ),
            _disclosure_records,
        )
        # Policy records as (entry, version).
        self._policy = _Ahead(
            _Rows(
                connection,
                sa.select(policy_changes.c.entry, policy_changes.c.version).order_by(
                    policy_changes.c.entry.nulls_first()
                ),
            ),
            lambda rows: [tuple(row) for row in rows],
        )
        first, policy = self._disclosures.current, self._policy.current
        if first is not None and first[0] is None:
            self._fail(f"the disclosure of {first[1][1]} to {first[1][0]} has no ledger entry")
        elif policy is not None and policy[0] is None:
            self._fail(f"policy version {policy[1]} has no matching ledger entry")

    def _fail(self, message: str, entry: int | None = None) -> None:
        if self.error is None:
            self.error = LedgerTampered(message, entry=entry)

    def walk(self, entries: Sequence[_Visit]) -> None:
        """The next entries, in order (each entry's own checks passed), the ones before them
        walked."""
        if self.error is not None or not entries or self._in_bulk(entries):
            return
        for seq, kind, key, version in entries:
            self._visit(seq, kind, key, version)

    def _in_bulk(self, entries: Sequence[_Visit]) -> bool:
        """Whether the records pointing into ``entries`` are exactly those of its disclosure
        and policy entries, in order and the same: then they are consumed at once, and the
        walk one entry at a time would find nothing (the usual case, compared in C)."""
        end = entries[-1][0] + 1
        told = [(seq, key) for seq, kind, key, _ in entries if kind == "disclosure"]
        changes = [(seq, version) for seq, kind, _, version in entries if kind == "policy"]
        for records, expected in ((self._disclosures, told), (self._policy, changes)):
            found = records.peek(len(expected) + 1)
            after = found[len(expected)][0] if len(found) > len(expected) else end
            if found[: len(expected)] != expected or not (isinstance(after, int) and after >= end):
                return False
        self._disclosures.advance(len(told))
        self._policy.advance(len(changes))
        self.matched += len(told)
        return True

    def visit(self, seq: int, kind: str, content: Mapping[str, Any]) -> None:
        """Entry ``seq`` (of ``kind``, read as ``content``), the entries before it walked."""
        self._visit(*_visiting(seq, kind, content))

    def _visit(self, seq: int, kind: str, key: _Disclosed | None, version: Any) -> None:
        if self.error is not None:
            return
        record = self._disclosures.current
        if kind == "disclosure" or (record is not None and _at(record) <= seq):
            self._disclosure(seq, kind, key, record)
        change = self._policy.current
        if self.error is None and change is not None and _at(change) <= seq:
            self._policy_change(seq, kind, version, change)

    def _disclosure(self, seq: int, kind: str, key: _Disclosed | None, record: Any) -> None:
        at = _END if record is None else _at(record)
        if at < seq:
            self._misfiled(record)
        elif kind != "disclosure":
            self._fail(
                f"the disclosure of {record[1][1]} to {record[1][0]} is filed under entry "
                f"{seq}, which is a {kind} entry",
                seq,
            )
        elif at == seq:
            if record[1] == key:
                self.matched += 1
                self._disclosures.advance()
            else:
                self._fail(
                    f"the disclosure record of entry {seq} ({record[1][1]} to {record[1][0]}) "
                    "does not match the entry",
                    seq,
                )
        elif key is not None and self._recorded_before(seq, key):
            self.duplicates += 1
        else:
            assert key is not None
            self._fail(
                f"entry {seq} records a disclosure of {key[1]} to {key[0]} that has no "
                "disclosure record",
                seq,
            )

    def _misfiled(self, record: Any) -> None:
        """A disclosure record pointing at an entry already passed: a second record of one
        entry, or no entry at all."""
        entry, (partner, object_id, *_) = record
        if not isinstance(entry, int) or entry < 0:
            self._fail(
                f"the disclosure of {object_id} to {partner} is filed under entry "
                f"{entry}, which does not exist"
            )
        else:
            self._fail(f"two disclosure records are filed under entry {entry}", entry)

    def _recorded_before(self, seq: int, key: _Disclosed) -> bool:
        """Whether the copy of this entry has a record under an earlier entry with the same
        fields: one copy recorded twice by concurrent requests (record_disclosures now
        prevents it). That record matched its own entry, or the walk would have stopped."""
        partner, object_id, digest, release_class, version = key
        if not all(isinstance(value, str) for value in (partner, object_id, digest, version)):
            return False
        try:
            micros = to_micros(version)
        except ValueError:
            return False
        row = self._connection.execute(
            sa.select(disclosures.c.entry, disclosures.c.release_class).where(
                disclosures.c.partner == partner,
                disclosures.c.object_id == object_id,
                disclosures.c.version == micros,
                disclosures.c.digest == digest,
            )
        ).one_or_none()
        return (
            row is not None
            and isinstance(row.entry, int)
            and row.entry < seq
            and row.release_class == release_class
        )

    def _policy_change(self, seq: int, kind: str, version: Any, change: Any) -> None:
        recorded = change[1]
        if _at(change) < seq:
            self._policy_misfiled(change)
        elif kind != "policy" or version != recorded:
            self._fail(f"policy version {recorded} has no matching ledger entry", seq)
        else:
            self._policy.advance()

    def _policy_misfiled(self, change: Any) -> None:
        """A policy record pointing at an entry already passed."""
        entry, version = change
        if not isinstance(entry, int) or entry < 0:
            self._fail(
                f"policy version {version} is filed under entry {entry}, which does not exist"
            )
        else:
            self._fail(f"two policy records are filed under entry {entry}", entry)

    def finish(self, size: int) -> None:
        """After the last entry: no record may point beyond it."""
        if self.error is not None:
            return
        record, change = self._disclosures.current, self._policy.current
        if record is not None:
            if _at(record) < size:
                self._misfiled(record)
            else:
                self._fail(
                    f"the disclosure of {record[1][1]} to {record[1][0]} has no ledger entry "
                    f"(it is filed under entry {record[0]}, beyond the log's {size} entries)",
                    record[0],
                )
        elif change is not None:
            if _at(change) < size:
                self._policy_misfiled(change)
            else:
                self._fail(f"policy version {change[1]} has no matching ledger entry", change[0])

    def earlier(self, error: LedgerTampered) -> LedgerTampered:
        """``error`` from the log's own checks, or the record found wrong at an earlier entry."""
        found = self.error
        if (
            found is not None
            and found.entry is not None
            and (error.entry is None or found.entry < error.entry)
        ):
            return found
        return error

    def close(self) -> None:
        self._disclosures.close()
        self._policy.close()


_END = float("inf")


def _at(record: Any) -> float:
    """The entry a record points at, for comparing with entries: one that is no entry number
    at all (SQLite stores what it is given) counts as before the first, so it is reported."""
    entry = record[0]
    return entry if isinstance(entry, int) else -1


def _visiting(seq: int, kind: str, content: Mapping[str, Any]) -> _Visit:
    """An entry read through json, as _Records visits it."""
    get = content.get
    key = (
        (get("partner"), get("object_id"), get("sha256"), get("release_class"), get("version"))
        if kind == "disclosure"
        else None
    )
    return seq, kind, key, get("version") if kind == "policy" else None


def _disclosure_records(rows: list[Any]) -> list[tuple[Any, _Disclosed]]:
    """Disclosure records as (entry, what they say)."""
    known = _TIMESTAMPS.get
    return [
        (entry, (partner, object_id, digest, release_class, known(version) or _timestamp(version)))
        for entry, partner, object_id, digest, release_class, version in rows
    ]


_TIMESTAMPS: dict[int, str | None] = {}


def _timestamp(micros: int) -> str | None:
    """from_micros, remembered: one version is usually disclosed to several partners. None
    for what is no time at all (SQLite stores what it is given): it matches no entry."""
    found = _TIMESTAMPS.get(micros, "")
    if found == "":
        if len(_TIMESTAMPS) >= 65_536:
            _TIMESTAMPS.clear()
        try:
            found = from_micros(micros)
        except (TypeError, ValueError, OverflowError):
            found = None
        _TIMESTAMPS[micros] = found
    return found
