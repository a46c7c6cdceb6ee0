"""The anchor file (every checkpoint the node signs, kept outside the database) and what
`verify` finds with it: a log cut back or rebuilt consistently by someone with database access
and no key, and disclosure records that do not match the disclosure entries one to one.

Tampering happens inside a transaction that is rolled back, as in test_log.py.
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaison.errors import LedgerError, LedgerTampered
from liaison.ledger import anchor, log, merkle, note
from liaison.ledger.disclosures import disclosure_entry, record_disclosures
from liaison.node import Node
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
from tests.ledger.test_log import (
    VERSION,
    Built,
    build_log,
    credentials_entry,
    delivered,
    rolled_back,
    verify,
)

MARKS = (40, 100, 120, 140)


@pytest.fixture
def grown(node: Node) -> Built:
    """150 entries (disclosures, policy changes, credentials), checkpoints at MARKS."""
    return build_log(node, marks=MARKS, total=150)


def cut_back(connection: sa.Connection, size: int) -> None:
    """The outside tester's attack, with database access and no signing key: keep the first
    ``size`` entries, rebuild the Merkle tree and the head from them, and delete every later
    entry with its disclosure and policy records, and every stored checkpoint."""
    bodies = [e.body for e in log.entries(connection, limit=size)]
    for table in (ledger_cosignatures, ledger_checkpoints, ledger_nodes):
        connection.execute(table.delete())
    connection.execute(ledger_entries.delete().where(ledger_entries.c.seq >= size))
    for table in (disclosures, policy_changes):
        connection.execute(table.delete().where(table.c.entry >= size))
    tree = merkle.Appender()
    created = tree.extend([merkle.leaf_hash(body) for body in bodies])
    connection.execute(
        ledger_nodes.insert(), [{"level": lv, "index": i, "hash": h} for lv, i, h in created]
    )
    connection.execute(
        ledger_head.update().values(size=tree.size, frontier=b"".join(tree.frontier))
    )


def anchored_lines(node: Node) -> list[bytes]:
    return node.settings.ledger_anchor_file.read_bytes().split(b"\n")


# --- the anchor file ---------------------------------------------------------------------


def test_every_checkpoint_is_anchored_and_verify_passes_on_the_log_as_appended(grown, node):
    records = [json.loads(line) for line in anchored_lines(node) if line]
    assert [r["size"] for r in records] == list(MARKS)
    assert [r["note"] for r in records] == [grown.checkpoints[m] for m in MARKS]
    with node.engine.connect() as connection:
        verified = verify(connection, node)
    assert verified.anchor == log.AnchorCheck(
        str(node.settings.ledger_anchor_file), len(MARKS), MARKS[-1]
    )
    assert verified.disclosures == len(grown.of_kind("disclosure"))
    assert verified.warnings == ()


def test_a_log_cut_back_consistently_is_caught_by_the_anchor(grown, node):
    with rolled_back(node) as connection:
        cut_back(connection, 100)
        # Nothing left in the database contradicts the shorter log (what verify said before
        # anchor files)...
        alone = log.verify(
            connection, node.country, node.public_key, anchor_file=Path("/nonexistent/anchor")
        )
        assert alone.size == 100 and alone.checkpoints == 0
        # ...but the checkpoints of 120 and 140 entries the node signed are outside it.
        with pytest.raises(LedgerTampered, match=r"anchor file .* 140 entries") as caught:
            verify(connection, node)
        assert caught.value.entry == 100


def test_a_log_cut_back_and_grown_again_differently_is_caught(grown, node):
    with rolled_back(node) as connection:
        cut_back(connection, 100)
        log.append(connection, [credentials_entry(n) for n in range(50)])
        with pytest.raises(LedgerTampered, match=r"checkpoint of size 120 .*anchored") as caught:
            verify(connection, node)
        assert caught.value.entry == 100


def test_deleted_checkpoints_alone_change_nothing(grown, node):
    with rolled_back(node) as connection:
        for table in (ledger_cosignatures, ledger_checkpoints):
            connection.execute(table.delete())
        verified = verify(connection, node)
    assert verified.checkpoints == 0 and verified.anchor.checkpoints == len(MARKS)


def test_a_missing_anchor_file_is_reported_then_made_from_the_stored_checkpoints(grown, node):
    path = node.settings.ledger_anchor_file
    path.unlink()  # as on a node whose ledger is older than anchor files
    with (
        node.engine.connect() as connection,
        pytest.raises(LedgerTampered, match=r"is missing.*Restore the file") as caught,
    ):
        verify(connection, node)
    assert caught.value.entry is None
    # Its first use: the checkpoints stored so far go in, then any new one.
    with write_transaction(node.engine) as connection:
        log.checkpoint(connection, node.country, grown.key)
    assert [json.loads(line)["size"] for line in anchored_lines(node) if line] == [*MARKS, 150]
    with node.engine.connect() as connection:
        assert verify(connection, node).anchor.checkpoints == len(MARKS) + 1


def test_a_torn_last_record_is_reported_and_the_next_one_written_past_it(grown, node):
    path = node.settings.ledger_anchor_file
    record = anchor.record(grown.checkpoints[140])
    with path.open("ab") as handle:
        handle.write(record[: len(record) // 2])  # a crash in the middle of a write
    with node.engine.connect() as connection:
        verified = verify(connection, node)
    assert verified.anchor.checkpoints == len(MARKS)
    assert [w for w in verified.warnings if "last line" in w and "incomplete" in w]
    with write_transaction(node.engine) as connection:
        log.append(connection, [credentials_entry(0)])
        log.checkpoint(connection, node.country, grown.key)
    lines = anchored_lines(node)
    assert lines[len(MARKS)] == record[: len(record) // 2] and lines[-1] == b""
    assert json.loads(lines[len(MARKS) + 1])["size"] == 151
    with node.engine.connect() as connection:
        verified = verify(connection, node)
    assert verified.anchor.checkpoints == len(MARKS) + 1
    assert verified.warnings == (
        f"line {len(MARKS) + 1} of {path} is not a whole record (a write cut short by a crash, "
        "ended by the next one): ignored",
    )


def test_an_anchored_note_that_does_not_verify_is_tampering(grown, node):
    path = node.settings.ledger_anchor_file
    other = Ed25519PrivateKey.generate()
    origin = log.origin_of(node.country, node.public_key)
    forged = note.sign_checkpoint(note.Checkpoint(origin, 99, bytes(32)), origin, other)
    with path.open("ab") as handle:
        handle.write(anchor.record(forged))
    with node.engine.connect() as connection, pytest.raises(LedgerTampered, match="line 5"):
        verify(connection, node)


def test_a_checkpoint_is_anchored_when_its_transaction_commits_only(grown, node):
    before = anchored_lines(node)
    with rolled_back(node) as connection:
        log.append(connection, [credentials_entry(0)])
        log.checkpoint(connection, node.country, grown.key)
    assert anchored_lines(node) == before
    with write_transaction(node.engine) as connection:
        log.append(connection, [credentials_entry(0)])
        signed = log.checkpoint(connection, node.country, grown.key)
    assert json.loads(anchored_lines(node)[-2])["note"] == signed.note


def test_a_checkpoint_that_cannot_be_anchored_is_not_stored(grown, node):
    node.settings.ledger_anchor_file.unlink()
    node.settings.ledger_anchor_file.mkdir()  # cannot be opened for writing
    with (
        pytest.raises(LedgerError, match="ledger anchor"),
        write_transaction(node.engine) as connection,
    ):
        log.append(connection, [credentials_entry(0)])
        log.checkpoint(connection, node.country, grown.key)
    with node.engine.connect() as connection:
        assert log.tree_size(connection) == 150
        assert log.latest_checkpoint(connection).checkpoint.size == MARKS[-1]


def _append_many(path: str, worker: int, count: int) -> None:
    key = Ed25519PrivateKey.generate()
    for n in range(count):
        checkpoint = note.Checkpoint(f"worker{worker}", n, bytes(32))
        anchor.append(Path(path), [note.sign_checkpoint(checkpoint, f"worker{worker}", key)])


def test_concurrent_appenders_never_interleave_records(tmp_path):
    path = tmp_path / "anchor.jsonl"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(path), w, 40)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    reading = anchor.Reading(path)
    found = list(anchor.read(path, reading))
    assert len(found) == 160 and not reading.unreadable and not reading.torn_tail
    for w in range(4):
        mine = [a.size for a in found if note.note_text(a.note).startswith(f"worker{w}\n")]
        assert mine == list(range(40))


# --- disclosure records, one to one with the disclosure entries ---------------------------


def extra_record(connection: sa.Connection, entry: int | None, **fields) -> None:
    row = {
        "partner": "USA",
        "object_id": "indicator--00000000-0000-4000-8000-0000000000ee",
        "version": VERSION,
        "digest": "e" * 64,
        "release_class": "tlp-clear",
        "at": 0,
        "entry": entry,
    }
    connection.execute(disclosures.insert().values(**{**row, **fields}))


def test_a_deleted_disclosure_record_is_caught(grown, node, chunking):
    seq = grown.of_kind("disclosure")[25]
    with rolled_back(node) as connection:
        connection.execute(disclosures.delete().where(disclosures.c.entry == seq))
        with pytest.raises(LedgerTampered, match="has no disclosure record") as caught:
            verify(connection, node)
    assert caught.value.entry == seq


def test_a_disclosure_record_with_no_entry_is_caught(grown, node, chunking):
    with rolled_back(node) as connection:
        extra_record(connection, None)
        with pytest.raises(LedgerTampered, match="has no ledger entry") as caught:
            verify(connection, node)
    assert caught.value.entry is None


@pytest.mark.parametrize(
    "case", ["another kind", "a second record", "beyond the end", "release class", "version"]
)
def test_a_disclosure_record_that_is_not_its_entry_is_caught(grown, node, case, chunking):
    with rolled_back(node) as connection:
        if case == "another kind":
            expected = grown.of_kind("credentials")[3]
            extra_record(connection, expected)
        elif case == "a second record":
            expected = grown.of_kind("disclosure")[10]
            extra_record(connection, expected)
        elif case == "beyond the end":
            expected = grown.size + 5
            extra_record(connection, expected)
        else:
            expected = grown.of_kind("disclosure")[12]
            change = {"release_class": "x" * 64} if case == "release class" else {"version": 1}
            connection.execute(
                disclosures.update().where(disclosures.c.entry == expected).values(**change)
            )
        with pytest.raises(LedgerTampered) as caught:
            verify(connection, node)
    assert caught.value.entry == expected, str(caught.value)


def test_a_copy_recorded_by_two_requests_at_once_has_one_entry(node):
    copy = delivered(1, "USA")
    for _ in range(2):  # both saw it unrecorded (new_disclosures) before either wrote
        with write_transaction(node.engine) as connection:
            entries = record_disclosures(connection, [copy])
    with node.engine.connect() as connection:
        assert [e.seq for e in log.entries(connection, kind="disclosure")] == entries
        assert verify(connection, node).disclosures == 1


def test_an_entry_repeating_a_recorded_copy_is_tolerated_and_reported(node):
    """What two concurrent requests could record before record_disclosures locked first."""
    copy = delivered(1, "USA")
    with write_transaction(node.engine) as connection:
        record_disclosures(connection, [copy])
        log.append(connection, [disclosure_entry(copy)])
    with node.engine.connect() as connection:
        verified = verify(connection, node)
    assert verified.disclosures == 1
    assert verified.warnings[-1].startswith("1 disclosure entries repeat an earlier entry")
