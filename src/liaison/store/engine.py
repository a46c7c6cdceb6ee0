"""Opening the database: SQLite in WAL mode by default, PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

_WRITE = "liaison_write"


# Connections one process may hold: the TAXII server runs at most REQUEST_THREADS handlers
# at once (taxii/app.py), each holding at most a read and a write connection, plus its
# background preparer's; a pool smaller than that lets handlers that hold a read connection
# wait for ever for a write one.
POOL_SIZE = 10
POOL_OVERFLOW = 30


def create_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite files get WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        database = url.removeprefix("sqlite:///")
        pool: dict[str, Any] = {}
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            pool = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
        engine = sa.create_engine(url, connect_args={"timeout": 60}, **pool)
        _configure_sqlite(engine)
        return engine
    # LIFO: the connection used last is used next, so a few connections stay busy and keep
    # their prepared statements. PostgreSQL plans a page's statement (a UNION ALL of one
    # index range per granted class: tens of milliseconds) on each of its first ten runs on a
    # connection, then uses a generic plan; handed out in turn, each of the pool's
    # connections would plan it anew for every request (docs/store.md).
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=POOL_SIZE,
        max_overflow=POOL_OVERFLOW,
        pool_use_lifo=True,
    )


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite ``url``; None for PostgreSQL and in-memory SQLite.

    SQLite creates a missing file (and ``create_engine`` its directory) on connect: a
    command that only opens a store checks that the file exists first."""
    if not url.startswith("sqlite"):
        return None
    database = sa.make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def upsert(connection: sa.Connection, table: sa.Table) -> Any:
    """An INSERT that can say ON CONFLICT, in the connection's dialect."""
    # Here, not at the top: a command on a SQLite store need not import the PostgreSQL dialect.
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def execute_compiled(
    connection: sa.Connection,
    compiled: sa.Compiled,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]],
) -> sa.CursorResult[Any]:
    """Run a statement compiled once with its bound values (one mapping, or a list of them
    for an executemany), straight on the driver: on hot paths building and compiling a
    statement through SQLAlchemy costs more than running it."""
    names = compiled.positiontup
    if names is None:  # a driver with named parameters takes the mappings as they are
        return connection.exec_driver_sql(compiled.string, params)
    if isinstance(params, Mapping):
        return connection.exec_driver_sql(compiled.string, tuple(params[n] for n in names))
    rows = [tuple(row[n] for n in names) for row in params]
    return connection.exec_driver_sql(compiled.string, rows)


def _configure_sqlite(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        # ANALYZE samples this many rows per index: statistics in milliseconds at any size.
        cursor.execute("PRAGMA analysis_limit=1000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # A writer takes SQLite's write lock up front, so two writers queue instead of
        # failing on lock upgrade halfway through.
        if connection.get_execution_options().get(_WRITE):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that will write: committed on success, rolled back on any error."""
    with engine.connect() as connection:
        connection = connection.execution_options(**{_WRITE: True})
        with connection.begin():
            yield connection
