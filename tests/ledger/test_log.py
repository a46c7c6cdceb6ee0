"""liaison.ledger.log: appending, proofs and checkpoints read from the store, and `verify`
against every kind of tampering, concurrent appenders and killed processes, on SQLite and
PostgreSQL.

The tampering tests change the store the way someone with database access would (plain SQL)
inside a transaction that is then rolled back, so one log serves every case.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import rfc8785
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from liaison.errors import InvalidProof, LedgerTampered, NotFound
from liaison.importer import import_objects
from liaison.ledger import anchor, log, merkle, note
from liaison.ledger.disclosures import Disclosure, record_disclosures
from liaison.markings.tlp import TLP_CLEAR, tlp_definition
from liaison.node import Node, apply_alliance, load_signing_key
from liaison.policy.grants import record_change
from liaison.store.engine import write_transaction
from liaison.store.schema import (
    disclosures,
    ledger_checkpoints,
    ledger_cosignatures,
    ledger_entries,
    ledger_head,
    ledger_nodes,
    policy_changes,
)
from liaison.taxii.credentials import issue_credentials
from tests.conftest import HTTP_TIMEOUT, PATIENCE, examples
from tests.ledger.append_worker import KIND as WORKER_KIND
from tests.ledger.conftest import small_chunks
from tests.stix_factory import indicator

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PARTNERS = ("USA", "FRA", "TUR", "ALB")
VERSION = 1_495_710_300_000_000  # 2017-05-25T11:05:00Z, the factory indicators' version
WITNESS = "witness.usa.example"


# --- building logs -------------------------------------------------------------------------


def delivered(n: int, partner: str) -> Disclosure:
    obj = indicator(n)
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    return Disclosure(partner, obj["id"], VERSION, "tlp-clear", data)


def credentials_entry(n: int) -> log.Entry:
    partner = PARTNERS[n % len(PARTNERS)]
    fields = {"partner": partner, "action": "issued", "username": f"{partner.lower()}-{n}"}
    return log.Entry("credentials", fields, partner=partner)


def size_of(node: Node) -> int:
    with node.engine.connect() as connection:
        return log.tree_size(connection)


@dataclass
class Built:
    """A log of real disclosures, policy changes and credentials, checkpointed as it grew."""

    node: Node
    size: int
    key: Ed25519PrivateKey
    checkpoints: dict[int, str]
    kinds: dict[int, str]

    def of_kind(self, kind: str) -> list[int]:
        return [seq for seq, k in sorted(self.kinds.items()) if k == kind]

    @property
    def recorded(self) -> list[int]:
        """Entries with a row in `disclosures` or `policy_changes` pointing at them."""
        return [seq for seq, k in sorted(self.kinds.items()) if k in ("disclosure", "policy")]


def build_log(node: Node, marks: tuple[int, ...], total: int) -> Built:
    """Grow the node's log to ``total`` entries in uneven write transactions, signing a
    checkpoint at each of ``marks``; a witness of USA cosigns the second checkpoint."""
    key = load_signing_key(node.settings.home)
    witness_key = Ed25519PrivateKey.generate()
    with write_transaction(node.engine) as connection:
        log.add_witness(connection, "USA", note.cosigner_key(WITNESS, witness_key.public_key()))
    size, step = size_of(node), 0
    for target in (*marks, total):
        while size < target:
            room = target - size
            with write_transaction(node.engine) as connection:
                if step % 4 == 1:
                    record_change(connection, "ledger-test", {"step": step, "note": "à Riga"})
                elif step % 4 == 3:
                    log.append(
                        connection, [credentials_entry(step + j) for j in range(min(room, 2))]
                    )
                else:
                    count = min(room, 1 + step % 6)
                    batch = [
                        delivered(10 * step + j, PARTNERS[(step + j) % 4]) for j in range(count)
                    ]
                    record_disclosures(connection, batch)
                size = log.tree_size(connection)
            step += 1
        if target in marks:
            with write_transaction(node.engine) as connection:
                log.checkpoint(connection, node.country, key)
    checkpoints: dict[int, str] = {}
    with write_transaction(node.engine) as connection:
        for mark in marks:
            checkpoints[mark] = log.checkpoint_at(connection, mark)
        cosigned = marks[1]
        line = note.cosign(checkpoints[cosigned], WITNESS, witness_key, int(time.time()))
        assert log.add_cosignature(connection, "USA", checkpoints[cosigned] + line) == [WITNESS]
        kinds = {e.seq: e.kind for e in log.entries(connection)}
    assert size == total == len(kinds)
    return Built(node, total, key, checkpoints, kinds)


@pytest.fixture
def built(node: Node) -> Built:
    return build_log(node, marks=(64, 150, 250), total=300)


@contextmanager
def rolled_back(node: Node) -> Iterator[sa.Connection]:
    """A transaction whose changes are all undone afterwards."""
    with node.engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


def verify(connection: sa.Connection, node: Node) -> log.Verified:
    return log.verify(connection, node.country, node.public_key)


def leaves_of(connection: sa.Connection) -> list[bytes]:
    return [merkle.leaf_hash(e.body) for e in log.entries(connection)]


# --- appending and proofs ------------------------------------------------------------------

BATCHES = (1, 7, 2, 13, 1, 5, 3, 8)  # with the node's own entry, 41 entries


def append_batches(node: Node) -> None:
    count = 0
    for size in BATCHES:
        with write_transaction(node.engine) as connection:
            before = log.tree_size(connection)
            entries = [credentials_entry(count + j) for j in range(size - size // 2)]
            entries += [
                log.Entry("witness", {"partner": "FRA", "vkey": f"k{count + j}"}, partner="FRA")
                for j in range(size // 2)
            ]
            assert log.append(connection, entries) == list(range(before, before + size))
            assert log.tree_size(connection) == before + size
        count += size


def test_entries_are_numbered_from_the_current_size_and_are_canonical(node):
    append_batches(node)
    with write_transaction(node.engine) as connection:
        # Two appends in one transaction continue each other; nothing appends nothing.
        assert log.append(connection, [credentials_entry(100)]) == [41]
        assert log.append(connection, [credentials_entry(101), credentials_entry(102)]) == [42, 43]
        assert log.append(connection, []) == []
    with (
        pytest.raises(ValueError, match="unknown ledger entry kind"),
        write_transaction(node.engine) as connection,
    ):
        log.append(connection, [credentials_entry(103), log.Entry("gossip", {})])
    with node.engine.connect() as connection:
        stored = log.entries(connection)
        assert log.tree_size(connection) == 44
    assert [e.seq for e in stored] == list(range(44))
    for e in stored:
        assert rfc8785.dumps(json.loads(e.body)) == e.body
        assert e.content["seq"] == e.seq and e.content["kind"] == e.kind
    assert stored[0].kind == "node-key"
    assert Counter(e.kind for e in stored) == {"node-key": 1, "credentials": 26, "witness": 17}


def test_tree_root_is_the_root_of_every_stored_body(node):
    append_batches(node)
    with node.engine.connect() as connection:
        leaves = leaves_of(connection)
        assert len(leaves) == 41
        assert log.tree_root(connection) == merkle.root(leaves)
        for size in range(1, len(leaves) + 1):
            assert log.tree_root(connection, size) == merkle.root(leaves[:size])


def test_every_proof_from_the_store_verifies(node):
    append_batches(node)
    with node.engine.connect() as connection:
        leaves = leaves_of(connection)
        n = len(leaves)
        roots = [merkle.EMPTY_ROOT] + [merkle.root(leaves[:size]) for size in range(1, n + 1)]
        for size in range(1, n + 1):
            for index in range(size):
                proof = log.inclusion_proof(connection, index, size)
                assert proof == merkle.inclusion_proof(leaves[:size], index)
                merkle.verify_inclusion(leaves[index], index, size, proof, roots[size])
            for old in range(1, size + 1):
                proof = log.consistency_proof(connection, old, size)
                assert proof == merkle.consistency_proof(leaves, old, size)
                merkle.verify_consistency(old, size, roots[old], roots[size], proof)
        # A proof for the wrong place does not verify.
        proof = log.inclusion_proof(connection, 17, 33)
        with pytest.raises(InvalidProof):
            merkle.verify_inclusion(leaves[18], 17, 33, proof, roots[33])
        with pytest.raises(InvalidProof):
            merkle.verify_inclusion(leaves[17], 17, 34, proof, roots[34])
        proof = log.consistency_proof(connection, 11, 33)
        with pytest.raises(InvalidProof):
            merkle.verify_consistency(11, 33, roots[12], roots[33], proof)
        # Nothing is proved about trees the log never had.
        for args in ((n, n), (0, n + 1), (-1, n)):
            with pytest.raises(NotFound):
                log.inclusion_proof(connection, *args)
        for args in ((0, n), (5, n + 1), (6, 5)):
            with pytest.raises(NotFound):
                log.consistency_proof(connection, *args)


# --- checkpoints ---------------------------------------------------------------------------


def test_a_checkpoint_is_signed_stored_and_reused_until_the_log_grows(node):
    key = load_signing_key(node.settings.home)
    verifier = log.node_verifier(node.country, node.public_key)
    append_batches(node)
    with write_transaction(node.engine) as connection:
        first = log.checkpoint(connection, node.country, key)
        root = log.tree_root(connection)
    opened = note.open_checkpoint(first.note, [verifier])
    assert (opened.size, opened.root) == (41, root)
    assert first.checkpoint == opened
    assert opened.origin == log.origin_of(node.country, node.public_key)

    with write_transaction(node.engine) as connection:
        again = log.checkpoint(connection, node.country, key)
    assert again == first
    with node.engine.connect() as connection:
        stored = connection.execute(sa.select(sa.func.count()).select_from(ledger_checkpoints))
        assert stored.scalar_one() == 1

    with write_transaction(node.engine) as connection:
        log.append(connection, [credentials_entry(0)])
        later = log.checkpoint(connection, node.country, key)
        assert log.checkpoint_at(connection, 41) == first.note
        assert log.latest_checkpoint(connection) == later
        proof = log.consistency_proof(connection, 41, 42)
    newer = note.open_checkpoint(later.note, [verifier])
    assert newer.size == 42 and newer.root != root
    merkle.verify_consistency(41, 42, root, newer.root, proof)

    # Nobody else's key vouches for it, and it names this node's key.
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(InvalidProof):
        note.open_checkpoint(later.note, [log.node_verifier(node.country, other)])
    with node.engine.connect() as connection:
        assert verify(connection, node).checkpoints == 2


# --- tampering -----------------------------------------------------------------------------

Tampering = Callable[[sa.Connection, Built], int | None]
TAMPERINGS: dict[str, Tampering] = {}


def tampering(function: Tampering) -> Tampering:
    """Register a tampering: it changes the store and returns the entry verify must name."""
    TAMPERINGS[function.__name__] = function
    return function


def body_of(connection: sa.Connection, seq: int) -> str:
    return log.entry(connection, seq).body.decode()


def set_entry(connection: sa.Connection, seq: int, **values: Any) -> None:
    connection.execute(ledger_entries.update().where(ledger_entries.c.seq == seq).values(**values))


def set_node(connection: sa.Connection, level: int, index: int, value: bytes) -> None:
    connection.execute(
        ledger_nodes.update()
        .where(ledger_nodes.c.level == level, ledger_nodes.c.index == index)
        .values(hash=value)
    )


def node_of(connection: sa.Connection, level: int, index: int) -> bytes:
    return bytes(
        connection.execute(
            sa.select(ledger_nodes.c.hash).where(
                ledger_nodes.c.level == level, ledger_nodes.c.index == index
            )
        ).scalar_one()
    )


def flipped(value: bytes, position: int = 0, bit: int = 0) -> bytes:
    return value[:position] + bytes([value[position] ^ (1 << bit)]) + value[position + 1 :]


def row_of(connection: sa.Connection, seq: int) -> dict[str, Any]:
    row = connection.execute(sa.select(ledger_entries).where(ledger_entries.c.seq == seq)).one()
    return {k: v for k, v in row._mapping.items() if k != "seq"}


@tampering
def one_byte_of_a_body(connection, built):
    seq = built.of_kind("disclosure")[40]
    body = body_of(connection, seq)
    at = body.index('"sha256":"') + len('"sha256":"')
    set_entry(connection, seq, body=body[:at] + ("1" if body[at] == "0" else "0") + body[at + 1 :])
    return seq


@tampering
def a_body_that_is_not_an_object(connection, built):
    set_entry(connection, 77, body="[]")
    return 77


@tampering
def a_body_nested_too_deep_to_read(connection, built):
    set_entry(connection, 78, body="[" * 100_000)
    return 78


@tampering
def an_entry_deleted(connection, built):
    connection.execute(ledger_entries.delete().where(ledger_entries.c.seq == 123))
    return 123


@tampering
def the_last_entry_deleted(connection, built):
    connection.execute(ledger_entries.delete().where(ledger_entries.c.seq == built.size - 1))
    return built.size - 1


@tampering
def two_bodies_swapped(connection, built):
    first, second = body_of(connection, 101), body_of(connection, 180)
    set_entry(connection, 101, body=second)
    set_entry(connection, 180, body=first)
    return 101


@tampering
def two_rows_swapped(connection, built):
    i = built.of_kind("disclosure")[20]
    j = next(s for s in built.of_kind("credentials") if s > i + 10)
    first, second = row_of(connection, i), row_of(connection, j)
    set_entry(connection, i, **second)
    set_entry(connection, j, **first)
    return i


@tampering
def two_entries_swapped_and_renumbered_with_their_leaves(connection, built):
    # Each entry rewritten in its new place and its leaf hash with it: only the inner nodes
    # and the checkpoint of size 250 disagree, and a checkpoint can only bound the change;
    # unless a disclosure or policy record names the entry now at 160 exactly.
    for seq, other in ((160, 201), (201, 160)):
        row = row_of(connection, other)
        body = rfc8785.dumps({**json.loads(row["body"]), "seq": seq})
        set_entry(connection, seq, **{**row, "body": body.decode()})
        set_node(connection, 0, seq, merkle.leaf_hash(body))
    recorded = {built.kinds[160], built.kinds[201]} & {"disclosure", "policy"}
    return 160 if recorded else 150


def truncate(connection: sa.Connection, size: int) -> None:
    """Cut the log to ``size`` entries as a careful forger would: entries, the nodes that
    cover them, and a head that agrees with what is left."""
    connection.execute(ledger_entries.delete().where(ledger_entries.c.seq >= size))
    for level in range(size.bit_length() + 1):  # node (level, i) ends at (i + 1) << level
        connection.execute(
            ledger_nodes.delete().where(
                ledger_nodes.c.level == level, ledger_nodes.c.index >= size >> level
            )
        )
    frontier = b"".join(node_of(connection, *n) for n in merkle.range_nodes(size))
    connection.execute(ledger_head.update().values(size=size, frontier=frontier))


@tampering
def the_last_entries_truncated(connection, built):
    truncate(connection, 240)  # below the checkpoint of size 250
    return 240


@tampering
def the_last_entries_truncated_with_their_checkpoints(connection, built):
    truncate(connection, 240)
    connection.execute(ledger_checkpoints.delete().where(ledger_checkpoints.c.size > 240))
    return 240  # the anchor file still holds the checkpoint of size 250


@tampering
def the_head_moved_back(connection, built):
    frontier = b"".join(node_of(connection, *n) for n in merkle.range_nodes(280))
    connection.execute(ledger_head.update().values(size=280, frontier=frontier))
    return 280


@tampering
def a_leaf_hash_changed(connection, built):
    set_node(connection, 0, 99, flipped(node_of(connection, 0, 99)))
    return 99


@tampering
def an_inner_node_changed(connection, built):
    set_node(connection, 3, 5, flipped(node_of(connection, 3, 5), 31, 7))
    return 40


@tampering
def a_leaf_hash_deleted(connection, built):
    connection.execute(
        ledger_nodes.delete().where(ledger_nodes.c.level == 0, ledger_nodes.c.index == 99)
    )
    return 99


@tampering
def an_inner_node_deleted(connection, built):
    connection.execute(
        ledger_nodes.delete().where(ledger_nodes.c.level == 2, ledger_nodes.c.index == 7)
    )
    return 28


@tampering
def a_node_beyond_the_end(connection, built):
    connection.execute(ledger_nodes.insert().values(level=4, index=40, hash=bytes(32)))
    return built.size


@tampering
def the_head_frontier_changed(connection, built):
    frontier = bytes(connection.execute(sa.select(ledger_head.c.frontier)).scalar_one())
    connection.execute(ledger_head.update().values(frontier=flipped(frontier, 40)))
    return None


@tampering
def a_checkpoint_changed(connection, built):
    stored = built.checkpoints[150].replace("\n150\n", "\n151\n", 1)
    connection.execute(
        ledger_checkpoints.update().where(ledger_checkpoints.c.size == 150).values(note=stored)
    )
    return None


@tampering
def a_cosignature_moved_to_another_checkpoint(connection, built):
    connection.execute(ledger_cosignatures.update().values(size=64))
    return None


@tampering
def a_disclosure_record_changed(connection, built):
    seq = built.of_kind("disclosure")[50]
    connection.execute(
        disclosures.update().where(disclosures.c.entry == seq).values(digest="0" * 64)
    )
    return seq


@tampering
def a_policy_record_changed(connection, built):
    seq = built.of_kind("policy")[5]
    connection.execute(
        policy_changes.update()
        .where(policy_changes.c.entry == seq)
        .values(version=policy_changes.c.version + 1000)
    )
    return seq


@tampering
def a_disclosure_filed_under_another_partner(connection, built):
    seq = built.of_kind("disclosure")[60]
    set_entry(connection, seq, partner="RUS")
    return seq


@tampering
def credentials_filed_under_another_partner(connection, built):
    # Receipts look entries up by this column: it must not hand one partner another's.
    seq = built.of_kind("credentials")[7]
    set_entry(connection, seq, partner="RUS")
    return seq


@tampering
def an_entry_filed_under_another_kind(connection, built):
    seq = built.of_kind("credentials")[8]
    set_entry(connection, seq, kind="policy")
    return seq


def rewrite_log(connection: sa.Connection, built: Built, contents: list[dict[str, Any]]) -> None:
    """Replace the whole ledger by a consistent one of ``contents``: entries renumbered,
    every node, the head, and checkpoints at the old sizes signed again by the node's key."""
    for table in (ledger_cosignatures, ledger_checkpoints, ledger_nodes, ledger_entries):
        connection.execute(table.delete())
    bodies = [rfc8785.dumps({**content, "seq": seq}) for seq, content in enumerate(contents)]
    leaves = [merkle.leaf_hash(body) for body in bodies]
    tree = merkle.Appender()
    created = tree.extend(leaves)
    connection.execute(
        ledger_entries.insert(),
        [
            {
                "seq": seq,
                "kind": content["kind"],
                "partner": content.get("partner"),
                "object_id": content.get("object_id"),
                "body": body.decode(),
            }
            for seq, (content, body) in enumerate(zip(contents, bodies, strict=True))
        ],
    )
    connection.execute(
        ledger_nodes.insert(), [{"level": lv, "index": i, "hash": h} for lv, i, h in created]
    )
    connection.execute(
        ledger_head.update().values(size=tree.size, frontier=b"".join(tree.frontier))
    )
    origin = log.origin_of(built.node.country, built.node.public_key)
    for size in built.checkpoints:
        signed = note.sign_checkpoint(
            note.Checkpoint(origin, size, merkle.root(leaves[:size])), origin, built.key
        )
        connection.execute(ledger_checkpoints.insert().values(size=size, note=signed, at=0))


