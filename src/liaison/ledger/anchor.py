"""The ledger's anchor: every checkpoint the node signs, also kept in a file outside the
database.

Someone who can write to the database but not to the node's home could otherwise cut the log
back (or rebuild it consistently) and delete the stored checkpoints with it: nothing left in
the database would contradict the shorter log. The anchor file holds each signed checkpoint
(C2SP signed note) as it is made, so `liaison ledger verify` can check the stored log against
every tree head the node ever signed. It lives beside the node key by default
(``$LIAISON_HOME/ledger-anchor.jsonl``, setting ``LIAISON_LEDGER_ANCHOR``).

The file is JSON Lines, one record per line, append-only::

    {"size":150,"anchored":"2025-03-01T12:00:00.000000Z","note":"liaison.can/ledger/...\\n150\\n..."}

A record is written with one ``write()`` on a descriptor opened with ``O_APPEND``, under an
exclusive ``flock`` (several server processes append to one file), then ``fsync``ed; the
database transaction that stores the checkpoint commits only afterwards, so no checkpoint is
handed out that the file does not hold. A record cut short by a crash can only be the file's
last line: readers report it and skip it, and the next writer first ends it with a newline,
so it stays a line of its own (reported, never mistaken for a record).

Checkpoints are anchored when the transaction that signs them commits (the anchor is
appended just before the database commit), never when it rolls back.
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from liaison.errors import LedgerError
from liaison.ledger.note import note_text, parse_checkpoint
from liaison.stix.timestamps import from_micros, now_micros

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: O_APPEND and one write() alone
    fcntl = None  # type: ignore[assignment]

# The anchor file of each database (by URL), bound when a node is opened (liaison.node).
_BOUND: dict[str, Path] = {}


def bind(engine: sa.Engine, path: Path) -> None:
    """Anchor the checkpoints signed through ``engine``'s database in ``path``."""
    _BOUND[_key(engine)] = Path(path).expanduser().absolute()


def bound_path(connection: sa.Connection) -> Path | None:
    """The anchor file of ``connection``'s database, None when no node was opened on it."""
    return _BOUND.get(_key(connection.engine))


def _key(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


# --- writing ------------------------------------------------------------------------------


def record(note: str, at: int | None = None) -> bytes:
    """One record: a line of JSON (ASCII) naming the tree size, the time and the note."""
    size = parse_checkpoint(note_text(note)).size
    body = {"size": size, "anchored": from_micros(now_micros() if at is None else at), "note": note}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"


def append(path: Path, notes: Sequence[str]) -> None:
    """Append ``notes`` to the anchor file (created, mode 0600, if missing) and fsync it.

    Whole records never interleave with another process's: they go out in one ``write()``
    on an ``O_APPEND`` descriptor, under an exclusive lock. A torn last line left by a crash
    is first ended with a newline. Raises LedgerError when the file cannot be written."""
    if not notes:
        return
    data = b"".join(record(note) for note in notes)
    created = not path.exists()
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise LedgerError(
            f"cannot open the ledger anchor {path}: {error.strerror} "
            "(see LIAISON_LEDGER_ANCHOR in docs/configuration.md)"
        ) from None
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        end = os.fstat(fd).st_size
        if end and os.pread(fd, 1, end - 1) != b"\n":
            data = b"\n" + data  # end the torn record a crash left, on its own line
        view = memoryview(data)
        while view:  # a regular file takes it all at once unless the disk is full
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError as error:
        raise LedgerError(f"cannot append to the ledger anchor {path}: {error.strerror}") from None
    finally:
        os.close(fd)  # and with it the lock
    if created:
        _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# Notes signed in a transaction not yet committed, with the file each goes to.
_PENDING: weakref.WeakKeyDictionary[sa.Connection, list[tuple[Path, str]]] = (
    weakref.WeakKeyDictionary()
)


def on_commit(connection: sa.Connection, path: Path, notes: Iterable[str]) -> None:
    """Anchor ``notes`` when ``connection``'s transaction commits (just before the database
    commit: if the anchor cannot be written, the commit fails); forget them on rollback."""
    pending = _PENDING.get(connection)
    if pending is None:
        pending = _PENDING[connection] = []
        sa.event.listen(connection, "commit", _commit)
        sa.event.listen(connection, "rollback", _rollback)
    pending.extend((path, note) for note in notes)


def _commit(connection: sa.Connection) -> None:
    pending = _PENDING.get(connection)
    if not pending:
        return
    notes = list(pending)
    pending.clear()
    for path in dict.fromkeys(path for path, _ in notes):
        append(path, [note for where, note in notes if where == path])


def _rollback(connection: sa.Connection) -> None:
    pending = _PENDING.get(connection)
    if pending:
        pending.clear()


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Anchored:
    """A record of the anchor file: its line (from 1), the size it claims, the signed note."""

    line: int
    size: int
    note: str


@dataclass
class Reading:
    """What reading the anchor file found besides its records."""

    path: Path
    exists: bool = False
    records: int = 0
    torn_tail: bool = False  # the last line has no newline: a write cut short
    unreadable: list[int] = field(default_factory=list)  # whole lines that are no record

    @property
    def warnings(self) -> list[str]:
        found = []
        if self.unreadable:
            lines = ", ".join(map(str, self.unreadable[:10]))
            more = f" and {len(self.unreadable) - 10} more" if len(self.unreadable) > 10 else ""
            which = "lines" if len(self.unreadable) > 1 else "line"
            verb = "are not whole records" if len(self.unreadable) > 1 else "is not a whole record"
            found.append(
                f"{which} {lines}{more} of {self.path} {verb} (a write cut short by a crash, "
                "ended by the next one): ignored"
            )
        if self.torn_tail:
            found.append(
                f"the last line of {self.path} is incomplete (a write cut short by a crash): "
                "ignored; the next checkpoint is written on a new line after it"
            )
        return found


def read(path: Path, reading: Reading) -> Iterator[Anchored]:
    """The records of the anchor file in order, streamed; ``reading`` collects the rest (the
    file's absence, a torn last line, lines that are not records)."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    except OSError as error:
        raise LedgerError(f"cannot read the ledger anchor {path}: {error.strerror}") from None
    reading.exists = True
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                reading.torn_tail = True
                return
            found = _parse(raw)
            if found is None:
                if raw.strip():
                    reading.unreadable.append(number)
                continue
            reading.records += 1
            yield Anchored(number, *found)


def _parse(raw: bytes) -> tuple[int, str] | None:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    size, note = value.get("size"), value.get("note")
    if isinstance(size, bool) or not isinstance(size, int) or not isinstance(note, str):
        return None
    return size, note
