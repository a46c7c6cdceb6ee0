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
from typing import Any

import rfc8785
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from liaison.errors import InvalidProof, LedgerTampered, NotFound
from liaison.ledger import merkle
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
from liaison.stix.timestamps import from_micros, now_micros
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
    else a new one, signed and stored (inside the caller's write transaction)."""
    size = tree_size(connection)
    latest = latest_checkpoint(connection)
    if latest is not None and latest.checkpoint.size == size:
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
    verifier = node_verifier(country, key.public_key())
    return SignedCheckpoint(open_checkpoint(signed, [verifier]), signed)


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
class Verified:
    size: int
    root: bytes
    checkpoints: int
    cosignatures: int


def verify(
    connection: sa.Connection,
    country: str,
    public_key: Ed25519PublicKey,
    progress: Callable[[int], None] | None = None,
) -> Verified:
    """Recompute the whole log from its entries and check it against everything stored:
    each entry's place and fields, every Merkle node, the head, every signed checkpoint and
    cosignature, and the disclosure and policy records that point into it. Raises
    LedgerTampered naming the first bad entry."""
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
    tree = merkle.Appender()
    expected = 0
    for chunk in _entry_chunks(connection):
        leaves = []
        for seq, kind, partner, object_id, body, stored_leaf in chunk:
            if seq != expected:
                raise LedgerTampered(
                    f"entry {expected} is missing (the next stored entry is {seq})",
                    entry=expected,
                )
            _check_entry(seq, kind, partner, object_id, body)
            leaf = merkle.leaf_hash(body.encode())
            if stored_leaf is None or bytes(stored_leaf) != leaf:
                raise LedgerTampered(
                    f"entry {seq} does not match its hash in the Merkle tree", entry=seq
                )
            leaves.append(leaf)
            expected += 1
        for leaf in leaves:
            tree.append(leaf)
            if tree.size in roots and tree.root() != roots[tree.size]:
                first = max((s for s in roots if s < tree.size), default=0)
                raise LedgerTampered(
                    f"the entries before {tree.size} are not those the checkpoint of size "
                    f"{tree.size} signed (changed at or after entry {first})",
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
    cosignatures = _verify_cosignatures(connection, roots)
    _verify_records(connection)
    return Verified(head_size, tree.root(), len(roots), cosignatures)


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
) -> None:
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


def _verify_records(connection: sa.Connection) -> None:
    """The disclosures and policy changes recorded elsewhere each have their entry here.
    Each table is read in entry order, so the error names the first entry found wrong."""
    bad: list[LedgerTampered] = []
    rows = connection.execute(
        sa.select(
            disclosures.c.partner,
            disclosures.c.object_id,
            disclosures.c.version,
            disclosures.c.digest,
            disclosures.c.entry,
            ledger_entries.c.body,
        )
        .outerjoin(ledger_entries, ledger_entries.c.seq == disclosures.c.entry)
        .order_by(disclosures.c.entry.nulls_first())
    )
    for partner, object_id, version, digest, seq, body in rows:
        content = json.loads(body) if body is not None else {}
        if (
            content.get("kind") != "disclosure"
            or content.get("partner") != partner
            or content.get("object_id") != object_id
            or content.get("version") != from_micros(version)
            or content.get("sha256") != digest
        ):
            bad.append(
                LedgerTampered(
                    f"the disclosure of {object_id} to {partner} has no matching ledger entry",
                    entry=seq,
                )
            )
            break
    rows = connection.execute(
        sa.select(policy_changes.c.version, policy_changes.c.entry, ledger_entries.c.body)
        .outerjoin(ledger_entries, ledger_entries.c.seq == policy_changes.c.entry)
        .order_by(policy_changes.c.entry.nulls_first())
    )
    for version, seq, body in rows:
        content = json.loads(body) if body is not None else {}
        if content.get("kind") != "policy" or content.get("version") != version:
            bad.append(
                LedgerTampered(f"policy version {version} has no matching ledger entry", entry=seq)
            )
            break
    if bad:
        # A record with no entry at all comes first.
        raise min(bad, key=lambda error: -1 if error.entry is None else error.entry)