def rewrite_anchor(connection: sa.Connection, node: Node) -> None:
    """Replace the node's anchor file by the checkpoints now stored in the database."""
    notes = connection.execute(
        sa.select(ledger_checkpoints.c.note).order_by(ledger_checkpoints.c.size)
    ).scalars()
    node.settings.ledger_anchor_file.write_bytes(b"".join(anchor.record(n) for n in notes))


def without(connection: sa.Connection, hidden: int) -> list[dict[str, Any]]:
    """The log's contents with entry ``hidden`` left out and ten harmless entries added."""
    contents = [e.content for e in log.entries(connection) if e.seq != hidden]
    return contents + [{**credentials_entry(n).fields, "kind": "credentials"} for n in range(10)]


@tampering
def the_log_rewritten_without_a_disclosure(connection, built):
    hidden = built.of_kind("disclosure")[30]
    rewrite_log(connection, built, without(connection, hidden))
    return hidden


@tampering
def the_log_rewritten_without_a_policy_change(connection, built):
    hidden = built.of_kind("policy")[10]
    rewrite_log(connection, built, without(connection, hidden))
    return hidden


def test_verify_passes_on_the_log_as_appended(built, node, chunking):
    with node.engine.connect() as connection:
        verified = verify(connection, node)
        assert verified.size == built.size == log.tree_size(connection)
        assert verified.root == log.tree_root(connection) == merkle.root(leaves_of(connection))
    assert (verified.checkpoints, verified.cosignatures) == (3, 1)
    assert {"disclosure", "policy", "credentials", "witness", "node-key"} == set(
        built.kinds.values()
    )


