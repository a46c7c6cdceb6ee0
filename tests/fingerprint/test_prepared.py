"""Fingerprint slots found once per text, kept in the store, and used by every later copy."""

import json
import time

import pytest
import sqlalchemy as sa

from liaison.fingerprint import prepared
from liaison.fingerprint.copies import mark
from liaison.fingerprint.prepared import (
    Preparer,
    SlotBook,
    keep,
    object_texts,
    prepare_since,
    text_key,
)
from liaison.fingerprint.slots import find_slots
from liaison.importer import import_objects
from liaison.store.engine import write_transaction
from liaison.store.schema import text_slots
from tests.conftest import PATIENCE
from tests.stix_factory import indicator

SECRET = b"s" * 32
TEXT = (
    "The minister said on Tuesday that the organisation had analysed the programme, "
    "and that its allies, partners, and neighbours were informed; it's a 10 per cent rise."
)


def kept(node):
    with node.engine.connect() as connection:
        return dict(connection.execute(sa.select(text_slots.c.digest, text_slots.c.slots)).all())


def test_kept_slots_are_the_finders_and_are_used_instead_of_finding(node, monkeypatch):
    with node.engine.connect() as connection:
        book = SlotBook(connection, [TEXT])
        assert book(TEXT) == find_slots(TEXT)
    assert book.found and find_slots(TEXT)
    with write_transaction(node.engine) as writer:
        keep(writer, book.found)

    def never(text):
        raise AssertionError("slots were found again")

    monkeypatch.setattr(prepared, "find_slots", never)
    obj = {"type": "report", "id": "report--1", "description": TEXT, "modified": "x"}
    with node.engine.connect() as connection:
        book = SlotBook(connection, object_texts(obj))
        assert mark(obj, "USA", SECRET, book) == mark(obj, "USA", SECRET)
    assert book.found == {}


def test_a_new_finder_never_reads_old_slots(monkeypatch):
    before = text_key(TEXT)
    monkeypatch.setattr(prepared, "finder_version", lambda: b"another finder")
    assert text_key(TEXT) != before


def test_the_preparer_keeps_the_slots_of_new_versions(node):
    reports = [{**indicator(i), "description": f"{TEXT} Report {i}."} for i in range(3)]
    import_objects(node.engine, reports)
    assert kept(node) == {}
    prepare_since(node.engine, 0, batch=2)
    stored = kept(node)
    for report in reports:
        slots = json.loads(stored[text_key(report["description"])])
        assert [tuple(s[1:3]) for s in slots] == [
            (s.start, s.end) for s in find_slots(report["description"])
        ]


@pytest.mark.parametrize("partner", ["USA", "FRA"])
def test_marking_with_kept_slots_gives_the_same_copy(node, partner):
    obj = {"type": "note", "id": "note--1", "content": TEXT, "modified": "y"}
    with node.engine.connect() as connection:
        first = SlotBook(connection, object_texts(obj))
        copy = mark(obj, partner, SECRET, first)
    with write_transaction(node.engine) as writer:
        keep(writer, first.found)
    with node.engine.connect() as connection:
        again = mark(obj, partner, SECRET, SlotBook(connection, object_texts(obj)))
    assert again == copy and copy.marks > 0


def test_the_servers_preparer_reaches_what_arrives_after_it_starts(node):
    import_objects(node.engine, [{**indicator(9), "description": f"{TEXT} Before."}])
    preparer = Preparer(node.engine, interval=3600)
    preparer.start()
    try:
        arriving = {**indicator(10), "description": f"{TEXT} After."}
        import_objects(node.engine, [arriving])
        preparer.wake()
        deadline = time.monotonic() + PATIENCE
        while text_key(arriving["description"]) not in kept(node):
            assert time.monotonic() < deadline, "the preparer never prepared the new text"
            time.sleep(0.05)
    finally:
        preparer.stop()
    # What was there before it started is left to the first delivery.
    assert set(kept(node)) == {text_key(arriving["description"])}
