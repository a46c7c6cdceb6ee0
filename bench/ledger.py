"""Ledger: appends, Merkle proofs and full verification as the log grows, against pymerkle.

In one run, on SQLite and PostgreSQL: appends in transactions of 100 disclosure entries (what a
TAXII page records) on a fresh store; then one store grown through each size, where inclusion
and consistency proofs are timed with the SQL statements each runs and the stored nodes it
reads, their verification is timed, and ``log.verify`` recomputes the whole log. A tree of
10^7 leaves is built from its Merkle nodes alone (a proof reads nothing else). Beside them
pymerkle from PyPI (in memory and on SQLite, in a virtual environment of its own) on the same
entries, compared only if its roots equal ours (RFC 9162 hashing).

    python -m bench.ledger [--sizes 1000,10000,100000,1000000] [--backends sqlite,postgresql]
        [--appends 20000] [--proofs 200] [--nodes-only 10000000]
        [--pymerkle-sizes 1000,100000,1000000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from bench.options import BACKENDS, backends, positive, sizes
from bench.peers import peer_environment
from bench.report import Latency, Machine, elapsed, ratio, verdict, wide_console
from bench.stores import node_stores
from liaison.ledger import log, merkle
from liaison.ledger.log import Entry
from liaison.node import Node, load_signing_key
from liaison.stix.timestamps import now_micros, to_micros
from liaison.store.engine import write_transaction
from liaison.store.schema import disclosures as disclosure_rows
from liaison.store.schema import ledger_entries, ledger_head, ledger_nodes

BACKEND_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
DEFAULT_SIZES = (1_000, 10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000)
QUICK_BACKENDS = ("sqlite",)
DEFAULT_NODES_ONLY = 10_000_000
DEFAULT_PYMERKLE_SIZES = (1_000, 100_000, 1_000_000)
QUICK_PYMERKLE_SIZES = (1_000,)
DEFAULT_APPENDS = 20_000
DEFAULT_PROOFS = 200
QUICK_PROOFS = 50
WARMUPS = 5
MIN_SIZE = 100
# Proofs of one kind at one size stop after this many seconds (at least MIN_PROOFS): where a
# proof's query scans the nodes table, a tree of 10^7 leaves takes seconds per proof.
PROOF_BUDGET = 30.0
MIN_PROOFS = 10
# Warm-ups beyond the first are skipped when it took longer than this.
SLOW_WARMUP = 0.05

# Entries per append transaction: the disclosures a TAXII page of 100 objects records.
PAGE = 100
# Building the stores (untimed for the goals): larger transactions.
BUILD_BATCH = 20_000
# Leaves per transaction when a tree is built from its nodes alone.
NODE_CHUNK = 100_000
SEED = 20250614
VERSION = "2025-01-01T00:00:00.000000Z"
PYMERKLE_REQUIREMENTS = ("pymerkle==7.0.0",)

APPEND = "append (batches of 100)"
INCLUSION = "inclusion proof"
CONSISTENCY = "consistency proof"
VERIFY_INCLUSION = "verify inclusion"
VERIFY_CONSISTENCY = "verify consistency"
FULL = "full verification"
PROOFS = (INCLUSION, CONSISTENCY)

PYMERKLE_MEMORY = "pymerkle in-memory"
PYMERKLE_SQLITE = "pymerkle SQLite"
PYMERKLE = {"memory": PYMERKLE_MEMORY, "sqlite": PYMERKLE_SQLITE}

# Goals of the issue.
APPEND_GOAL = 20_000
FLAT_GOAL = 1.5
FLAT_SIZE = 10_000_000
VERIFY_GOAL = 30.0
VERIFY_SIZE = 1_000_000


# --- data ---------------------------------------------------------------------------------


def disclosures(rng: random.Random, count: int) -> list[Entry]:
    """``count`` disclosure entries as a TAXII page records them: partner, object, version,
    release class and the SHA-256 of the copy sent."""
    out = []
    for _ in range(count):
        object_id = f"indicator--{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        fields = {
            "partner": "USA",
            "object_id": object_id,
            "version": VERSION,
            "release_class": f"{rng.getrandbits(256):064x}",
            "sha256": f"{rng.getrandbits(256):064x}",
        }
        out.append(Entry("disclosure", fields, partner="USA", object_id=object_id))
    return out


def samples(size: int, count: int) -> tuple[list[int], list[int]]:
    """The leaves whose inclusion is proved and the old sizes proved consistent with ``size``:
    the same for every backend and for pymerkle."""
    rng = random.Random(SEED * 31 + size)
    leaves = [rng.randrange(size) for _ in range(count)]
    olds = [rng.randrange(1, size) for _ in range(count)]
    return leaves, olds


# --- measuring ----------------------------------------------------------------------------




@dataclass
class Row:
    backend: str
    entries: int
    measurement: str
    latency: Latency | None = None  # per operation
    rate: float | None = None  # entries per second
    seconds: float | None = None  # the whole operation (full verification)
    cpu: float | None = None  # of this process, for the whole operation (full verification)
    statements: tuple[int, ...] = ()  # SQL statements per operation, each count seen
    nodes: tuple[int, int] | None = None  # stored nodes per proof, fewest and most
    note: str = ""

    @property
    def cost(self) -> float:
        """Seconds per operation (per entry for rates): what a ratio compares."""
        if self.latency is not None:
            return self.latency.p50
        assert self.rate is not None
        return 1 / self.rate


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # pymerkle's roots equal ours at every size compared: None when not run.
    compatible: bool | None = None


class StatementCounter:
    """Counts the SQL statements an engine sends (each executemany once)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.count = 0
        self.engine = engine
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        self.count += 1

    def close(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._seen)