def test_verify_names_the_entry_of_each_tampering(built, node, chunking):
    wrong = []
    for name, tamper in TAMPERINGS.items():
        with rolled_back(node) as connection:
            expected = tamper(connection, built)
            try:
                verify(connection, node)
            except LedgerTampered as error:
                if error.entry != expected:
                    wrong.append(f"{name}: named entry {error.entry}, not {expected}: {error}")
            except Exception as error:  # any other failure is a finding too
                wrong.append(f"{name}: {type(error).__name__}: {error}")
            else:
                wrong.append(f"{name}: not detected")
    assert not wrong, "\n".join(wrong)
    with node.engine.connect() as connection:
        verify(connection, node)  # every tampering was undone


def test_a_partner_holding_an_old_checkpoint_catches_a_rewritten_log(built, node):
    verifier = log.node_verifier(node.country, node.public_key)
    held = note.open_checkpoint(built.checkpoints[150], [verifier])  # from an earlier receipt

    def audit(connection: sa.Connection) -> None:
        """What the partner checks: the node's newest signed checkpoint extends its own."""
        latest = log.checkpoint(connection, node.country, built.key)
        newest = note.open_checkpoint(latest.note, [verifier])
        proof = log.consistency_proof(connection, held.size, newest.size)
        merkle.verify_consistency(held.size, newest.size, held.root, newest.root, proof)

    with rolled_back(node) as connection:
        log.append(connection, [credentials_entry(n) for n in range(10)])
        audit(connection)  # the honest log, grown since

    with rolled_back(node) as connection:
        hidden = built.of_kind("disclosure")[30]
        assert hidden < held.size
        rewrite_log(connection, built, without(connection, hidden))
        with pytest.raises(LedgerTampered) as caught:
            verify(connection, node)
        assert caught.value.entry == hidden
        # A forger who also renumbers the records is still caught by the node's own check,
        # against the checkpoints in its anchor file...
        connection.execute(disclosures.delete().where(disclosures.c.entry == hidden))
        for table in (disclosures, policy_changes):
            connection.execute(
                table.update().where(table.c.entry > hidden).values(entry=table.c.entry - 1)
            )
        with pytest.raises(LedgerTampered, match="checkpoint of size 64"):
            verify(connection, node)
        # ...and, rewriting that file as well (beside the key, which he holds), fools it...
        rewrite_anchor(connection, node)
        verify(connection, node)
        # ...but not the partner: the new checkpoint is signed, yet no proof links it to
        # the one the partner holds.
        with pytest.raises(InvalidProof):
            audit(connection)


