"""Sync throughput: a USA node pulling a Canadian node's objects over loopback, as a user
meets it.

**Nodes.** CAN's node (SQLite) holds N objects of one deterministic ``bench.corpus.Feed``
(reports of 300-1,500 words of prose, indicators, relationships, malware; a twentieth are
new versions), all originated by CAN and released to USA (half TLP:CLEAR, half CAN:SECRET
REL TO USA), written straight into the store as ``bench.taxii_pages`` loads, the fingerprint
slots of every text found and kept beside the load (``SlotPreparer``: what ``liaison
prepare`` leaves), so the timings are of the sync, not of slot finding. CAN serves TAXII
as a separate ``liaison serve`` process. USA's node (SQLite) has CAN as a peer: credentials
issued by CAN's node, each node's key and identity pinned in the other's alliance file.

**Timed**, each a ``liaison sync can --json`` subprocess with USA's environment (start-up
included): the first full pull (CAN's server makes every copy on the release path: policy,
fingerprint marks, Ed25519 signature, disclosures and ledger entries; USA verifies every
signature and validates every object with the OASIS validator); a second sync (nothing
new); on fresh USA nodes (the same key), a full pull of copies already delivered (the
baseline), and a pull SIGKILLed once half the objects are stored, then resumed: the seconds
the kill cost and the objects fetched again (the page in flight: at most ``PAGE`` = 500).
CPU seconds of CAN's server and of the sync (with its validator workers) for each row.

**Not covered**: PostgreSQL, the push direction, concurrent writers, TLS, a cold cache.

    python -m bench.sync_throughput [--objects 20000,100000] [--timeout 3600] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.corpus import Feed, Label
from bench.options import sizes
from bench.report import Machine, wide_console
from bench.taxii_pages import LiaisonStore, Process, SlotPreparer, liaison_command, load_all
from liaison.markings.handling import marking_definition
from liaison.markings.tlp import TLP_CLEAR
from liaison.node import KEY_FILE, Node, apply_alliance, init_node, load_signing_key
from liaison.settings import Settings
from liaison.store.engine import write_transaction
from liaison.store.pages import visibility_counts
from liaison.store.schema import objects
from liaison.taxii.credentials import IssuedCredentials, issue_credentials
from liaison.taxii.peers import PeerSecret, add_peer
from liaison.taxii.sync import PAGE

DEFAULT_SIZES = (100_000,)
QUICK_SIZES = (2_000,)
SEED = 20250920
TIMEOUT = 3600.0
CLEARANCES = {"CAN": "CAN:TOP SECRET", "USA": "USA:TS"}
TICK = os.sysconf("SC_CLK_TCK")


def alliance_text(me: Node, other: Node) -> str:
    """``me``'s alliance file: ``other`` pinned (key, identity), FVEY, and (on CAN's node)
    one collection USA may read and no one may write."""
    text = (
        f'[node]\ncountry = "{me.country}"\nname = "{me.country} node"\n\n'
        f'[[partners]]\ncountry = "{other.country}"\nname = "{other.country} node"\n'
        f'clearance = "{CLEARANCES[other.country]}"\ntrust = "high"\n'
        f'public_key = "{other.public_key_hex}"\nidentity = "{other.identity_id}"\n\n'
        '[[communities]]\nname = "FVEY"\nkind = "alliance"\nmembers = [\n'
        '  { country = "CAN", joined = 1946-03-05 },\n'
        '  { country = "USA", joined = 1946-03-05 },\n]\n\n'
    )
    if me.country == "CAN":
        text += '[[collections]]\nalias = "intel"\ntitle = "Intelligence"\nread = ["USA"]\n'
    return text


def new_node(home: Path, country: str, key_from: Path | None = None) -> Node:
    """A node on a SQLite file in ``home``; with ``key_from``, that home's signing key."""
    home.mkdir(parents=True)
    if key_from is not None:
        shutil.copy2(key_from / KEY_FILE, home / KEY_FILE)
    settings = Settings.from_env(
        {"LIAISON_HOME": str(home), "LIAISON_DATABASE_URL": f"sqlite:///{home / 'liaison.db'}"}
    )
    node, _ = init_node(settings, country, f"{country} node")
    return node


