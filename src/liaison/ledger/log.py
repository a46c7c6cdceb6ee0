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
import json
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

_VERIFY_CHUNK = 10_000
_RECORDS_CHUNK = 2_000  # rows of disclosures and policy_changes fetched at once by verify


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
    the first bad entry."""
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
    records = _Records(connection)
    tree = merkle.Appender()
    expected = 0
    try:
        for chunk in _entry_chunks(connection):
            leaves = []
            for seq, kind, partner, object_id, body, stored_leaf in chunk:
                if seq != expected:
                    raise LedgerTampered(
                        f"entry {expected} is missing (the next stored entry is {seq})",
                        entry=expected,
                    )
                content = _check_entry(seq, kind, partner, object_id, body)
                leaf = merkle.leaf_hash(body.encode())
                if stored_leaf is None or bytes(stored_leaf) != leaf:
                    raise LedgerTampered(
                        f"entry {seq} does not match its hash in the Merkle tree", entry=seq
                    )
                records.visit(seq, kind, content)
                leaves.append(leaf)
                expected += 1
            for leaf in leaves:
                tree.append(leaf)
                if tree.size in signed_roots and tree.root() != signed_roots[tree.size]:
                    known = records.error
                    if known is not None and known.entry is not None and known.entry < tree.size:
                        raise known  # a changed entry, named exactly, that the checkpoint covers
                    first = max((s for s in signed_roots if s < tree.size), default=0)
                    where = (
                        f" (anchored on line {anchored[tree.size][1]} of {path})"
                        if tree.size not in roots
                        else ""
                    )
                    raise LedgerTampered(
                        f"the entries before {tree.size} are not those the checkpoint of size "
                        f"{tree.size}{where} signed (changed at or after entry {first})",
                        entry=first,
                    )
            if progress is not None:
                progress(len(chunk))
        if expected != head_size:
            raise LedgerTampered(
                f"the head says {head_size} entries but {expected} are stored",
                entry=min(expected, head_size),
            )
        _verify_nodes(connection, head_size)
        head = connection.execute(sa.select(ledger_head.c.frontier)).scalar_one()
        if bytes(head) != b"".join(tree.frontier):
            raise LedgerTampered("the stored head does not match the entries")
        records.finish(head_size)
        cosignatures = _verify_cosignatures(connection, roots)
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
    for record in anchor.read(path, reading):
        if stored.get(record.size) == record.note and record.size in roots:
            root = roots[record.size]  # the stored note, already verified
        else:
            try:
                signed = open_checkpoint(record.note, [verifier], origin=verifier.name)
            except (InvalidProof, ValueError) as error:
                raise LedgerTampered(
                    f"line {record.line} of the anchor file {path} is not a checkpoint signed "
                    f"by this node's key: {error}"
                ) from None
            if signed.size != record.size:
                raise LedgerTampered(
                    f"line {record.line} of the anchor file {path} says size {record.size} "
                    f"but holds the checkpoint of size {signed.size}"
                )
            root = signed.root
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


def _entry_chunks(connection: sa.Connection) -> Iterator[list[sa.Row]]:
    leaf = ledger_nodes.alias("leaf")
    last = -1
    while True:
        rows = connection.execute(
            sa.select(
                ledger_entries.c.seq,
                ledger_entries.c.kind,
                ledger_entries.c.partner,
                ledger_entries.c.object_id,
                ledger_entries.c.body,
                leaf.c.hash,
            )
            .outerjoin(leaf, sa.and_(leaf.c.level == 0, leaf.c.index == ledger_entries.c.seq))
            .where(ledger_entries.c.seq > last)
            .order_by(ledger_entries.c.seq)
            .limit(_VERIFY_CHUNK)
        ).all()
        if not rows:
            return
        yield rows
        last = rows[-1].seq


def _check_entry(
    seq: int, kind: str, partner: str | None, object_id: str | None, body: str
) -> dict[str, Any]:
    """The entry's content, once it is found in its place, canonical and filed rightly."""
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