@pytest.fixture
def small(node: Node) -> Built:
    return build_log(node, marks=(5, 9), total=14)


@hypothesis.settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_flipping_any_bit_of_an_entry_or_a_node_is_caught(small, node, data):
    with pytest.MonkeyPatch.context() as monkeypatch, rolled_back(node) as connection:
        level = data.draw(st.sampled_from([log._CHUNK_LEVEL, 0, 1, 2]), label="chunk level")
        small_chunks(monkeypatch, level)
        if data.draw(st.booleans(), label="entry, not node"):
            seq = data.draw(st.integers(0, small.size - 1), label="seq")
            body = log.entry(connection, seq).body
            position = data.draw(st.integers(0, len(body) - 1), label="byte")
            changed = flipped(body, position, data.draw(st.integers(0, 7), label="bit"))
            text = changed.decode(errors="replace")
            # A text column holds neither bytes that are not UTF-8 nor, on PostgreSQL, NUL.
            hypothesis.assume(text.encode() == changed and "\x00" not in text)
            set_entry(connection, seq, body=text)
            expected = seq
        else:
            nodes = connection.execute(sa.select(ledger_nodes.c.level, ledger_nodes.c.index)).all()
            level, index = data.draw(st.sampled_from(sorted(nodes)), label="node")
            position = data.draw(st.integers(0, 31), label="byte")
            bit = data.draw(st.integers(0, 7), label="bit")
            set_node(
                connection, level, index, flipped(node_of(connection, level, index), position, bit)
            )
            expected = index << level
        with pytest.raises(LedgerTampered) as caught:
            verify(connection, node)
        assert caught.value.entry == expected