def link(me: Node, other: Node, workdir: Path) -> None:
    path = workdir / f"alliance-{me.country}-{me.settings.home.name}.toml"
    path.write_text(alliance_text(me, other))
    apply_alliance(me, path)


def add_can(usa: Node, url: str, issued: IssuedCredentials) -> None:
    with write_transaction(usa.engine) as connection:
        add_peer(
            connection,
            load_signing_key(usa.settings.home),
            "can",
            url,
            "CAN",
            issued.username,
            PeerSecret(issued.password, issued.token),
        )


def node_env(node: Node) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    env["LIAISON_HOME"] = str(node.settings.home)
    env["LIAISON_DATABASE_URL"] = node.settings.database_url
    return env


def count(node: Node, where: sa.ColumnElement[bool]) -> int:
    """The versions ``node`` holds that match ``where``."""
    with node.engine.connect() as connection:
        query = sa.select(sa.func.count()).select_from(objects).where(where)
        return connection.execute(query).scalar_one()


FROM_CAN = objects.c.received_from == "CAN"  # CAN's identity among them


def server_cpu(pid: int) -> float:
    """CPU seconds of a live process (user and system, with its reaped children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICK


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Run:
    """One ``liaison sync can`` run."""

    seconds: float
    result: dict[str, Any] | None  # the peer's entry of --json; None when killed
    server_cpu: float
    client_cpu: float

    @property
    def received(self) -> int:
        return int((self.result or {}).get("received", 0))

    @property
    def pages(self) -> int:
        return sum(c["pages"] for c in (self.result or {}).get("collections", []))

    def cpu(self) -> str:
        return f"CPU: CAN server {self.server_cpu:,.0f} s, USA sync {self.client_cpu:,.0f} s"


def sync(
    usa: Node, server: Process, timeout: float, kill_at: tuple[Any, int, float] | None = None
) -> Run:
    """``liaison sync can --json`` on USA's node, timed; with ``kill_at`` (a condition, a
    count, a delay), SIGKILLed that many seconds after USA holds that many versions matching
    the condition (into the next page)."""
    command = [*liaison_command(), "sync", "can", "--json"]
    cpu_server, cpu_client = server_cpu(server.pid), children_cpu()
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=node_env(usa), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    if kill_at is None:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise SystemExit(f"liaison sync took over {timeout:.0f} s") from None
        seconds = time.perf_counter() - start
        if process.returncode != 0:
            raise SystemExit(f"liaison sync failed ({process.returncode}): {err.decode()[-2000:]}")
        (result,) = json.loads(out)
        if "error" in result:
            raise SystemExit(f"liaison sync: {result['error']}")
        if result["refused"]:
            first = "; ".join(f"{r['id']}: {r['reason']}" for r in result["refused"][:3])
            raise SystemExit(f"{len(result['refused'])} objects refused: {first}")
    else:
        where, wanted, delay = kill_at
        while count(usa, where) < wanted:
            if process.poll() is not None or time.perf_counter() - start > timeout:
                process.kill()
                raise SystemExit("the pull to kill ended, or timed out, before half was stored")
            time.sleep(0.1)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        seconds, result = time.perf_counter() - start, None
    return Run(seconds, result, server_cpu(server.pid) - cpu_server, children_cpu() - cpu_client)


@dataclass
class Row:
    label: str
    objects: int | None
    seconds: float
    pages: int | None
    note: str

    @classmethod
    def of(cls, label: str, objects: int, run: Run, note: str = "") -> Row:
        pages = run.pages if run.result else None
        return cls(label, objects, run.seconds, pages, "; ".join(filter(None, [note, run.cpu()])))


def labels(origin: str, marks: list[tuple[str, ...]]) -> Any:
    """The feed's ``label_of``: ``origin``'s objects, marked with each of ``marks`` in turn,
    all of one audience."""
    chosen = [Label(m, origin, 1) for m in marks]

    def label_of(index: int, _: Any) -> Label:
        return chosen[index % len(chosen)]

    return label_of


def load_can(can: Node, size: int, console: Console) -> tuple[float, float, int, int]:
    """CAN's store filled with ``size`` objects of the feed, slots prepared beside: seconds
    loading, seconds preparing, distinct texts, versions stored (every one released to USA)."""
    secret = marking_definition(can.identity_id, "CAN:SECRET", ["USA"])
    label_of = labels(can.identity_id, [(TLP_CLEAR,), (secret["id"],)])
    feed = Feed(label_of, [can.identity_id], seed=SEED)
    store = LiaisonStore("sqlite", size, can, {})
    slots = SlotPreparer(can.settings.database_url, [store], workers=os.cpu_count() or 2)
    load_all(feed, [secret], [store], [], console, slots)
    with can.engine.connect() as connection:
        counts = visibility_counts(connection).get("USA", {})
        total = connection.execute(sa.select(sa.func.count()).select_from(objects)).scalar_one()
    if counts.get("withhold"):
        raise SystemExit(f"CAN's policy withholds {counts['withhold']:,} objects from USA")
    return store.seconds, slots.seconds, slots.texts, total


def measure(size: int, workdir: Path, args: argparse.Namespace, console: Console) -> list[Row]:
    can = new_node(workdir / "can", "CAN")
    usa = new_node(workdir / "usa", "USA")
    nodes = [can, usa]
    server: Process | None = None
    try:
        link(can, usa, workdir)
        link(usa, can, workdir)
        console.print(f"loading {size:,} objects into CAN's node…", style="dim")
        loading, preparing, texts, total = load_can(can, size, console)
        with write_transaction(can.engine) as connection:
            issued = issue_credentials(connection, "USA")
        command = [*liaison_command(), "serve", "--host", "127.0.0.1", "--port", "{port}"]
        server = Process(command, node_env(can), workdir / f"can-{size}.log", workdir)
        server.wait_ready("/taxii2/", (401,))
        add_can(usa, server.url, issued)

        console.print("first pull…", style="dim")
        first = sync(usa, server, args.timeout)
        got = first.received
        ledger = first.result["checkpoint"]  # type: ignore[index]
        second = sync(usa, server, args.timeout)

        def fresh(name: str) -> Node:
            node = new_node(workdir / name, "USA", key_from=usa.settings.home)
            nodes.append(node)
            link(node, can, workdir)
            add_can(node, server.url, issued)  # type: ignore[union-attr]
            return node

        console.print("full pull into a fresh node (copies already delivered)…", style="dim")
        baseline = sync(fresh("usa-again"), server, args.timeout)
        if baseline.received != got:
            raise SystemExit(f"a fresh node received {baseline.received:,}, not {got:,}")
        console.print("pull killed at half, then resumed…", style="dim")
        victim = fresh("usa-killed")
        # Killed half a page's time into the page after the half: in flight, not stored.
        delay = baseline.seconds / max(baseline.pages, 1) / 2
        # Polled by an indexed count (CAN's identity has no created_by_ref).
        by_can = objects.c.created_by_ref == can.identity_id
        half = (by_can, count(usa, by_can) // 2, delay)
        killed = sync(victim, server, args.timeout, kill_at=half)
        kept = count(victim, FROM_CAN)
        resumed = sync(victim, server, args.timeout)
        if not count(victim, FROM_CAN) == count(usa, FROM_CAN) == got:
            raise SystemExit(f"after resuming USA holds {count(victim, FROM_CAN):,} of {got:,}")
        repeated = resumed.received - (got - kept)
        lost = killed.seconds + resumed.seconds - baseline.seconds
    finally:
        if server is not None:
            server.stop()
        for node in nodes:
            node.engine.dispose()
    state = f"refused 0; ledger {ledger['state']} ({ledger['size']:,} entries)"
    flight = f"the page in flight (up to {min(PAGE, got - kept)} objects; killed {delay:.1f} s in)"
    versus = f"{killed.seconds + resumed.seconds - first.seconds:+,.1f} s"
    return [
        Row.of("first pull (empty to all)", got, first, state),
        Row.of("second sync (nothing new)", second.received, second),
        Row.of("full pull, fresh node (already delivered)", got, baseline, "kill's baseline"),
        Row.of("pull SIGKILLed at about half", kept, killed, "objects stored when killed"),
        Row.of(
            "resumed sync",
            resumed.received,
            resumed,
            f"fetched again: {flight}, plus {repeated} stored already (cursor not kept)",
        ),
        Row(
            "lost to the kill",
            None,
            lost,
            None,
            f"killed + resumed - baseline "
            f"({lost / baseline.seconds:+.0%}); killed + resumed - first pull: {versus}",
        ),
        Row(
            "(setup) load CAN's store",
            total,
            loading,
            None,
            f"add_objects, not timed above; slots of {texts:,} texts prepared beside "
            f"({preparing:,.0f} s, {os.cpu_count()} processes)",
        ),
    ]


def render(results: dict[int, list[Row]], machine: Machine) -> Table:
    table = Table(title="Sync: USA's node pulls CAN's node over loopback (SQLite)")
    table.add_column("size")
    table.add_column("measurement")
    for heading in ("objects", "pages", "seconds", "objects/s"):
        table.add_column(heading, justify="right")
    table.add_column("note")
    for size, rows in results.items():
        for row in rows:
            rate = f"{row.objects / row.seconds:,.0f}" if row.objects else "-"
            number = "-" if row.objects is None else f"{row.objects:,}"
            pages = "-" if row.pages is None else str(row.pages)
            seconds = f"{row.seconds:,.1f}"
            table.add_row(f"{size:,}", row.label, number, pages, seconds, rate, escape(row.note))
        table.add_section()
    table.caption_justify = "left"
    table.caption = "\n".join(
        escape(f"- {line}")
        for line in [
            machine.summary("SQLite on both nodes, loopback HTTP, no TLS") + ".",
            "Every sync is `liaison sync can --json` run as a subprocess with USA's environment"
            " (CLI start-up included): pull, push (nothing: USA may write to no collection) and"
            " the check of CAN's ledger.",
            "CAN's server (`liaison serve`, one process) makes every copy on the release path:"
            " policy, fingerprint marks, Ed25519 signature, disclosures and ledger entries (the"
            " first delivery to USA) or the recorded copy again (later ones); USA verifies"
            " each signature and validates every object with the OASIS validator before"
            " storing it.",
            "CAN's fingerprint slots were prepared before any timing (as `liaison prepare`"
            " leaves a store): the timings are of the sync, not of slot finding.",
            "Objects: the latest version of each of CAN's objects (a pull asks for no"
            " match[version]: TAXII's default, the last), CAN's identity and one marking"
            " definition among them; CAN's store also holds the earlier versions (a twentieth"
            " of the feed are revisions).",
            "The kill: SIGKILL half a page's time (of the baseline) after USA stored half of"
            " the objects, so a page is in flight (downloaded, not stored, fetched again);"
            " 'stored already': objects the resumed run received that USA held (a page"
            " stored whose cursor was not yet kept when the kill came).",
            "Not covered: PostgreSQL, the push direction, concurrent writers or several peers,"
            " TLS, a cold disk cache.",
        ]
    )
    return table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sync_throughput", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--objects",
        type=sizes,
        default=None,
        help=f"CAN's store sizes, comma-separated (default {','.join(map(str, DEFAULT_SIZES))})",
    )
    parser.add_argument(
        "--timeout", type=float, default=TIMEOUT, help="seconds one sync may take (default 3600)"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"size {','.join(map(str, QUICK_SIZES))}"
    )
    args = parser.parse_args(argv)
    if args.objects is None:
        args.objects = QUICK_SIZES if args.quick else DEFAULT_SIZES
    if not args.objects:
        parser.error("--objects needs at least one size")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = wide_console(200)
    machine = Machine()
    results: dict[int, list[Row]] = {}
    for size in args.objects:
        workdir = Path(tempfile.mkdtemp(prefix="liaison-bench-sync-"))
        try:
            results[size] = measure(size, workdir, args, console)
        except BaseException:
            console.print(f"CAN's server log is kept in {workdir}", style="red")
            raise
        shutil.rmtree(workdir, ignore_errors=True)
    console.print(render(results, machine))


if __name__ == "__main__":
    main()