def _verify_nodes(connection: sa.Connection, size: int) -> None:
    """Every stored inner node is the hash of its two children, and none is missing or extra
    (level 0 was checked against the entries)."""
    level = 1
    while (1 << level) <= size:
        children = _level(connection, level - 1)
        count = 0
        for index, value in _level(connection, level):
            if index >= size >> level:
                raise LedgerTampered("the Merkle tree has nodes beyond the log's end", entry=size)
            if index != count:
                raise LedgerTampered(
                    f"the stored Merkle node ({level}, {count}) is missing", entry=count << level
                )
            left, right = next(children, None), next(children, None)
            if (
                left is None
                or right is None
                or left[0] != 2 * index
                or right[0] != 2 * index + 1
                or merkle.node_hash(left[1], right[1]) != value
            ):
                raise LedgerTampered(
                    f"the stored Merkle node ({level}, {index}) is wrong",
                    entry=index << level,
                )
            count += 1
        if count != size >> level:
            raise LedgerTampered(
                f"level {level} of the Merkle tree has {count} nodes, not {size >> level}",
                entry=count << level,
            )
        level += 1
    stored = connection.execute(sa.select(sa.func.count()).select_from(ledger_nodes)).scalar_one()
    # A tree of n leaves has exactly one perfect node per (level, index) with index < n >> level.
    expected = sum(size >> level for level in range(size.bit_length()))
    extra = stored - expected
    if extra:
        raise LedgerTampered("the Merkle tree has nodes beyond the log's end", entry=size)


def _level(connection: sa.Connection, level: int) -> Iterator[tuple[int, bytes]]:
    last = -1
    while True:
        rows = connection.execute(
            sa.select(ledger_nodes.c.index, ledger_nodes.c.hash)
            .where(ledger_nodes.c.level == level, ledger_nodes.c.index > last)
            .order_by(ledger_nodes.c.index)
            .limit(_VERIFY_CHUNK)
        ).all()
        if not rows:
            return
        for index, value in rows:
            yield index, bytes(value)
        last = rows[-1].index


def _verify_cosignatures(connection: sa.Connection, roots: Mapping[int, bytes]) -> int:
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
        note = note_text(checkpoint_at(connection, size))
        try:
            verify_cosignature(f"{note}\n{line}\n", witness)
        except InvalidProof:
            raise LedgerTampered(
                f"the checkpoint of size {size} is not the one {name} cosigned"
            ) from None
        count += 1
    return count