def test_values_sqlite_stores_against_their_column_type_are_caught(built, node):
    if node.engine.dialect.name != "sqlite":
        pytest.skip("only SQLite stores a value of another type than its column's")
    seq = built.of_kind("disclosure")[30]
    with rolled_back(node) as connection:
        connection.exec_driver_sql(
            "UPDATE ledger_entries SET body = CAST(body AS BLOB) WHERE seq = ?", (seq,)
        )
        with pytest.raises(LedgerTampered, match="is not text") as caught:
            verify(connection, node)
    assert caught.value.entry == seq
    # A record filed under no entry number: the disclosure entry then has no record.
    for table, recorded, named in (
        ("disclosures", seq, seq),
        ("policy_changes", built.of_kind("policy")[3], None),
    ):
        with rolled_back(node) as connection:
            connection.exec_driver_sql(
                f"UPDATE {table} SET entry = 'x' || entry WHERE entry = ?", (recorded,)
            )
            with pytest.raises(LedgerTampered) as caught:
                verify(connection, node)
        assert caught.value.entry == named, str(caught.value)


def test_verify_compares_records_in_bulk_and_reads_disclosures_without_parsing(
    built, node, monkeypatch
):
    """On an untampered log, no record is walked one entry at a time and no disclosure entry
    is parsed (the fast paths tamper tests above do not see); a tampered one is walked."""
    walked, parsed = [], []
    visit, check = log._Records._visit, log._check_entry

    def visiting(self, seq, *args):
        walked.append(seq)
        return visit(self, seq, *args)

    def checking(seq, kind, *args):
        parsed.append(kind)
        return check(seq, kind, *args)

    monkeypatch.setattr(log._Records, "_visit", visiting)
    monkeypatch.setattr(log, "_check_entry", checking)
    small_chunks(monkeypatch)
    with write_transaction(node.engine) as connection:
        fingerprinted = Disclosure("USA", indicator(999)["id"], VERSION, "tlp", b"x", "tardos:1")
        record_disclosures(connection, [fingerprinted])
    with node.engine.connect() as connection:
        assert verify(connection, node).disclosures == len(built.of_kind("disclosure")) + 1
    assert walked == []
    assert "disclosure" not in parsed and set(parsed) == {
        "node-key",
        "policy",
        "credentials",
        "witness",
    }
    seq = built.of_kind("disclosure")[40]
    with rolled_back(node) as connection:
        connection.execute(disclosures.delete().where(disclosures.c.entry == seq))
        with pytest.raises(LedgerTampered, match="no disclosure record"):
            verify(connection, node)
    assert walked and max(walked) == seq