def time_appends(node: Node, count: int, name: str) -> tuple[Row, range, str]:
    """``count`` new entries appended in write transactions of PAGE, after one untimed
    transaction; the row, the sequence numbers appended and a note saying where the time
    went: canonical encoding and hashing are timed again alone on the same entries, the
    rest is SQL (SQLAlchemy, driver, database) and commits."""
    engine = node.engine
    entries = disclosures(random.Random(SEED + 1), count + PAGE)
    with write_transaction(engine) as connection:
        log.append(connection, entries[:PAGE])
        first = log.tree_size(connection)
    entries = entries[PAGE:]
    counter = StatementCounter(engine)
    try:
        start = time.perf_counter()
        for offset in range(0, count, PAGE):
            with write_transaction(engine) as connection:
                log.append(connection, entries[offset : offset + PAGE])
        seconds = elapsed(start)
    finally:
        counter.close()
    transactions = -(-count // PAGE)
    at = now_micros()
    start = time.perf_counter()
    bodies = [log.encode(first + i, at, entry) for i, entry in enumerate(entries)]
    encoding = elapsed(start)
    start = time.perf_counter()
    tree = merkle.Appender()
    for offset in range(0, count, PAGE):
        tree.extend([merkle.leaf_hash(body) for body in bodies[offset : offset + PAGE]])
    hashing = elapsed(start)
    rest = seconds - encoding - hashing
    note = (
        f"{name} append, of {seconds:.2f} s: encode (rfc8785) {encoding:.2f} s "
        f"({encoding / seconds:.0%}), hash {hashing:.2f} s ({hashing / seconds:.0%}), "
        f"SQL and commits {rest:.2f} s ({rest / seconds:.0%})"
    )
    per_transaction = counter.count / transactions
    row = Row(
        name,
        count,
        APPEND,
        rate=count / seconds,
        statements=(round(per_transaction),),
    )
    return row, range(first, first + count), note


def grow(engine: sa.Engine, target: int, rng: random.Random) -> None:
    """Append entries until the log holds ``target``."""
    with engine.connect() as connection:
        size = log.tree_size(connection)
    while size < target:
        batch = disclosures(rng, min(BUILD_BATCH, target - size))
        with write_transaction(engine) as connection:
            seqs = log.append(connection, batch)
            # Each disclosure entry has its record, as TAXII writes them (verify checks both).
            connection.execute(
                disclosure_rows.insert(),
                [
                    {
                        "partner": entry.fields["partner"],
                        "object_id": entry.fields["object_id"],
                        "version": to_micros(entry.fields["version"]),
                        "digest": entry.fields["sha256"],
                        "release_class": entry.fields["release_class"],
                        "at": 0,
                        "entry": seq,
                    }
                    for entry, seq in zip(batch, seqs, strict=True)
                ],
            )
        size += len(batch)


def _frontier(raw: bytes) -> list[bytes]:
    step = merkle.HASH_SIZE
    return [raw[i : i + step] for i in range(0, len(raw), step)]


def build_nodes_only(engine: sa.Engine, size: int) -> None:
    """Grow the tree to ``size`` leaves by storing its nodes and head alone (no entries), one
    transaction per NODE_CHUNK leaves; the leaves hash synthetic entries. SQLite takes the
    nodes through executemany; PostgreSQL through COPY, since psycopg's executemany stores
    about 50,000 rows/s here and a tree of 10^7 leaves has 2 x 10^7 nodes."""
    with engine.connect() as connection:
        head = connection.execute(sa.select(ledger_head.c.size, ledger_head.c.frontier)).one()
    tree = merkle.Appender(head.size, _frontier(head.frontier))
    for start in range(head.size, size, NODE_CHUNK):
        leaves = [
            merkle.leaf_hash(b"synthetic entry %d" % seq)
            for seq in range(start, min(size, start + NODE_CHUNK))
        ]
        created = tree.extend(leaves)
        with write_transaction(engine) as connection:
            if connection.dialect.name == "postgresql":
                raw = connection.connection.dbapi_connection
                assert raw is not None
                copy = 'COPY ledger_nodes (level, "index", hash) FROM STDIN'
                with raw.cursor() as cursor, cursor.copy(copy) as rows:
                    for node in created:
                        rows.write_row(node)
            else:
                connection.exec_driver_sql(
                    'INSERT INTO ledger_nodes (level, "index", hash) VALUES (?, ?, ?)', created
                )
            connection.execute(
                ledger_head.update()
                .where(ledger_head.c.id == 1)
                .values(size=tree.size, frontier=b"".join(tree.frontier))
            )


def leaf_hashes(
    connection: sa.Connection, seqs: Sequence[int], nodes_only: bool
) -> dict[int, bytes]:
    """The leaf hash of each entry: of its stored body, or (a tree of nodes alone) the stored
    level-0 node."""
    wanted = sorted(set(seqs))
    if not nodes_only:
        return {seq: merkle.leaf_hash(log.entry(connection, seq).body) for seq in wanted}
    rows = connection.execute(
        sa.select(ledger_nodes.c.index, ledger_nodes.c.hash).where(
            ledger_nodes.c.level == 0, ledger_nodes.c.index.in_(wanted)
        )
    )
    return {index: bytes(value) for index, value in rows}


def _timed_proofs(
    connection: sa.Connection,
    counter: StatementCounter,
    make: Any,
    arguments: Sequence[tuple[int, int]],
) -> tuple[list[float], set[int], list[list[bytes]]]:
    """Each proof timed, with the SQL statements it ran; the first ones only while the
    PROOF_BUDGET lasts (at least MIN_PROOFS)."""
    for number, args in enumerate(arguments[:WARMUPS]):
        start = time.perf_counter()
        make(connection, *args)
        if number == 0 and elapsed(start) > SLOW_WARMUP:
            break
    times: list[float] = []
    statements: set[int] = set()
    proofs: list[list[bytes]] = []
    began = time.perf_counter()
    for args in arguments:
        if len(times) >= MIN_PROOFS and elapsed(began) > PROOF_BUDGET:
            break
        before = counter.count
        start = time.perf_counter()
        proof = make(connection, *args)
        times.append(elapsed(start))
        statements.add(counter.count - before)
        proofs.append(proof)
    return times, statements, proofs


def _budget_note(done: int, wanted: int) -> str:
    return f"{done} of {wanted} proofs: {PROOF_BUDGET:.0f} s budget" if done < wanted else ""


def _join(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


def measure_proofs(
    engine: sa.Engine,
    counter: StatementCounter,
    name: str,
    size: int,
    count: int,
    nodes_only: bool = False,
) -> tuple[list[Row], bytes]:
    """Inclusion and consistency proofs in the tree of ``size`` and their verification, in
    one read connection; the rows and the root."""
    leaves, olds = samples(size, count)
    note = "store of Merkle nodes alone" if nodes_only else ""
    with engine.connect() as connection:
        root = log.tree_root(connection, size)
        times, statements, proofs = _timed_proofs(
            connection, counter, log.inclusion_proof, [(seq, size) for seq in leaves]
        )
        leaves = leaves[: len(proofs)]
        hashes = leaf_hashes(connection, leaves, nodes_only)
        checks = []
        for seq, proof in zip(leaves, proofs, strict=True):
            start = time.perf_counter()
            merkle.verify_inclusion(hashes[seq], seq, size, proof, root)
            checks.append(elapsed(start))
        reads = [len(set(merkle.inclusion_nodes(seq, size).node_ids)) for seq in leaves]
        rows = [
            Row(
                name,
                size,
                INCLUSION,
                Latency(tuple(times)),
                statements=tuple(sorted(statements)),
                nodes=(min(reads), max(reads)),
                note=_join(note, _budget_note(len(proofs), count)),
            ),
        ]
        verify_inclusion = Row(name, size, VERIFY_INCLUSION, Latency(tuple(checks)), note=note)

        times, statements, proofs = _timed_proofs(
            connection, counter, log.consistency_proof, [(old, size) for old in olds]
        )
        olds = olds[: len(proofs)]
        old_roots = {old: log.tree_root(connection, old) for old in set(olds)}
    checks = []
    for old, proof in zip(olds, proofs, strict=True):
        start = time.perf_counter()
        merkle.verify_consistency(old, size, old_roots[old], root, proof)
        checks.append(elapsed(start))
    reads = [len(set(merkle.consistency_nodes(old, size).node_ids)) for old in olds]
    rows.append(
        Row(
            name,
            size,
            CONSISTENCY,
            Latency(tuple(times)),
            statements=tuple(sorted(statements)),
            nodes=(min(reads), max(reads)),
            note=_join(note, _budget_note(len(proofs), count)),
        )
    )
    rows.append(verify_inclusion)
    rows.append(Row(name, size, VERIFY_CONSISTENCY, Latency(tuple(checks)), note=note))
    return rows, root


def time_verify(node: Node, counter: StatementCounter, name: str, size: int) -> Row:
    """``liaison ledger verify`` as the command runs it (one snapshot on PostgreSQL), after
    a checkpoint of the whole log is signed (untimed): verify also checks its signature, the
    anchor file and the root at its size."""
    with write_transaction(node.engine) as connection:
        log.checkpoint(connection, node.country, load_signing_key(node.settings.home))
    with node.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        before = counter.count
        start, cpu = time.perf_counter(), time.process_time()
        verified = log.verify(connection, node.country, node.public_key)
        seconds, cpu = elapsed(start), time.process_time() - cpu
        statements = counter.count - before
    if verified.size != size or verified.anchor is None or not verified.anchor.checkpoints:
        raise SystemExit(f"{name}: verified {verified}, expected {size} entries")
    return Row(
        name,
        size,
        FULL,
        rate=size / seconds,
        seconds=seconds,
        cpu=cpu,
        statements=(statements,),
        note=f"CPU {cpu:.1f} s",
    )


@dataclass
class Export:
    """The entries handed to pymerkle: the first backend's, with its roots."""

    directory: Path
    sizes: tuple[int, ...]
    bodies: Path | None = None
    appended: Path | None = None
    roots: dict[int, bytes] = field(default_factory=dict)


def write_bodies(engine: sa.Engine, first: int, stop: int, path: Path) -> None:
    """Entries ``first`` to ``stop`` as stored, one per line (canonical JSON has none)."""
    with engine.connect() as connection, path.open("wb") as out:
        query = (
            sa.select(ledger_entries.c.body)
            .where(ledger_entries.c.seq >= first, ledger_entries.c.seq < stop)
            .order_by(ledger_entries.c.seq)
        )
        for number, body in enumerate(connection.execute(query).scalars()):
            data = body.encode()
            if b"\n" in data:
                raise SystemExit("an entry holds a newline: it cannot go to pymerkle by lines")
            out.write(b"\n" + data if number else data)


def bench_backend(
    backend: str,
    args: argparse.Namespace,
    console: Console,
    results: Results,
    export: Export | None,
) -> None:
    name = BACKEND_NAMES[backend]
    count = 3 if args.nodes_only else 2
    with node_stores(backend, count, "liaison-bench-ledger-") as nodes:
        appender, grown = nodes[0], nodes[1]
        console.print(f"{name}: {args.appends:,} appends, {PAGE} per transaction…", style="dim")
        row, appended, note = time_appends(appender, args.appends, name)
        results.rows.append(row)
        results.notes.append(note)
        if export is not None:
            export.appended = export.directory / "appended.txt"
            write_bodies(appender.engine, appended.start, appended.stop, export.appended)

        counter = StatementCounter(grown.engine)
        rng = random.Random(SEED)
        for size in args.sizes:
            console.print(f"{name}: growing the log to {size:,} entries…", style="dim")
            start = time.perf_counter()
            grow(grown.engine, size, rng)
            results.loads.append(f"{name} to {size:,} in {elapsed(start):.1f} s")
            console.print(f"{name} {size:,}: proofs, then full verification…", style="dim")
            rows, root = measure_proofs(grown.engine, counter, name, size, args.proofs)
            results.rows.extend(rows)
            results.rows.append(time_verify(grown, counter, name, size))
            if export is not None and size in export.sizes:
                export.roots[size] = root
        if export is not None and export.sizes:
            export.bodies = export.directory / "bodies.txt"
            write_bodies(grown.engine, 0, max(export.sizes), export.bodies)
        counter.close()

        if args.nodes_only:
            tree = nodes[2]
            size = args.nodes_only
            console.print(f"{name}: a tree of {size:,} leaves from its nodes alone…", style="dim")
            start = time.perf_counter()
            build_nodes_only(tree.engine, size)
            results.loads.append(f"{name} nodes alone to {size:,} leaves in {elapsed(start):.0f} s")
            counter = StatementCounter(tree.engine)
            rows, _ = measure_proofs(tree.engine, counter, name, size, args.proofs, True)
            results.rows.extend(rows)
            counter.close()


# --- pymerkle ------------------------------------------------------------------------------

# Run by the virtual environment's Python: argv[1] is the specification, a JSON file. Timings
# go to standard output as JSON, in seconds. Indices are pymerkle's, counting from one.
PYMERKLE_SCRIPT = r"""
import json
import os
import sys
import time

import pymerkle
from pymerkle import InmemoryTree, SqliteTree, verify_consistency, verify_inclusion

spec = json.load(open(sys.argv[1]))


def lines(path):
    with open(path, "rb") as f:
        return f.read().split(b"\n")


def make(variant, name):
    if variant == "memory":
        return InmemoryTree(algorithm="sha256")
    tree = SqliteTree(os.path.join(spec["workdir"], name + ".db"), algorithm="sha256")
    # As liaison opens SQLite: WAL, synchronous=NORMAL.
    tree.con.execute("PRAGMA journal_mode=WAL")
    tree.con.execute("PRAGMA synchronous=NORMAL")
    return tree


def fill(tree, entries):
    start = time.perf_counter()
    for i in range(0, len(entries), spec["batch"]):
        tree.append_entries(entries[i : i + spec["batch"]])
    return time.perf_counter() - start


def timed(call, arguments):
    for args in arguments[: spec["warmups"]]:
        call(*args)
    times, out = [], []
    for args in arguments:
        start = time.perf_counter()
        out.append(call(*args))
        times.append(time.perf_counter() - start)
    return times, out


result = {"version": pymerkle.__version__}
appended = lines(spec["appended"]) if spec["appended"] else []
bodies = lines(spec["bodies"]) if spec["bodies"] else []
for variant in ("memory", "sqlite"):
    mine = result[variant] = {"sizes": {}}
    if appended:
        tree = make(variant, "appended")
        mine["append"] = fill(tree, appended)
        if variant == "sqlite":
            tree.close()
    tree = make(variant, "grown")
    for case in spec["sizes"]:
        size = case["size"]
        build = fill(tree, bodies[tree.get_size() : size])
        root = tree.get_root(size)
        leaves = [i + 1 for i in case["leaves"]]
        incl, proofs = timed(tree.prove_inclusion, [(i, size) for i in leaves])
        bases = [tree.get_leaf(i) for i in leaves]
        vincl, _ = timed(verify_inclusion, [(b, root, p) for b, p in zip(bases, proofs)])
        cons, proofs = timed(tree.prove_consistency, [(old, size) for old in case["olds"]])
        olds = [tree.get_root(old) for old in case["olds"]]
        vcons, _ = timed(verify_consistency, [(o, root, p) for o, p in zip(olds, proofs)])
        mine["sizes"][str(size)] = {
            "build": build,
            "root": root.hex(),
            "inclusion": incl,
            "verify_inclusion": vincl,
            "consistency": cons,
            "verify_consistency": vcons,
        }
    if variant == "sqlite":
        tree.close()
    del tree
print(json.dumps(result))
"""


def bench_pymerkle(
    export: Export, appends: int, count: int, console: Console, results: Results
) -> None:
    console.print("pymerkle: installing from PyPI into its own venv…", style="dim")
    start = time.perf_counter()
    try:
        bin_dir = peer_environment(export.directory / "venv", PYMERKLE_REQUIREMENTS)
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or "").strip().splitlines()[-1:] or [str(exc)]
        results.notes.append(f"pymerkle not measured: install failed: {detail[0]}")
        return
    installed = elapsed(start)
    sizes = sorted(export.roots)
    spec = {
        "workdir": str(export.directory),
        "batch": PAGE,
        "warmups": WARMUPS,
        "appended": str(export.appended) if export.appended else None,
        "bodies": str(export.bodies) if export.bodies else None,
        "sizes": [
            dict(zip(("size", "leaves", "olds"), (size, *samples(size, count)), strict=True))
            for size in sizes
        ],
    }
    spec_path = export.directory / "spec.json"
    spec_path.write_text(json.dumps(spec))
    script = export.directory / "pymerkle_bench.py"
    script.write_text(PYMERKLE_SCRIPT)
    console.print(f"pymerkle: {', '.join(f'{s:,}' for s in sizes)} entries…", style="dim")
    done = subprocess.run(
        [str(bin_dir / "python"), str(script), str(spec_path)],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        detail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        results.notes.append(f"pymerkle not measured: its run failed: {detail[0]}")
        return
    measured = json.loads(done.stdout)
    same = [
        measured[variant]["sizes"][str(size)]["root"] == export.roots[size].hex()
        for variant in PYMERKLE
        for size in sizes
    ]
    results.compatible = bool(same) and all(same)
    where = ", ".join(f"{size:,}" for size in sizes)
    results.notes.append(
        f"pymerkle {measured['version']} ({', '.join(PYMERKLE_REQUIREMENTS)} installed in "
        f"{installed:.0f} s into a venv of its own): InmemoryTree and SqliteTree, "
        "algorithm='sha256', security prefixes 0x00/0x01 (its default), subroot cache on (its "
        "default); SqliteTree in WAL mode with synchronous=NORMAL as liaison opens SQLite. Its "
        f"roots {'equal' if results.compatible else 'DIFFER FROM'} liaison's tree_root at "
        f"{where} entries: RFC 9162-compatible: {'yes' if results.compatible else 'no'}."
    )
    for variant, name in PYMERKLE.items():
        mine = measured[variant]
        if "append" in mine:
            rate = appends / mine["append"]
            results.rows.append(Row(name, appends, APPEND, rate=rate))
        builds = []
        for size in sizes:
            timings = mine["sizes"][str(size)]
            builds.append(f"{size:,} in {timings['build']:.1f} s")
            for key, label in (
                ("inclusion", INCLUSION),
                ("consistency", CONSISTENCY),
                ("verify_inclusion", VERIFY_INCLUSION),
                ("verify_consistency", VERIFY_CONSISTENCY),
            ):
                results.rows.append(Row(name, size, label, Latency(tuple(timings[key]))))
        results.loads.append(f"{name} to {', '.join(builds)} (batches of {PAGE})")


# --- report -------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    if ms >= 100:
        return f"{ms:,.0f} ms"
    if ms >= 1:
        return f"{ms:.2f} ms"
    return f"{ms:.3f} ms"


def _range(low: int, high: int) -> str:
    return f"{low}" if low == high else f"{low}–{high}"


def pymerkleratio(rows: Sequence[Row], row: Row, variant: str, compatible: bool | None) -> str:
    if not compatible or row.backend in PYMERKLE.values():
        return "—"
    key = (variant, row.entries, row.measurement)
    other = next((r for r in rows if (r.backend, r.entries, r.measurement) == key), None)
    return ratio(row.cost / other.cost) if other is not None else "—"


def render(results: Results, args: argparse.Namespace) -> Table:
    table = Table(title="Ledger: appends, proofs and verification")
    table.add_column("backend")
    table.add_column("entries", justify="right")
    table.add_column("measurement")
    for heading in ("value (p50)", "p95", "SQL statements", "nodes read"):
        table.add_column(heading, justify="right")
    table.add_column("× pymerkle in-memory", justify="right")
    table.add_column("× pymerkle SQLite", justify="right")
    table.add_column("note")
    for row in results.rows:
        if row.measurement == APPEND:
            value, p95 = f"{row.rate:,.0f} entries/s", "—"
        elif row.measurement == FULL:
            assert row.seconds is not None and row.rate is not None
            seconds = f"{row.seconds:.2f}" if row.seconds < 10 else f"{row.seconds:,.1f}"
            value, p95 = f"{seconds} s ({row.rate:,.0f} entries/s)", "—"
        else:
            assert row.latency is not None
            value, p95 = _ms(row.latency.p50), _ms(row.latency.p95)
        statements = "/".join(str(s) for s in row.statements) or "—"
        if row.measurement == APPEND and row.statements:
            statements += " per transaction"
        table.add_row(
            row.backend,
            f"{row.entries:,}",
            row.measurement,
            value,
            p95,
            statements,
            _range(*row.nodes) if row.nodes else "—",
            pymerkleratio(results.rows, row, PYMERKLE_MEMORY, results.compatible),
            pymerkleratio(results.rows, row, PYMERKLE_SQLITE, results.compatible),
            row.note,
        )
    nodes_only = (
        f"The {args.nodes_only:,}-entry rows are a store built from its Merkle nodes and head "
        f"alone (synthetic leaves, {NODE_CHUNK:,} per transaction; a proof reads nothing "
        "else), verified against its level-0 nodes; every other size is one store grown "
        "through the sizes by appending entries."
        if args.nodes_only
        else f"{FLAT_SIZE:,} entries not built (--nodes-only): see the goals."
    )
    caption = [
        f"Proofs: p50/p95 of {args.proofs} proofs after {WARMUPS} warm-ups, in one read "
        "connection, leaves (inclusion) and old sizes (consistency) drawn at random, the same "
        "for every backend and pymerkle; verification: merkle.verify_inclusion / "
        "verify_consistency of those proofs against log.tree_root. Full verification: "
        "log.verify, in one read connection, over the whole log: each entry checked in its "
        "place and canonical (disclosure entries without parsing them), hashed, every stored "
        "node recomputed and compared, the disclosure records matched one to one, after one "
        "signed checkpoint of the whole log (its signature, root and anchor file checked); its "
        "note: the CPU time of the benchmark's process meanwhile (the rest of the wall time is "
        "the database's work, or waiting for a busy machine's CPU).",
        "SQL statements: those the engine sent per proof (every size and sample alike when "
        "one number; for full verification, for the whole log); nodes read: the stored Merkle "
        "nodes a proof reads in its one nodes query, fewest–most over the samples. Proofs of "
        f"one kind at one size stop after {PROOF_BUDGET:.0f} s (at least {MIN_PROOFS}; the "
        "note says so), and warm-ups after the first when it took over "
        f"{SLOW_WARMUP * 1000:.0f} ms.",
        f"Append: entries as a TAXII page records its disclosures, {PAGE} per write "
        "transaction (one untimed first), on a store of its own; statements counted exclude "
        "COMMIT; pymerkle appends the same entries (their stored bodies) with append_entries "
        f"of {PAGE}. × pymerkle: liaison's time per entry or per operation over pymerkle's "
        "(below 1: liaison faster); pymerkle keeps entries and leaf hashes, liaison also "
        "encodes the entry (RFC 8785) and stores its Merkle nodes. pymerkle's entries are "
        "the first backend's bodies; the other backend's entries differ only in timestamps "
        "and node key.",
        nodes_only,
        "loading: " + "; ".join(results.loads),
        *results.notes,
    ]
    table.caption = "\n".join(caption)
    return table


def goals(results: Results) -> Table:
    table = Table(title="Goals")
    table.add_column("goal")
    table.add_column("backend")
    table.add_column("measured")
    table.add_column("result")
    liaison = [r for r in results.rows if r.backend in BACKEND_NAMES.values()]
    names = list(dict.fromkeys(r.backend for r in liaison))
    extrapolated = False

    label = f"appends ≥ {APPEND_GOAL:,} entries/s on SQLite ({PAGE} per transaction)"
    append = next((r for r in liaison if r.backend == "SQLite" and r.measurement == APPEND), None)
    if append is None or append.rate is None:
        table.add_row(label, "SQLite", "—", "not measured")
    else:
        table.add_row(
            label, "SQLite", f"{append.rate:,.0f} entries/s", verdict(append.rate >= APPEND_GOAL)
        )

    for name in names:
        for kind in PROOFS:
            label = f"{kind}s flat from 10^3 to 10^7 (p50 ≤ {FLAT_GOAL}×, statements constant)"
            mine = sorted(
                (r for r in liaison if r.backend == name and r.measurement == kind),
                key=lambda r: r.entries,
            )
            if len(mine) < 2:
                table.add_row(label, name, "—", "not measured")
                continue
            smallest, largest = mine[0], mine[-1]
            assert smallest.latency is not None and largest.latency is not None
            growth = largest.latency.p50 / smallest.latency.p50
            counts = sorted({s for r in mine for s in r.statements})
            measured = (
                f"p50 {ratio(growth)} ({smallest.entries:,} → {largest.entries:,}); "
                f"statements {'/'.join(map(str, counts))} at every size"
            )
            if largest.entries < FLAT_SIZE:
                extrapolated = True
                leaves, olds = samples(FLAT_SIZE, DEFAULT_PROOFS)
                plans = (
                    [merkle.inclusion_nodes(seq, FLAT_SIZE) for seq in leaves]
                    if kind == INCLUSION
                    else [merkle.consistency_nodes(old, FLAT_SIZE) for old in olds]
                )
                reads = [len(set(plan.node_ids)) for plan in plans]
                measured += (
                    f"; {FLAT_SIZE:,} not measured: by the code path {counts[-1]} statements, "
                    f"one query of {_range(min(reads), max(reads))} nodes (extrapolated)"
                )
            met = growth <= FLAT_GOAL and len(counts) == 1
            table.add_row(label, name, measured, verdict(met))

    for name in names:
        label = f"full verification of {VERIFY_SIZE:,} entries < {VERIFY_GOAL:.0f} s"
        runs = sorted(
            (r for r in liaison if r.backend == name and r.measurement == FULL),
            key=lambda r: r.entries,
        )
        if not runs:
            table.add_row(label, name, "—", "not measured")
            continue
        at = next((r for r in runs if r.entries == VERIFY_SIZE), None)
        if at is not None:
            assert at.seconds is not None and at.cpu is not None
            seconds, measured = at.seconds, f"{at.seconds:.1f} s (CPU {at.cpu:.1f} s)"
        else:
            largest = runs[-1]
            assert largest.seconds is not None
            seconds = largest.seconds * VERIFY_SIZE / largest.entries
            measured = (
                f"{seconds:.1f} s, extrapolated linearly from {largest.seconds:.2f} s at "
                f"{largest.entries:,}"
            )
        table.add_row(label, name, measured, verdict(seconds < VERIFY_GOAL))
    captions = [
        "Flat: p50 at the largest size measured over p50 at the smallest; statements: every "
        "proof at every size ran the same number."
    ]
    if extrapolated:
        captions.append(
            f"Where {FLAT_SIZE:,} was not measured, its proof runs the same code path (one "
            "head read, one nodes query) and reads the nodes of merkle.inclusion_nodes / "
            f"consistency_nodes (fewest–most over {DEFAULT_PROOFS} random samples, as measured "
            "sizes draw them); its p50 is not measured, and is flat only as far as the "
            "measured sizes show."
        )
    table.caption = "\n".join(captions)
    return table


# --- command line -------------------------------------------------------------------------


def _size_or_none(raw: str) -> int:
    if raw.strip().lower() in ("", "none", "0"):
        return 0
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size or 'none', not {raw!r}") from None
    if value < MIN_SIZE:
        raise argparse.ArgumentTypeError(f"the size must be at least {MIN_SIZE}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ledger", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--sizes",
        type=lambda raw: sizes(raw, MIN_SIZE),
        default=None,
        help=f"log sizes, comma-separated (default {','.join(map(str, DEFAULT_SIZES))})",
    )
    parser.add_argument(
        "--backends", type=backends, default=None, help="default: both (--quick: sqlite)"
    )
    parser.add_argument(
        "--appends",
        type=positive,
        default=DEFAULT_APPENDS,
        help=f"entries in the timed appends (default {DEFAULT_APPENDS})",
    )
    parser.add_argument(
        "--proofs",
        type=positive,
        default=None,
        help=f"proofs of each kind per size (default {DEFAULT_PROOFS})",
    )
    parser.add_argument(
        "--nodes-only",
        type=_size_or_none,
        default=None,
        help=f"size of the tree built from its nodes alone, 'none' to skip (default "
        f"{DEFAULT_NODES_ONLY}; --quick: none)",
    )
    parser.add_argument(
        "--pymerkle-sizes",
        type=lambda raw: sizes(raw, MIN_SIZE),
        default=None,
        help="sizes for pymerkle, among --sizes, 'none' to skip (default "
        f"{','.join(map(str, DEFAULT_PYMERKLE_SIZES))})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"sizes {','.join(map(str, QUICK_SIZES))}, SQLite only, no tree of nodes alone, "
        f"pymerkle at {','.join(map(str, QUICK_PYMERKLE_SIZES))}, {QUICK_PROOFS} proofs",
    )
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    if not args.sizes:
        parser.error("--sizes needs at least one size")
    if args.backends is None:
        args.backends = QUICK_BACKENDS if args.quick else BACKENDS
    if args.proofs is None:
        args.proofs = QUICK_PROOFS if args.quick else DEFAULT_PROOFS
    if args.nodes_only is None:
        args.nodes_only = 0 if args.quick else DEFAULT_NODES_ONLY
    if args.pymerkle_sizes is None:
        args.pymerkle_sizes = QUICK_PYMERKLE_SIZES if args.quick else DEFAULT_PYMERKLE_SIZES
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = wide_console(190)
    machine = Machine()
    results = Results()
    skipped = sorted(set(args.pymerkle_sizes) - set(args.sizes))
    if skipped:
        results.notes.append(
            f"pymerkle not run at {', '.join(f'{s:,}' for s in skipped)}: not among --sizes"
        )
    with tempfile.TemporaryDirectory(prefix="liaison-bench-pymerkle-") as directory:
        export = Export(Path(directory), tuple(s for s in args.pymerkle_sizes if s in args.sizes))
        for number, backend in enumerate(args.backends):
            bench_backend(backend, args, console, results, export if number == 0 else None)
        if export.sizes:
            bench_pymerkle(export, args.appends, args.proofs, console, results)
    console.print(machine.summary())
    console.print(render(results, args))
    console.print(goals(results))


if __name__ == "__main__":
    main()