class _Records:
    """The records kept outside the log, walked beside it in entry order: the disclosures one
    to one with the disclosure entries (a record for each entry and an entry for each record,
    with the same partner, object, version, digest and release class), and each policy
    change with its entry. Both tables are streamed ordered by entry, so verification holds
    one row of each in memory however long the log. The first record found wrong is kept
    (``error``): the log's own checks go on, and the lower entry is reported."""

    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection
        self.error: LedgerTampered | None = None
        self.matched = 0
        self.duplicates = 0
        stream = {"stream_results": True, "yield_per": _RECORDS_CHUNK}
        self._disclosures = connection.execute(
            sa.select(
                disclosures.c.entry,
                disclosures.c.partner,
                disclosures.c.object_id,
                disclosures.c.version,
                disclosures.c.digest,
                disclosures.c.release_class,
            )
            .order_by(disclosures.c.entry.nulls_first())
            .execution_options(**stream)
        )
        self._policy = connection.execute(
            sa.select(policy_changes.c.entry, policy_changes.c.version)
            .order_by(policy_changes.c.entry.nulls_first())
            .execution_options(**stream)
        )
        self._d: sa.Row | None = None
        self._p: sa.Row | None = None
        self._d_at: float = _END  # the entry the next record points at
        self._p_at: float = _END
        self._next_disclosure()
        self._next_policy()
        if self._d is not None and self._d.entry is None:
            self._fail(
                f"the disclosure of {self._d.object_id} to {self._d.partner} has no ledger entry"
            )
        elif self._p is not None and self._p.entry is None:
            self._fail(f"policy version {self._p.version} has no matching ledger entry")

    def _next_disclosure(self) -> None:
        self._d = next(self._disclosures, None)
        self._d_at = _END if self._d is None else self._d.entry

    def _next_policy(self) -> None:
        self._p = next(self._policy, None)
        self._p_at = _END if self._p is None else self._p.entry

    def _fail(self, message: str, entry: int | None = None) -> None:
        self.error = LedgerTampered(message, entry=entry)

    def visit(self, seq: int, kind: str, content: dict[str, Any]) -> None:
        """Entry ``seq`` (of ``kind``, read as ``content``), the entries before it visited."""
        if self.error is not None:
            return
        if kind == "disclosure" or self._d_at <= seq:
            self._disclosure(seq, kind, content)
        if self.error is None and self._p_at <= seq:
            self._policy_change(seq, kind, content)

    def _disclosure(self, seq: int, kind: str, content: dict[str, Any]) -> None:
        row = self._d
        if row is not None and row.entry < seq:
            self._misfiled(row)
        elif kind != "disclosure":
            assert row is not None
            self._fail(
                f"the disclosure of {row.object_id} to {row.partner} is filed under entry "
                f"{seq}, which is a {kind} entry",
                seq,
            )
        elif row is not None and row.entry == seq:
            if _same_disclosure(row, content):
                self.matched += 1
                self._next_disclosure()
            else:
                self._fail(
                    f"the disclosure record of entry {seq} ({row.object_id} to {row.partner}) "
                    "does not match the entry",
                    seq,
                )
        elif self._recorded_before(seq, content):
            self.duplicates += 1
        else:
            self._fail(
                f"entry {seq} records a disclosure of {content.get('object_id')} to "
                f"{content.get('partner')} that has no disclosure record",
                seq,
            )

    def _misfiled(self, row: sa.Row) -> None:
        """A disclosure record pointing at an entry already passed: a second record of one
        entry, or no entry at all."""
        if row.entry < 0:
            self._fail(
                f"the disclosure of {row.object_id} to {row.partner} is filed under entry "
                f"{row.entry}, which does not exist"
            )
        else:
            self._fail(f"two disclosure records are filed under entry {row.entry}", row.entry)

    def _recorded_before(self, seq: int, content: dict[str, Any]) -> bool:
        """Whether the copy of this entry has a record under an earlier entry with the same
        fields: one copy recorded twice by concurrent requests (record_disclosures now
        prevents it). That record matched its own entry, or the walk would have stopped."""
        try:
            version = to_micros(content["version"])
            key = (content["partner"], content["object_id"], content["sha256"])
        except (KeyError, TypeError, ValueError):
            return False
        row = self._connection.execute(
            sa.select(disclosures.c.entry, disclosures.c.release_class).where(
                disclosures.c.partner == key[0],
                disclosures.c.object_id == key[1],
                disclosures.c.version == version,
                disclosures.c.digest == key[2],
            )
        ).one_or_none()
        return (
            row is not None
            and row.entry is not None
            and row.entry < seq
            and row.release_class == content.get("release_class")
        )

    def _policy_change(self, seq: int, kind: str, content: dict[str, Any]) -> None:
        row = self._p
        assert row is not None
        if row.entry < seq:
            self._fail(f"two policy records are filed under entry {row.entry}", row.entry)
        elif kind != "policy" or content.get("version") != row.version:
            self._fail(f"policy version {row.version} has no matching ledger entry", seq)
        else:
            self._next_policy()

    def finish(self, size: int) -> None:
        """After the last entry: no record may point beyond it."""
        if self.error is not None:
            return
        if self._d is not None:
            if self._d.entry < size:
                self._misfiled(self._d)
            else:
                self._fail(
                    f"the disclosure of {self._d.object_id} to {self._d.partner} has no "
                    f"ledger entry (it is filed under entry {self._d.entry}, beyond the log's "
                    f"{size} entries)",
                    self._d.entry,
                )
        elif self._p is not None:
            if self._p.entry < size:
                self._fail(
                    f"two policy records are filed under entry {self._p.entry}", self._p.entry
                )
            else:
                self._fail(
                    f"policy version {self._p.version} has no matching ledger entry",
                    self._p.entry,
                )

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


def _same_disclosure(row: sa.Row, content: Mapping[str, Any]) -> bool:
    return (
        content.get("partner") == row.partner
        and content.get("object_id") == row.object_id
        and content.get("sha256") == row.digest
        and content.get("release_class") == row.release_class
        and content.get("version") == _timestamp(row.version)
    )


_TIMESTAMPS: dict[int, str] = {}


def _timestamp(micros: int) -> str:
    """from_micros, remembered: one version is usually disclosed to several partners."""
    found = _TIMESTAMPS.get(micros)
    if found is None:
        if len(_TIMESTAMPS) >= 65_536:
            _TIMESTAMPS.clear()
        found = _TIMESTAMPS[micros] = from_micros(micros)
    return found