# --- other processes -----------------------------------------------------------------------


def appender(node: Node, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.ledger.append_worker", node.settings.database_url, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def batches_by_worker(node: Node) -> dict[str, dict[int, list[int]]]:
    """For each worker tag, its batches and the sequence numbers of their entries."""
    found: dict[str, dict[int, list[int]]] = {}
    with node.engine.connect() as connection:
        for e in log.entries(connection, kind=WORKER_KIND):
            content = e.content
            found.setdefault(content["worker"], {}).setdefault(content["batch"], []).append(e.seq)
    return found


@pytest.mark.slow
def test_concurrent_appenders_never_fork_the_log(node, tmp_path):
    before = size_of(node)
    go = tmp_path / "go"
    workers = [appender(node, f"w{n}", "25", "20", "--wait-for", str(go)) for n in range(4)]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    go.touch()  # all at once
    for worker in workers:
        out, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0 and out.strip().endswith("done")

    total = before + 4 * 25 * 20
    with node.engine.connect() as connection:
        assert [e.seq for e in log.entries(connection)] == list(range(total))
        assert verify(connection, node).size == total
    found = batches_by_worker(node)
    assert sorted(found) == ["w0", "w1", "w2", "w3"]
    starts = []
    for batches in found.values():
        assert sorted(batches) == list(range(1, 26))
        for seqs in batches.values():  # a batch is never interleaved with another
            assert seqs == list(range(seqs[0], seqs[0] + 20))
        starts.append([batches[b][0] for b in range(1, 26)])
        assert starts[-1] == sorted(starts[-1])
    if node.engine.dialect.name == "postgresql":
        # They really ran at once: the workers' batches interleave. (SQLite's busy handler
        # sleeps, so there one worker may well keep the lock from batch to batch.)
        assert sorted(s for each in starts for s in each) != [s for each in starts for s in each]


@pytest.mark.slow
def test_a_killed_appender_leaves_whole_batches(node):
    before = size_of(node)
    burst = appender(node, "burst", "100000", "20")  # killed wherever it happens to be
    for _ in range(5):
        assert burst.stdout.readline().startswith("committed")
    burst.send_signal(signal.SIGKILL)
    burst.wait(timeout=PATIENCE)
    held = appender(node, "held", "10", "20", "--hold-at", "4")  # killed before a commit
    lines = [held.stdout.readline().strip() for _ in range(4)]
    assert lines == ["committed 1", "committed 2", "committed 3", "holding"]
    held.send_signal(signal.SIGKILL)
    held.wait(timeout=PATIENCE)

    found = batches_by_worker(node)
    committed = len(found["burst"])
    assert committed >= 5 and sorted(found["burst"]) == list(range(1, committed + 1))
    assert sorted(found["held"]) == [1, 2, 3]
    for batches in found.values():
        assert all(len(seqs) == 20 for seqs in batches.values())
    after = before + 20 * (committed + 3)
    with node.engine.connect() as connection:
        assert verify(connection, node).size == after
    # The head is not left locked: the log goes on.
    with write_transaction(node.engine) as connection:
        assert log.append(connection, [credentials_entry(0)]) == [after]
    with node.engine.connect() as connection:
        assert verify(connection, node).size == after + 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def delivered_objects(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """The objects of a TAXII envelope, each with the exact bytes it was sent as."""
    text = body.decode()
    marker = '"objects":['
    start = text.find(marker)
    if start < 0:
        return []
    decoder = json.JSONDecoder()
    position, found = start + len(marker), []
    while text[position] != "]":
        obj, end = decoder.raw_decode(text, position)
        found.append((obj, text[position:end].encode()))
        position = end + (text[end] == ",")
    assert [obj for obj, _ in found] == json.loads(body)["objects"]
    return found


@pytest.mark.slow
def test_a_killed_server_sent_nothing_it_had_not_recorded(node, tmp_path):
    apply_alliance(node, EXAMPLES / "alliance.toml")  # the demo's partners and collections
    import_objects(node.engine, [tlp_definition(TLP_CLEAR), *(indicator(n) for n in range(200))])
    with write_transaction(node.engine) as connection:
        issued = {code: issue_credentials(connection, code) for code in PARTNERS}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        LIAISON_HOME=str(node.settings.home),
        LIAISON_DATABASE_URL=node.settings.database_url,
    )
    with (tmp_path / "server.log").open("w") as server_log:
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "--factory"),
                "liaison.taxii.app:app_from_env",
                *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
            ],
            cwd=ROOT,
            env=env,
            stdout=server_log,
            stderr=server_log,
            start_new_session=True,  # its own group: the kill takes any child with it
        )
    try:
        received, errors = serve_and_kill(server, url, issued)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=PATIENCE)
    assert errors == [], errors
    checked = 0
    with node.engine.connect() as connection:
        for partner, body in received:
            for obj, data in delivered_objects(body):
                digest = hashlib.sha256(data).hexdigest()
                rows = connection.execute(
                    sa.select(disclosures.c.entry).where(
                        disclosures.c.partner == partner,
                        disclosures.c.object_id == obj["id"],
                        disclosures.c.digest == digest,
                    )
                ).all()
                assert len(rows) == 1, (partner, obj["id"])
                content = log.entry(connection, rows[0].entry).content
                assert content["kind"] == "disclosure" and content["sha256"] == digest
                assert (content["partner"], content["object_id"]) == (partner, obj["id"])
                checked += 1
        verify(connection, node)
    assert checked >= 20


def serve_and_kill(
    server: subprocess.Popen[bytes], url: str, issued: dict[str, Any]
) -> tuple[list[tuple[str, bytes]], list[str]]:
    """Page through the intelligence collection as every partner at once, and SIGKILL the
    server once 15 pages have arrived; the pages received whole, and any unexpected answer."""
    accept = {"Accept": "application/taxii+json;version=2.1"}
    auth = (issued["USA"].username, issued["USA"].password)
    deadline = time.monotonic() + PATIENCE
    while True:
        assert server.poll() is None, "the server exited"
        try:
            listed = httpx.get(
                f"{url}/api/collections/", auth=auth, headers=accept, timeout=HTTP_TIMEOUT
            )
            if listed.status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
    collection = next(c["id"] for c in listed.json()["collections"] if c["alias"] == "intelligence")

    received: list[tuple[str, bytes]] = []
    errors: list[str] = []
    lock = threading.Condition()

    def read_pages(partner: str) -> None:
        credentials = (issued[partner].username, issued[partner].password)
        params: dict[str, Any] = {"limit": 3}
        with httpx.Client(
            base_url=url, auth=credentials, headers=accept, timeout=HTTP_TIMEOUT
        ) as client:
            while True:
                try:
                    response = client.get(f"/api/collections/{collection}/objects/", params=params)
                except httpx.TransportError:
                    return  # the server died under this request
                with lock:
                    if response.status_code != 200:
                        errors.append(f"{partner}: {response.status_code} {response.text}")
                        return
                    received.append((partner, response.content))
                    lock.notify_all()
                page = json.loads(response.content)
                if not page.get("more"):
                    return
                params = {"limit": 3, "next": page["next"]}

    threads = [threading.Thread(target=read_pages, args=(p,), daemon=True) for p in PARTNERS]
    for thread in threads:
        thread.start()
    with lock:
        lock.wait_for(lambda: len(received) >= 15 or errors, timeout=PATIENCE)
    os.killpg(server.pid, signal.SIGKILL)
    for thread in threads:
        thread.join(timeout=PATIENCE)
    with lock:
        return list(received), list(errors)
