"""TAXII pages: Liaison's reads and writes as the store grows, beside a floor and OpenTAXII.

One run, the sides interleaved.

**Objects.** One deterministic feed (``bench.corpus.Feed``): reports of 300-1,500 words of
threat-report prose (30%; about 55 fingerprint slots per 1,000 words, as analysts' reports
have), indicators (45%), relationships (22%) and malware (3%); a twentieth are new versions
of recent objects; references point at earlier objects the readers may see (a tenth
anywhere, cut from the copies of those who may not). Objects carry
300 release classes: marking combinations of classification (CAN, NATO), REL TO sets,
caveats (ORCON, NOFORN, EYES ONLY) and TLP 2.0, from the node and from producers outside the
alliance (the third-party rule applies to theirs), each decided by the real policy on a
scratch node first. Of every 1,000 objects one is for USA, GBR and AUS, 99 for USA and GBR,
800 for USA alone and 100 for nobody: USA may see 90%, GBR 10%, AUS 0.1%. Each size is a
prefix of the feed, written straight into the store (``add_objects``, ``register_classes``,
transactions of 20,000, as an import writes them, without the validator) and into OpenTAXII's
table (``bench.opentaxii``). Beside the load, the fingerprint slots of every text are found
once and kept in each store holding it, as ``liaison prepare`` leaves a store after a bulk
import (``--no-prepare``: first deliveries find them in the request); found slots are kept in
a cache file for the next run (``--slot-cache``; ``--prepare-only`` fills it ahead, with no
store and nothing timed). Nothing runs ANALYZE: statistics are what each store keeps by
itself.

**Requests**, each timed as p50 and p95, all on pages of at most 100 reports
(``match[type]=report``): a *first delivery* (100 reports never delivered to that partner:
tearline, reference cuts, the partner's fingerprint written into the text, disclosures and
ledger entries written; each sample another ``added_after`` window), a *repeat page* (the
first page again), a *deep page* (reached through ``next``), the *manifest*, ``match[id]``
(20 ids), ``added_after`` (a page from the middle of the feed), and a POST of 1,000
indicators polled until its status is complete; the servers' memory (VmRSS of the server and
its children).

**Sides.** Liaison as ``liaison serve`` (uvicorn, one process) on its own store at each size;
the floor, a sync Starlette route returning a pre-built body of the size of Liaison's largest
answer of the same request, on uvicorn launched as ``liaison serve`` launches it; OpenTAXII
(its GitHub master at 1506bb7, TAXII 2.1) under gunicorn with one worker on the same objects.
Each request kind goes round-robin over all of them, rotating the order every round, so load
from other processes falls on every side alike.

    python -m bench.taxii_pages [--objects 10000,100000,1000000] [--backends sqlite,postgresql]
        [--requests 30] [--posts 10] [--opentaxii-source PATH_OR_URL] [--opentaxii-venv DIR]
        [--no-opentaxii] [--no-prepare] [--slot-cache PATH] [--no-slot-cache] [--prepare-only]
        [--timeout 300] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench import opentaxii
from bench.corpus import Feed, Label
from bench.import_throughput import fresh_database, postgres_server
from bench.options import BACKENDS, backends, positive, sizes
from bench.peers import stop_server
from bench.report import Latency, Machine, ratio, verdict, wide_console
from bench.stores import make_node, node_stores
from liaison.alliance import Collection, Community, Partner
from liaison.fingerprint.prepared import found_slots, keep, object_texts, text_key
from liaison.markings.handling import marking_definition
from liaison.markings.tlp import TLP_AMBER, TLP_AMBER_STRICT, TLP_CLEAR, TLP_GREEN, TLP_RED
from liaison.node import Node, identity_object
from liaison.policy.classes import class_key
from liaison.policy.grants import record_change, redecide, register_classes, set_rules
from liaison.policy.rules import NodeRules
from liaison.stix.ids import derived_id
from liaison.stix.timestamps import from_micros
from liaison.store.alliance import save_alliance
from liaison.store.engine import write_transaction
from liaison.store.objects import add_objects
from liaison.store.pages import visibility_counts
from liaison.store.schema import grants, objects
from liaison.taxii.credentials import IssuedCredentials, issue_credentials

ROOT = Path(__file__).resolve().parents[1]
BACKEND_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (2_000, 20_000)
DEFAULT_REQUESTS = 30
QUICK_REQUESTS = 8
DEFAULT_POSTS = 10
QUICK_POSTS = 3
WARMUPS = 3
TIMEOUT = 300.0
SEED = 20250901
LOAD_BATCH = 20_000

PAGE = 100
# The deep page is reached by following `next` this many times (fewer in a short feed).
DEEP_STEPS = 5
MATCH_IDS = 20
POST_OBJECTS = 1_000
TAXII = "application/taxii+json;version=2.1"
ACCEPT = {"Accept": TAXII}
TAXII_CONTENT = {"Content-Type": TAXII}

FIRST = "first delivery"
REPEAT = "repeat page"
DEEP = "deep page (next)"
MANIFEST = "manifest"
MATCH_ID = "match[id]"
ADDED_AFTER = "added_after"
POST = "POST 1,000, to complete"
SHOWN = (FIRST, REPEAT, DEEP, MANIFEST, MATCH_ID, ADDED_AFTER, POST)
READS = SHOWN[:-1]
# Measured in this order: every read kind warms the server's caches before first deliveries.
MEASURED = (REPEAT, MANIFEST, DEEP, MATCH_ID, ADDED_AFTER, FIRST, POST)

LIAISON = "Liaison"
PEER = "OpenTAXII"
FLOOR = "floor"

# Goals of the issue: printed beside the numbers, never asserted.
REPEAT_FLOOR_GOAL = 3.0
FIRST_FLOOR_GOAL = 6.0
FIRST_GOAL_SIZE = 1_000_000
GROWTH_GOAL = 1.3
PEER_GOAL = 1.5
PEER_GOAL_SIZE = 100_000
POST_GOAL = 1.2

# --- the alliance and its release classes -----------------------------------------------

NODE_COUNTRY = "CAN"
NODE_IDENTITY = derived_id("identity", f"agency:{NODE_COUNTRY}")
PARTNERS = {"USA": "USA:TS", "GBR": "GBR:TOP SECRET", "AUS": "AUS:TOP SECRET"}
COLLECTIONS = (
    Collection(alias="intel", title="Intelligence", read=tuple(PARTNERS)),
    Collection(
        alias="submissions",
        title="Partner submissions",
        types=("indicator",),
        write=tuple(PARTNERS),
    ),
)
READ_PATH = f"/api/collections/{COLLECTIONS[0].id}/"
POST_PATH = f"/api/collections/{COLLECTIONS[1].id}/objects/"

# Who may see an object, as a rank (references go to an equal or higher rank).
ALL, USA_GBR, USA_ONLY, NOBODY = 3, 2, 1, 0
AUDIENCES = {
    ALL: frozenset(PARTNERS),
    USA_GBR: frozenset({"USA", "GBR"}),
    USA_ONLY: frozenset({"USA"}),
    NOBODY: frozenset(),
}
# Release classes drawn for each audience (300 in all).
CLASSES_PER_AUDIENCE = {ALL: 30, USA_GBR: 70, USA_ONLY: 140, NOBODY: 60}
PRODUCERS = 3
CLASSIFICATIONS = (
    None,
    "CAN:UNCLASSIFIED",
    "CAN:CONFIDENTIAL",
    "CAN:SECRET",
    "CAN:TOP SECRET",
    "NATO:NS",
)
REL_TOS = (
    None,
    ("USA",),
    ("USA", "GBR"),
    ("USA", "GBR", "AUS"),
    ("FVEY",),
    ("GBR",),
    ("USA", "AUS"),
)
CAVEATS = ((), ("ORCON",), ("NOFORN",), ("USA EYES ONLY",), ("GBR EYES ONLY",))
TLPS = (None, TLP_CLEAR, TLP_GREEN, TLP_AMBER, TLP_AMBER_STRICT, TLP_RED)


def audience_of(index: int) -> int:
    """Of every 1,000 objects: 1 for all three partners, 99 for USA and GBR, 800 for USA
    alone, 100 for nobody (USA 90%, GBR 10%, AUS 0.1%)."""
    slot = index % 1000
    if slot == 0:
        return ALL
    if slot < 100:
        return USA_GBR
    if slot < 900:
        return USA_ONLY
    return NOBODY


def producer(number: int) -> dict[str, Any]:
    """An organisation outside the alliance whose reports the node passes on."""
    identity = derived_id("identity", f"bench-producer:{number}")
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": identity,
        "created": "2025-01-01T00:00:00.000Z",
        "modified": "2025-01-01T00:00:00.000Z",
        "created_by_ref": identity,
        "name": f"Producer {number}",
        "identity_class": "organization",
        "object_marking_refs": [TLP_CLEAR],
    }


@dataclass(frozen=True)
class Handling:
    """One marking combination and originator: one release class."""

    classification: str | None
    releasable_to: tuple[str, ...] | None
    caveats: tuple[str, ...]
    tlp: str | None
    originator: str

    def definition(self) -> dict[str, Any] | None:
        if self.classification is None and self.releasable_to is None and not self.caveats:
            return None
        return marking_definition(
            NODE_IDENTITY,
            classification=self.classification,
            releasable_to=list(self.releasable_to) if self.releasable_to else None,
            caveats=list(self.caveats) or None,
        )

    def markings(self) -> tuple[str, ...]:
        definition = self.definition()
        refs = [definition["id"]] if definition else []
        return tuple(refs + ([self.tlp] if self.tlp else []))


def candidates(originators: Sequence[str]) -> list[Handling]:
    return [
        Handling(c, r, v, t, o)
        for c, r, v, t, o in itertools.product(CLASSIFICATIONS, REL_TOS, CAVEATS, TLPS, originators)
    ]


def setup_alliance(node: Node) -> dict[str, IssuedCredentials]:
    """Three partners cleared TOP SECRET, FVEY (the node and the three), TLP:AMBER allowed
    to USA and GBR, the two collections; each partner's credentials."""
    partners = tuple(
        Partner(country=code, name=f"{code} agency", clearance=clearance, trust="high")
        for code, clearance in PARTNERS.items()
    )
    fvey = Community.model_validate({"name": "FVEY", "members": [NODE_COUNTRY, *PARTNERS]})
    with write_transaction(node.engine) as connection:
        save_alliance(connection, partners, (fvey,), COLLECTIONS)
        set_rules(connection, NodeRules(amber_scope=frozenset({"USA", "GBR"})))
        record_change(connection, "alliance", {"source": "bench.taxii_pages"})
        redecide(connection)
        return {code: issue_credentials(connection, code) for code in PARTNERS}


@dataclass
class Classes:
    """The release classes drawn for each audience, with Zipf weights (a few classes hold
    most objects, as in a real store)."""

    chosen: dict[int, list[Handling]]
    producers: list[dict[str, Any]]

    def __post_init__(self) -> None:
        self.labels = {
            audience: [Label(h.markings(), h.originator, audience) for h in handlings]
            for audience, handlings in self.chosen.items()
        }
        self.weights = {
            audience: list(itertools.accumulate(1 / (k + 1) for k in range(len(handlings))))
            for audience, handlings in self.chosen.items()
        }

    @property
    def count(self) -> int:
        return sum(len(h) for h in self.chosen.values())

    def label_of(self, index: int, rng: random.Random) -> Label:
        audience = audience_of(index)
        return rng.choices(self.labels[audience], cum_weights=self.weights[audience])[0]

    def preamble(self) -> list[dict[str, Any]]:
        """What the feed refers to: the marking definitions and the producers."""
        definitions = {
            d["id"]: d
            for handlings in self.chosen.values()
            for h in handlings
            if (d := h.definition()) is not None
        }
        return [*definitions.values(), *self.producers]

    def markings(self) -> int:
        return len({h.markings() for hs in self.chosen.values() for h in hs})


def calibrate(console: Console) -> Classes:
    """Decide every candidate class with the real policy on a scratch node, group the
    candidates by who may see them, and draw CLASSES_PER_AUDIENCE from each group."""
    producers = [producer(n) for n in range(PRODUCERS)]
    pool = candidates([NODE_IDENTITY, *(p["id"] for p in producers)])
    with tempfile.TemporaryDirectory(prefix="liaison-bench-classes-") as directory:
        node = make_node(Path(directory), f"sqlite:///{Path(directory) / 'liaison.db'}")
        try:
            setup_alliance(node)
            definitions = {d["id"]: d for h in pool if (d := h.definition()) is not None}
            probes = []
            for i, h in enumerate(pool):
                probe: dict[str, Any] = {
                    "type": "indicator",
                    "spec_version": "2.1",
                    "id": derived_id("indicator", f"bench-probe:{i}"),
                    "created": "2025-01-01T00:00:00.000Z",
                    "modified": "2025-01-01T00:00:00.000Z",
                    "created_by_ref": h.originator,
                }
                if h.markings():
                    probe["object_marking_refs"] = list(h.markings())
                probes.append(probe)
            with write_transaction(node.engine) as connection:
                added = add_objects(connection, [*definitions.values(), *producers, *probes])
                register_classes(connection, added.classes)
            with node.engine.connect() as connection:
                seen: dict[str, set[str]] = {}
                for class_id, partner, decision in connection.execute(
                    sa.select(grants.c.class_id, grants.c.partner, grants.c.decision)
                ):
                    seen.setdefault(class_id, set())
                    if decision != "withhold":
                        seen[class_id].add(partner)
        finally:
            node.engine.dispose()
    by_audience: dict[int, list[Handling]] = {audience: [] for audience in AUDIENCES}
    groups = {people: audience for audience, people in AUDIENCES.items()}
    for handling, probe in zip(pool, probes, strict=True):
        visible = frozenset(seen[class_key(probe, NODE_COUNTRY).id])
        if visible in groups:
            by_audience[groups[visible]].append(handling)
    rng = random.Random(SEED)
    chosen = {}
    for audience, wanted in CLASSES_PER_AUDIENCE.items():
        found = by_audience[audience]
        if not found:
            raise SystemExit(f"no release class is visible to exactly {AUDIENCES[audience]}")
        chosen[audience] = rng.sample(found, min(wanted, len(found)))
    classes = Classes(chosen, producers)
    console.print(
        f"release classes: {classes.count} drawn from {len(pool):,} candidates decided by "
        f"the policy ({', '.join(f'{len(h)} for {_people(a)}' for a, h in chosen.items())})",
        style="dim",
    )
    return classes


def _people(audience: int) -> str:
    return "+".join(sorted(AUDIENCES[audience])) or "nobody"


def submission(feed: Feed, rng: random.Random) -> bytes:
    """An envelope of POST_OBJECTS new indicators (TLP:AMBER, no created_by_ref: a
    partner's own), fresh ids every time."""
    items = feed.fresh_indicators(POST_OBJECTS, (TLP_AMBER,), rng)
    return json.dumps({"objects": items}, separators=(",", ":")).encode()


# --- stores and loading -----------------------------------------------------------------


@dataclass
class LiaisonStore:
    backend: str
    size: int
    node: Node
    credentials: dict[str, IssuedCredentials]
    seconds: float = 0.0
    loaded: int = 0
    visible: dict[str, int] = field(default_factory=dict)
    total: int = 0
    # Objects every partner sees besides the feed: the preamble and the node's identity.
    shared: int = 0

    def share(self, partner: str) -> str:
        """The share of the feed's objects (newest versions) ``partner`` may see."""
        seen = self.visible.get(partner, 0) - self.shared
        return f"{100 * seen / max(self.total - self.shared, 1):.1f}%"

    def load(self, batch: Sequence[dict[str, Any]]) -> None:
        start = time.perf_counter()
        with write_transaction(self.node.engine) as connection:
            added = add_objects(connection, batch)
            register_classes(connection, added.classes)
        self.seconds += time.perf_counter() - start
        refused = [o for o in added.outcomes if o != "added"]
        if refused:
            message = next(iter(added.messages.values()), "")
            raise SystemExit(f"{len(refused)} objects not added to the store: {message}")
        self.loaded += len(batch)


@dataclass
class PeerStore:
    backend: str
    size: int
    instance: opentaxii.Instance
    loader: opentaxii.Loader | None = None
    seconds: float = 0.0
    loaded: int = 0

    def load(self, batch: Sequence[dict[str, Any]]) -> None:
        assert self.loader is not None
        self.seconds += self.loader.send(batch)
        self.loaded += len(batch)


# Texts per task of a slot-finding process.
SLOT_CHUNK = 50


def default_slot_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "liaison-bench" / "slots.sqlite"


class SlotCache:
    """Slots found in earlier runs, under the store's own key (``text_key``: the finder's
    version and the text), so a new finder never reuses them. Finding the slots of the
    feed's texts is most of a large run's set-up (about 8 ms of CPU a text: 300,000 texts at
    1,000,000 objects); the feed is deterministic, so a later run reads them here."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # WAL and a long timeout: a --prepare-only run may be filling it beside this run.
        self._db = sqlite3.connect(path, timeout=600)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS slots (key TEXT PRIMARY KEY, slots TEXT)")
        self.hits = 0

    def get(self, keys: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for at in range(0, len(keys), 500):
            chunk = keys[at : at + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, slots FROM slots WHERE key IN ({marks})", chunk)
            found.update(rows)
        self.hits += len(found)
        return found

    def put(self, found: dict[str, str]) -> None:
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO slots VALUES (?, ?)", found.items())

    def close(self) -> None:
        self._db.close()


class SlotPreparer:
    """What ``liaison prepare`` leaves in a store after a bulk import (docs/cli.md: run it
    after importing while the server was stopped): the fingerprint slots of every text, kept
    in ``text_slots``. The slots of each distinct text of the feed are read from ``cache``
    or found once, in worker processes, while the stores load, and kept
    (``fingerprint.prepared.keep``) in every store whose prefix of the feed holds the text."""

    def __init__(
        self, stores: Sequence[LiaisonStore], workers: int, cache: SlotCache | None
    ) -> None:
        self.stores = stores
        self.cache = cache
        self.pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        )
        self.workers = workers
        self.first: dict[str, int] = {}  # text key -> index of the first object holding it
        self.pending: list[Future[dict[str, str]]] = []
        self.ready: dict[str, str] = {}  # read from the cache, not kept yet
        self.found = 0
        self.start = time.perf_counter()
        self.seconds = 0.0
        self.keeping = 0.0

    @property
    def texts(self) -> int:
        return len(self.first)

    def submit(self, batch: Sequence[dict[str, Any]], start: int) -> None:
        """The texts of ``batch`` (objects ``start`` on; the preamble: -1) not seen yet."""
        texts: dict[str, str] = {}
        for offset, obj in enumerate(batch):
            for text in object_texts(obj):
                key = text_key(text)
                if key not in self.first:
                    self.first[key] = start + offset if start >= 0 else -1
                    texts[key] = text
        if self.cache is not None:
            cached = self.cache.get(list(texts))
            self.ready.update(cached)
            texts = {k: t for k, t in texts.items() if k not in cached}
        missing = list(texts.values())
        for at in range(0, len(missing), SLOT_CHUNK):
            self.pending.append(self.pool.submit(found_slots, missing[at : at + SLOT_CHUNK]))

    def collect(self, wait: bool = False) -> None:
        """Keep the slots found so far (all of them when ``wait``)."""
        done = [f for f in self.pending if wait or f.done()]
        self.pending = [f for f in self.pending if f not in done]
        found: dict[str, str] = {}
        for future in done:
            found.update(future.result())
        self.found += len(found)
        if self.cache is not None and found:
            self.cache.put(found)
        found.update(self.ready)
        self.ready = {}
        if not found:
            return
        start = time.perf_counter()
        for store in self.stores:
            mine = {k: v for k, v in found.items() if self.first[k] < store.size}
            with write_transaction(store.node.engine) as connection:
                keep(connection, mine)
        self.keeping += time.perf_counter() - start

    def finish(self, progress: Progress, label: str) -> None:
        """Wait for the slots of every text submitted, keeping them as they come; close."""
        total = len(self.pending)
        task = progress.add_task(label, total=total)
        while self.pending:
            time.sleep(1)
            self.collect()
            progress.update(task, completed=total - len(self.pending))
        self.close()

    def close(self) -> None:
        self.collect(wait=True)
        self.pool.shutdown()
        if self.cache is not None:
            self.cache.close()
        self.seconds = time.perf_counter() - self.start

    def note(self) -> str:
        cached = self.texts - self.found
        where = f"{self.cache.path}" if self.cache is not None else ""
        return (
            f"fingerprint slots: {self.texts:,} distinct texts, each text's slots found once by "
            f"the store's finder (fingerprint.prepared) in {self.workers} processes beside the "
            f"load ({self.found:,} found in this run, {cached:,} read from the slot cache "
            f"{where}; {self.seconds:,.0f} s from the first text to the last kept) and kept in "
            f"every store holding the text ({self.keeping:,.0f} s): what `liaison prepare` "
            "leaves after a bulk import, so first deliveries read them (--no-prepare: found in "
            "the request)"
        )


def prepare_only(
    feed: Feed, preamble: Sequence[dict[str, Any]], size: int, cache: SlotCache, console: Console
) -> None:
    """Fill ``cache`` with the slots of the feed's first ``size`` objects; no store, nothing
    timed (``--prepare-only``: run it ahead, on a machine busy with other work)."""
    preparer = SlotPreparer([], os.cpu_count() or 2, cache)
    preparer.submit(preamble, -1)
    with Progress(*_COLUMNS, console=console) as progress:
        task = progress.add_task("generating", total=size)
        done = 0
        while done < size:
            batch = feed.take(min(LOAD_BATCH, size - done))
            preparer.submit(batch, done)
            done += len(batch)
            progress.update(task, completed=done)
            preparer.collect()
        preparer.finish(progress, "finding fingerprint slots")
    console.print(
        f"{preparer.texts:,} texts: {preparer.found:,} found in {preparer.seconds:,.0f} s, "
        f"{preparer.texts - preparer.found:,} already in {cache.path}"
    )


_COLUMNS = (
    TextColumn("{task.description}"),
    BarColumn(),
    MofNCompleteColumn(),
    TimeElapsedColumn(),
    TimeRemainingColumn(),
)


def load_all(
    feed: Feed,
    preamble: Sequence[dict[str, Any]],
    liaison: Sequence[LiaisonStore],
    peers: Sequence[PeerStore],
    console: Console,
    slots: SlotPreparer | None,
) -> float:
    """Every store filled with its prefix of the feed (the preamble first), the feed
    generated once, the texts' slots prepared beside (``slots``); the seconds generating
    took."""
    peer_preamble = [identity_object(NODE_COUNTRY, "Canadian node", "2025-01-01T00:00:00.000Z")]
    peer_preamble += preamble
    for store in liaison:
        store.load(preamble)
    for peer in peers:
        peer.load(peer_preamble)
    if slots is not None:
        slots.submit(preamble, -1)
    largest = max(s.size for s in [*liaison, *peers])
    generating = 0.0
    with Progress(*_COLUMNS, console=console) as progress:
        task = progress.add_task("generating and loading", total=largest)
        done = 0
        while done < largest:
            start = time.perf_counter()
            batch = feed.take(min(LOAD_BATCH, largest - done))
            generating += time.perf_counter() - start
            if slots is not None:
                slots.submit(batch, done)
            for target in [*liaison, *peers]:
                if target.size > done:
                    target.load(batch[: target.size - done])
            if slots is not None:
                slots.collect()
            done += len(batch)
            progress.update(task, completed=done)
        if slots is not None:
            slots.finish(progress, "preparing fingerprint slots")
    return generating


def wait_for_statistics(url: str, table: str, console: Console, timeout: float = 600) -> str:
    """Wait until PostgreSQL's statistics of ``table`` are current by its own autovacuum
    rule (changes since the last ANALYZE at most 50 + 10% of the rows), whoever ran it: the
    store itself or autovacuum. Nothing here runs ANALYZE. A note of what happened."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    query = sa.text(
        "SELECT n_live_tup, n_mod_since_analyze, last_analyze, last_autoanalyze "
        "FROM pg_stat_user_tables WHERE relname = :table"
    )
    start = time.monotonic()
    waited = False
    try:
        while True:
            with engine.connect() as connection:
                row = connection.execute(query, {"table": table}).first()
            if row is not None and row.n_mod_since_analyze <= 50 + 0.1 * row.n_live_tup:
                by = "autovacuum" if row.last_autoanalyze else "the store"
                if row.last_analyze and row.last_autoanalyze:
                    by = "the store, then autovacuum"
                return f"{table} analyzed by {by}"
            if time.monotonic() - start > timeout:
                return f"{table}: statistics not current after {timeout:.0f} s"
            if not waited:
                console.print(f"waiting for autovacuum to analyze {table}…", style="dim")
                waited = True
            time.sleep(5)
    finally:
        engine.dispose()


# --- servers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def liaison_command() -> list[str]:
    script = Path(sys.executable).parent / "liaison"
    if script.exists():
        return [str(script)]
    found = shutil.which("liaison")
    if found:
        return [found]
    return [sys.executable, "-c", "from liaison.cli import main; main()"]


class Process:
    """A server process on a loopback port, its log in ``log``, stopped by ``stop``."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path, cwd: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("ab")
        command = [part.replace("{port}", str(self.port)) for part in command]
        self.process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, path: str, ok: Sequence[int]) -> None:
        deadline = time.monotonic() + 180
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"a server exited at start: see {self.log.name}")
            try:
                if httpx.get(self.url + path, headers=ACCEPT, timeout=10).status_code in ok:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"a server did not start: see {self.log.name}")
            time.sleep(0.2)

    def stop(self) -> None:
        stop_server(self.process, self.log)


def serve_liaison(store: LiaisonStore, workdir: Path) -> Process:
    """``liaison serve`` on the store, as an operator runs it (one process)."""
    env = {
        **os.environ,
        "LIAISON_HOME": str(store.node.settings.home),
        "LIAISON_DATABASE_URL": store.node.settings.database_url,
    }
    command = [*liaison_command(), "serve", "--host", "127.0.0.1", "--port", "{port}"]
    log = workdir / f"liaison-{store.backend}-{store.size}.log"
    server = Process(command, env, log, workdir)
    server.wait_ready("/taxii2/", (401,))  # up: asks for credentials
    return server


FLOOR_COMMAND = (
    "import uvicorn; uvicorn.run('bench.taxii_pages:floor_app', factory=True, "
    "host='127.0.0.1', port={port}, workers=1, log_level='warning')"
)


def serve_floor(workdir: Path) -> Process:
    """The floor on uvicorn, run as ``liaison serve`` runs uvicorn (``uvicorn.run``, one
    process, the same host and log level)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env = {**os.environ, "PYTHONPATH": path}
    server = Process([sys.executable, "-c", FLOOR_COMMAND], env, workdir / "floor.log", workdir)
    server.wait_ready("/floor?bytes=10", (200,))
    return server


def floor_body(size: int) -> bytes:
    """A TAXII envelope of about ``size`` bytes, shaped like a page of reports."""
    item = {
        "type": "report",
        "spec_version": "2.1",
        "id": "report--00000000-0000-4000-8000-000000000000",
        "created": "2025-01-01T00:00:00.000Z",
        "modified": "2025-01-01T00:00:00.000Z",
        "name": "Floor",
        "description": "The floor answers with a body built once. " * 150,
        "report_types": ["threat-report"],
        "published": "2025-01-01T00:00:00.000Z",
        "object_refs": ["indicator--00000000-0000-4000-8000-000000000000"],
    }
    one = len(json.dumps(item, separators=(",", ":")))
    body: dict[str, Any] = {"more": True, "next": "0" * 40, "objects": []}
    body["objects"] = [item] * max(1, size // (one + 1))
    data = json.dumps(body, separators=(",", ":")).encode()
    if len(data) < size:
        last = item | {"description": item["description"] + "x" * (size - len(data))}
        body["objects"] = [*body["objects"][:-1], last]
        data = json.dumps(body, separators=(",", ":")).encode()
    return data


def floor_app() -> Starlette:
    """The floor: plain Starlette routes (no FastAPI), sync like Liaison's TAXII routes (run
    in the thread pool), returning a body built on its first request."""
    bodies: dict[int, bytes] = {}

    def body_of(request: Request) -> bytes:
        size = int(request.query_params.get("bytes", "1000"))
        if size not in bodies:
            bodies[size] = floor_body(size)
        return bodies[size]

    def get(request: Request) -> Response:
        return Response(body_of(request), media_type=TAXII)

    async def post(request: Request) -> Response:
        await request.body()
        return Response(body_of(request), status_code=202, media_type=TAXII)

    return Starlette(
        routes=[Route("/floor", get, methods=["GET"]), Route("/floor", post, methods=["POST"])]
    )


def tree_memory(pid: int) -> tuple[int, int]:
    """VmRSS and VmHWM (KiB) of a process and all its descendants, summed."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    rss = peak = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        pending.extend(children.get(current, []))
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
            elif line.startswith("VmHWM:"):
                peak += int(line.split()[1])
    return rss, peak


# --- what each side is asked --------------------------------------------------------------


@dataclass
class Plan:
    """The requests of one side (a partner on a Liaison store, or OpenTAXII) over its
    reports, in date_added order: which pages are repeated and which are first."""

    reports: int
    repeat: dict[str, Any]
    deep_start: dict[str, Any] | None
    deep_steps: int
    match_id: dict[str, Any] | None
    added_after: dict[str, Any] | None
    first: list[dict[str, Any]]
    notes: dict[str, str]


def plan(stamps: Sequence[str], ids: Sequence[str], count: int, rng: random.Random) -> Plan:
    """Windows of PAGE reports: the first is the repeat page; the last full ones are the
    path to the deep page; one in the middle is the added_after page; match[id] takes ids
    of those (all delivered before it is timed); first deliveries take up to ``count``
    of the windows left, spread over the feed, none of them ever delivered."""
    n = len(ids)
    full = n // PAGE
    base: dict[str, Any] = {"limit": PAGE, "match[type]": "report"}

    def window(k: int) -> dict[str, Any]:
        return base if k == 0 else base | {"added_after": stamps[k * PAGE - 1]}

    notes: dict[str, str] = {}
    delivered = list(range(min(n, PAGE)))
    deep_start, steps, free = None, 0, []
    if full >= 2:
        steps = min(DEEP_STEPS, max(1, full // 5))
        start = full - 1 - steps
        deep_start = window(start)
        delivered += range(start * PAGE, full * PAGE)
        where = "added_after, then " if start else ""
        notes[DEEP] = f"{(full - 1) * PAGE:,} reports before it: {where}{steps}× next"
        free = list(range(1, start))
    else:
        notes[DEEP] = f"{n:,} reports: no second full page"
    added_after = None
    if free:
        middle = free.pop(len(free) // 2)
        added_after = window(middle)
        delivered += range(middle * PAGE, (middle + 1) * PAGE)
        notes[ADDED_AFTER] = f"{middle * PAGE:,} reports before it"
    elif n >= 2:
        added_after = base | {"added_after": stamps[n // 2 - 1]}
        delivered += range(n // 2, min(n, n // 2 + PAGE))
        notes[ADDED_AFTER] = f"{n // 2:,} reports before it"
    match_id = None
    if delivered:
        picked = sorted(rng.sample(sorted(set(delivered)), min(MATCH_IDS, len(set(delivered)))))
        match_id = {"limit": PAGE, "match[id]": ",".join(ids[i] for i in picked)}
    first: list[dict[str, Any]] = []
    if free and count:
        chosen = sorted(
            {free[round(i * (len(free) - 1) / max(count - 1, 1))] for i in range(count)}
        )
        first = [window(k) for k in chosen]
        if len(first) < count:
            notes[FIRST] = f"only {len(free)} pages of {PAGE} reports no other request read"
    else:
        notes[FIRST] = f"{n:,} reports: no page of {PAGE} never delivered"
    return Plan(n, base, deep_start, steps, match_id, added_after, first, notes)


def liaison_reports(store: LiaisonStore, partner: str) -> tuple[list[str], list[str]]:
    """The reports ``partner`` may see (newest versions), in date_added order: the
    added_after stamps and the ids."""
    query = (
        sa.select(objects.c.date_added, objects.c.id)
        .join(
            grants,
            sa.and_(grants.c.class_id == objects.c.release_class, grants.c.partner == partner),
        )
        .where(
            grants.c.decision != "withhold",
            objects.c.latest.is_(True),
            objects.c.type == "report",
        )
        .order_by(objects.c.date_added)
    )
    with store.node.engine.connect() as connection:
        rows = connection.execute(query).all()
    return [from_micros(added) for added, _ in rows], [oid for _, oid in rows]


def follow_next(
    client: httpx.Client, path: str, start: dict[str, Any], steps: int
) -> dict[str, Any]:
    """The parameters of the page ``steps`` `next` links after ``start`` (delivering the
    pages on the way)."""
    params = start
    for _ in range(steps):
        response = client.get(path, params=params)
        if response.status_code != 200:
            raise Failed(f"GET {path}: {response.status_code} {response.text[:200]}")
        token = response.json().get("next")
        if not token:
            raise Failed(f"GET {path}: no next link after a full page")
        params = start | {"next": token}
    return params


# --- measuring ----------------------------------------------------------------------------


class Failed(Exception):
    """A request answered with an unexpected status."""


@dataclass(frozen=True)
class Sample:
    seconds: float
    size: int  # response bytes
    items: int | None  # objects in the page, or successes of a POST


def get(client: httpx.Client, path: str, params: dict[str, Any] | None) -> Sample:
    start = time.perf_counter()
    response = client.get(path, params=params)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise Failed(f"GET {path}: {response.status_code} {response.text[:200]}")
    items = len(response.json().get("objects", [])) if response.content else 0
    return Sample(elapsed, len(response.content), items)


def post(client: httpx.Client, path: str, status_path: Callable[[str], str], body: bytes) -> Sample:
    """A POST, then its status polled until complete: the seconds from sending to seeing
    it complete."""
    start = time.perf_counter()
    response = client.post(path, content=body, headers=TAXII_CONTENT)
    if response.status_code != 202:
        raise Failed(f"POST {path}: {response.status_code} {response.text[:200]}")
    size = len(response.content)
    status = response.json()
    while True:
        polled = client.get(status_path(status["id"]))
        if polled.status_code != 200:
            raise Failed(f"GET status: {polled.status_code} {polled.text[:200]}")
        status = polled.json()
        if status.get("status") == "complete":
            break
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    if status.get("success_count") != POST_OBJECTS:
        raise Failed(f"POST {path}: {status.get('success_count')} of {POST_OBJECTS} succeeded")
    return Sample(elapsed, size, status["success_count"])


@dataclass
class Target:
    """One side's request of a kind: ``call(round)`` times it (None: nothing to ask this
    round); ``warm`` is called before the rounds."""

    call: Callable[[int], Sample | None]
    warmups: int = WARMUPS


@dataclass
class Measured:
    samples: list[float] = field(default_factory=list)
    size: int = 0
    items: int | None = None
    failure: str = ""

    @property
    def latency(self) -> Latency | None:
        return Latency(tuple(self.samples)) if self.samples else None


Key = tuple[str, int, str]  # (side, size, partner)
FLOOR_KEY: Key = (FLOOR, 0, "")


def interleaved(
    targets: dict[Key, Target],
    rounds: int,
    floor: Callable[[dict[Key, Measured]], Target],
    console: Console,
    label: str,
) -> dict[Key, Measured]:
    """Each target's samples over ``rounds`` rounds; every round asks each target once, in
    an order rotated every round, after each target's warm-ups. The floor's target is made
    by ``floor`` once the others are warm (its body is sized on their answers)."""
    results = {key: Measured() for key in [*targets, FLOOR_KEY]}
    dead: set[Key] = set()

    def attempt(key: Key, round_number: int, keep: bool) -> None:
        try:
            sample = targets[key].call(round_number)
        except httpx.TimeoutException:
            results[key].failure = f"> {TIMEOUT:.0f} s: request cut at the cap"
            dead.add(key)
            return
        except (Failed, httpx.TransportError) as exc:
            results[key].failure = f"failed: {exc}"[:160]
            console.print(escape(f"{label} {key}: {exc}"), style="red")
            dead.add(key)
            return
        if sample is None:
            return
        results[key].size = max(results[key].size, sample.size)
        results[key].items = sample.items
        if keep:
            results[key].samples.append(sample.seconds)

    def warm(key: Key) -> None:
        for _ in range(targets[key].warmups):
            if key not in dead:
                attempt(key, -1, keep=False)

    for key in list(targets):
        warm(key)
    targets[FLOOR_KEY] = floor(results)
    warm(FLOOR_KEY)
    keys = list(targets)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    quiet = not console.is_terminal
    with Progress(
        *columns, TimeElapsedColumn(), console=console, transient=True, disable=quiet
    ) as progress:
        task = progress.add_task(label, total=rounds)
        for round_number in range(rounds):
            shift = round_number % len(keys)
            for key in keys[shift:] + keys[:shift]:
                if key not in dead:
                    attempt(key, round_number, keep=True)
            progress.advance(task)
    return results


# --- one backend ----------------------------------------------------------------------------


@dataclass
class Row:
    backend: str
    kind: str
    side: str
    size: int
    partner: str
    share: str
    measured: Measured
    note: str = ""

    @property
    def latency(self) -> Latency | None:
        return self.measured.latency


@dataclass
class MemoryRow:
    backend: str
    side: str
    size: int
    rss: int  # KiB, the most sampled
    peak: int  # KiB, the processes' VmHWM summed


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    memory: list[MemoryRow] = field(default_factory=list)
    loads: list[tuple[str, str, int, float, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def measure_backend(
    backend: str,
    stores: Sequence[LiaisonStore],
    peers: Sequence[PeerStore],
    feed: Feed,
    args: argparse.Namespace,
    workdir: Path,
    console: Console,
    results: Results,
) -> None:
    name = BACKEND_NAMES[backend]
    rng = random.Random(SEED)
    with ExitStack() as stack:
        console.print(
            f"{name}: starting {len(stores)} Liaison, {len(peers)} OpenTAXII and the floor…",
            style="dim",
        )
        floor_server = serve_floor(workdir)
        stack.callback(floor_server.stop)
        floor_client = stack.enter_context(
            httpx.Client(base_url=floor_server.url, headers=ACCEPT, timeout=args.timeout)
        )
        servers: dict[Key, Process | opentaxii.Server] = {FLOOR_KEY: floor_server}
        clients: dict[Key, httpx.Client] = {}
        plans: dict[Key, Plan] = {}
        for store in stores:
            server = serve_liaison(store, workdir)
            stack.callback(server.stop)
            servers[(LIAISON, store.size, "")] = server
            for code, issued in store.credentials.items():
                key = (LIAISON, store.size, code)
                clients[key] = stack.enter_context(
                    httpx.Client(
                        base_url=server.url,
                        auth=(issued.username, issued.password),
                        headers=ACCEPT,
                        timeout=args.timeout,
                    )
                )
                stamps, ids = liaison_reports(store, code)
                plans[key] = plan(stamps, ids, args.requests, rng)
        for peer in peers:
            server = opentaxii.Server(peer.instance, timeout=args.timeout)
            stack.callback(server.stop)
            key = (PEER, peer.size, "")
            servers[key] = server
            clients[key] = stack.enter_context(server.client(args.timeout))
            stamps, ids = opentaxii.stored_reports(peer.instance.data_url)
            plans[key] = plan(stamps, ids, args.requests, rng)
        paths = {key: _paths(key, peers) for key in clients}
        peak: dict[Key, tuple[int, int]] = {}

        def sample_memory() -> None:
            for key, server in servers.items():
                rss, hwm = tree_memory(server.pid)
                old = peak.get(key, (0, 0))
                peak[key] = (max(old[0], rss), max(old[1], hwm))

        # The path to each deep page is walked once (those pages are delivered on the way).
        deep: dict[Key, dict[str, Any]] = {}
        for key, p in plans.items():
            if p.deep_start is not None:
                try:
                    deep[key] = follow_next(clients[key], paths[key][0], p.deep_start, p.deep_steps)
                except (Failed, httpx.HTTPError) as exc:
                    p.notes[DEEP] = f"failed on the way: {exc}"[:160]
        # Seeded apart from the feed's generator, so no id of a POST is already stored.
        bodies = [
            submission(feed, random.Random(f"bench.taxii_pages POST {r}"))
            for r in range(args.posts + 1)
        ]
        page_size = 0
        for kind in MEASURED:
            console.print(escape(f"{name}: {kind}…"), style="dim")
            targets: dict[Key, Target] = {}
            for key, client in clients.items():
                target = _target(kind, key, client, plans[key], deep.get(key), paths[key], bodies)
                if target is not None:
                    targets[key] = target

            def floor(
                warm: dict[Key, Measured], kind: str = kind, page_size: int = page_size
            ) -> Target:
                # A body the size of Liaison's largest answer of this kind (first deliveries
                # have no warm-up: the size of the added_after pages, the same shape).
                seen = max((m.size for k, m in warm.items() if k[0] == LIAISON), default=0)
                size = seen or page_size or 100_000
                path = f"/floor?bytes={size}"
                if kind == POST:
                    return Target(lambda r: _floor_post(floor_client, path, bodies[r + 1]), 1)
                return Target(lambda _r: get(floor_client, path, None))

            rounds = args.posts if kind == POST else args.requests
            measured = interleaved(targets, rounds, floor, console, f"{name}: {kind}")
            sample_memory()
            if kind == ADDED_AFTER:
                page_size = measured[FLOOR_KEY].size
            for key in [*plans, FLOOR_KEY]:
                side, size, partner = key
                if kind == POST and side == LIAISON and partner != "USA":
                    continue
                m = measured.get(key, Measured())
                share = ""
                note = m.failure
                if side == LIAISON:
                    share = next(s for s in stores if s.size == size).share(partner)
                elif side == PEER:
                    share = "all (no policy)"
                if side != FLOOR and not note:
                    note = plans[key].notes.get(kind, "")
                    if key not in targets:
                        note = note or "not measured"
                results.rows.append(Row(name, kind, side, size, partner, share, m, note))
        for (side, size, _), (rss, hwm) in peak.items():
            results.memory.append(MemoryRow(name, side, size, rss, hwm))


def _paths(key: Key, peers: Sequence[PeerStore]) -> tuple[str, str, str, Callable[[str], str]]:
    """(objects, manifest, POST, status) paths of a side."""
    side, size, _ = key
    if side == LIAISON:
        return (
            READ_PATH + "objects/",
            READ_PATH + "manifest/",
            POST_PATH,
            lambda status: f"/api/status/{status}/",
        )
    instance = next(p for p in peers if p.size == size).instance
    return (
        instance.objects_path,
        instance.manifest_path,
        instance.objects_path,
        instance.status_path,
    )


def _target(
    kind: str,
    key: Key,
    client: httpx.Client,
    p: Plan,
    deep: dict[str, Any] | None,
    paths: tuple[str, str, str, Callable[[str], str]],
    bodies: Sequence[bytes],
) -> Target | None:
    objects_path, manifest_path, post_path, status_path = paths

    def fixed(path: str, params: dict[str, Any] | None) -> Target | None:
        if params is None:
            return None
        return Target(lambda _r: get(client, path, params))

    if kind == REPEAT:
        return fixed(objects_path, p.repeat)
    if kind == MANIFEST:
        return fixed(manifest_path, p.repeat)
    if kind == DEEP:
        return fixed(objects_path, deep)
    if kind == MATCH_ID:
        return fixed(objects_path, p.match_id)
    if kind == ADDED_AFTER:
        return fixed(objects_path, p.added_after)
    if kind == FIRST:
        if not p.first:
            return None
        windows = p.first
        return Target(
            lambda r: get(client, objects_path, windows[r]) if 0 <= r < len(windows) else None,
            warmups=0,
        )
    if key[0] == LIAISON and key[2] != "USA":
        return None  # one partner POSTs: the write does not depend on who sends it
    # Warm-ups send bodies[0], round r bodies[r + 1]: a new envelope every time.
    return Target(lambda r: post(client, post_path, status_path, bodies[r + 1]), warmups=1)


def _floor_post(client: httpx.Client, path: str, body: bytes) -> Sample:
    start = time.perf_counter()
    response = client.post(path, content=body, headers=TAXII_CONTENT)
    elapsed = time.perf_counter() - start
    if response.status_code != 202:
        raise Failed(f"POST {path}: {response.status_code}")
    return Sample(elapsed, len(response.content), None)


# --- the report -----------------------------------------------------------------------------


def _kib(size: int) -> str:
    kib = size / 1024
    return f"{kib:,.0f}" if kib >= 10 else f"{kib:.1f}"


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}"


def _find(
    rows: Sequence[Row], backend: str, kind: str, side: str, size: int, partner: str
) -> Row | None:
    return next(
        (
            r
            for r in rows
            if (r.backend, r.kind, r.side, r.size, r.partner)
            == (backend, kind, side, size, partner)
        ),
        None,
    )


def _floor(rows: Sequence[Row], backend: str, kind: str) -> Latency | None:
    found = _find(rows, backend, kind, FLOOR, 0, "")
    return found.latency if found else None


def _server(row: Row) -> str:
    if row.side == FLOOR:
        return "floor (Starlette)"
    if row.side == PEER:
        return "OpenTAXII"
    return f"Liaison {row.partner}"


def render(results: Results, backend: str, sizes: Sequence[int]) -> Table:
    rows = [r for r in results.rows if r.backend == backend]
    table = Table(title=f"TAXII requests on {backend}: pages of up to {PAGE} reports")
    for heading, justify in (
        ("request", "left"),
        ("server", "left"),
        ("objects", "right"),
        ("sees", "right"),
        ("items", "right"),
        ("KiB", "right"),
        ("n", "right"),
        ("p50 ms", "right"),
        ("p95 ms", "right"),
        ("× floor", "right"),
        ("OpenTAXII ÷ Liaison", "right"),
        (f"× at {min(sizes):,}", "right"),
        ("note", "left"),
    ):
        table.add_column(heading, justify=justify)  # type: ignore[arg-type]
    smallest = min(sizes)
    for kind in SHOWN:
        floor = _floor(rows, backend, kind)
        ordered = [r for r in rows if r.kind == kind and r.side == FLOOR]
        for size in sizes:
            for partner in PARTNERS:
                found = _find(rows, backend, kind, LIAISON, size, partner)
                if found is not None:
                    ordered.append(found)
            found = _find(rows, backend, kind, PEER, size, "")
            if found is not None:
                ordered.append(found)
        for number, row in enumerate(ordered):
            latency = row.latency
            cells = [
                escape(kind) if number == 0 else "",
                _server(row),
                f"{row.size:,}" if row.size else "",
                row.share,
                f"{row.measured.items:,}"
                if row.measured.items is not None and row.side != FLOOR
                else "",
                _kib(row.measured.size) if row.measured.size else "",
            ]
            if latency is None:
                table.add_row(*cells, "0", "—", "—", "", "", "", escape(row.note))
                continue
            over_floor = ratio(latency.p50 / floor.p50) if floor and row.side != FLOOR else ""
            versus = ""
            if row.side == LIAISON:
                peer = _find(rows, backend, kind, PEER, row.size, "")
                if peer is not None and peer.latency is not None:
                    versus = ratio(peer.latency.p50 / latency.p50)
                elif peer is not None and peer.measured.failure.startswith(">"):
                    versus = f"> {ratio(TIMEOUT / latency.p50)}"
            growth = ""
            if row.side != FLOOR and row.size != smallest:
                base = _find(rows, backend, kind, row.side, smallest, row.partner)
                if base is not None and base.latency is not None:
                    growth = ratio(latency.p50 / base.latency.p50)
            table.add_row(
                *cells,
                str(len(latency.samples)),
                _ms(latency.p50),
                _ms(latency.p95),
                over_floor,
                versus,
                growth,
                escape(row.note),
                end_section=number == len(ordered) - 1,
            )
    return table


def render_memory(results: Results) -> Table:
    table = Table(title="Server memory (the server process and its children)")
    for heading in ("backend", "server", "objects", "RSS MiB", "peak MiB", "Liaison ÷ OpenTAXII"):
        table.add_column(heading, justify="left" if heading in ("backend", "server") else "right")
    for row in results.memory:
        if row.side == FLOOR:
            continue
        versus = ""
        if row.side == LIAISON:
            peer = next(
                (
                    m
                    for m in results.memory
                    if (m.backend, m.side, m.size) == (row.backend, PEER, row.size)
                ),
                None,
            )
            if peer is not None and peer.rss:
                versus = ratio(row.rss / peer.rss)
        name = (
            "Liaison (liaison serve)" if row.side == LIAISON else "OpenTAXII (gunicorn, 1 worker)"
        )
        table.add_row(
            row.backend,
            name,
            f"{row.size:,}",
            f"{row.rss / 1024:,.0f}",
            f"{row.peak / 1024:,.0f}",
            versus,
        )
    table.caption = (
        "RSS: the largest sum of VmRSS over the server's process tree, sampled after each "
        "request kind; peak: the sum of each process's VmHWM at the end (an upper bound: the "
        "processes need not peak together). Liaison's tree: `liaison serve` and, after the "
        "first POST, its validator process; OpenTAXII's: gunicorn's master and its worker."
    )
    return table


def render_loads(results: Results) -> Table:
    table = Table(
        title="Loading (the preamble, then the feed, in transactions of 20,000; objects: "
        "the feed's and the preamble's)"
    )
    for heading in ("backend", "store", "objects", "seconds", "objects/s", "statistics"):
        table.add_column(
            heading, justify="right" if heading in ("objects", "seconds", "objects/s") else "left"
        )
    for backend, side, size, seconds, note in results.loads:
        table.add_row(backend, side, f"{size:,}", f"{seconds:,.1f}", f"{size / seconds:,.0f}", note)
    return table


@dataclass(frozen=True)
class Goal:
    label: str
    backend: str
    worst: str
    met: bool | None


def goals(results: Results, sizes: Sequence[int]) -> list[Goal]:
    rows = results.rows
    smallest, largest = min(sizes), max(sizes)
    found: list[Goal] = []
    for backend in dict.fromkeys(r.backend for r in rows):
        mine = [r for r in rows if r.backend == backend and r.side == LIAISON and r.latency]

        def worst(
            values: list[tuple[float, str]], limit: float, above: bool = False
        ) -> tuple[str, bool | None]:
            if not values:
                return "not measured", None
            value, what = (min if above else max)(values)
            return f"{ratio(value)} ({what})", (value >= limit if above else value <= limit)

        repeat = [
            (r.latency.p50 / f.p50, f"{r.partner} at {r.size:,}")
            for r in mine
            if r.kind == REPEAT and r.latency and (f := _floor(rows, backend, REPEAT))
        ]
        found.append(
            Goal(
                f"repeat page p50 ≤ {REPEAT_FLOOR_GOAL:.0f}× floor",
                backend,
                *worst(repeat, REPEAT_FLOOR_GOAL),
            )
        )
        if backend == BACKEND_NAMES["sqlite"]:
            first = [
                (r.latency.p50 / f.p50, f"{r.partner} at {r.size:,}")
                for r in mine
                if r.kind == FIRST
                and r.size == largest
                and r.latency
                and (f := _floor(rows, backend, FIRST))
            ]
            where = f"at {largest:,}" + (
                "" if largest == FIRST_GOAL_SIZE else f" (the goal says {FIRST_GOAL_SIZE:,})"
            )
            found.append(
                Goal(
                    f"first delivery p50 ≤ {FIRST_FLOOR_GOAL:.0f}× floor {where}",
                    backend,
                    *worst(first, FIRST_FLOOR_GOAL),
                )
            )
        growth = []
        if largest != smallest:
            for r in mine:
                if r.kind in READS and r.size == largest and r.latency:
                    base = _find(rows, backend, r.kind, LIAISON, smallest, r.partner)
                    if base is not None and base.latency is not None:
                        growth.append((r.latency.p50 / base.latency.p50, f"{r.kind}, {r.partner}"))
        if largest == smallest:
            label = f"every read: p50 at the largest size ≤ {GROWTH_GOAL}× at the smallest"
            found.append(Goal(label, backend, "one size measured", None))
        else:
            label = f"every read: p50 at {largest:,} ≤ {GROWTH_GOAL}× at {smallest:,}"
            found.append(Goal(label, backend, *worst(growth, GROWTH_GOAL)))
        faster = []
        for r in mine:
            if r.kind in READS and r.size >= PEER_GOAL_SIZE and r.latency:
                peer = _find(rows, backend, r.kind, PEER, r.size, "")
                if peer is not None and peer.latency is not None:
                    faster.append(
                        (peer.latency.p50 / r.latency.p50, f"{r.kind}, {r.partner} at {r.size:,}")
                    )
        found.append(
            Goal(
                f"every read ≥ {PEER_GOAL}× faster than OpenTAXII at ≥ {PEER_GOAL_SIZE:,}",
                backend,
                *worst(faster, PEER_GOAL, above=True),
            )
        )
        posts = []
        for r in mine:
            if r.kind == POST and r.latency:
                peer = _find(rows, backend, POST, PEER, r.size, "")
                if peer is not None and peer.latency is not None:
                    posts.append((r.latency.p50 / peer.latency.p50, f"at {r.size:,}"))
        found.append(
            Goal(f"POST of 1,000 p50 ≤ {POST_GOAL}× OpenTAXII's", backend, *worst(posts, POST_GOAL))
        )
        memory = []
        for m in results.memory:
            if m.backend == backend and m.side == LIAISON:
                peer = next(
                    (
                        p
                        for p in results.memory
                        if (p.backend, p.side, p.size) == (backend, PEER, m.size)
                    ),
                    None,
                )
                if peer is not None and peer.rss:
                    memory.append((m.rss / peer.rss, f"at {m.size:,}"))
        found.append(Goal("RSS ≤ OpenTAXII's", backend, *worst(memory, 1.0)))
    return found


def render_goals(results: Results, sizes: Sequence[int]) -> Table:
    table = Table(title="Goals of the issue (printed beside the numbers, never asserted)")
    for heading in ("goal", "backend", "worst (where)", "result"):
        table.add_column(heading)
    for goal in goals(results, sizes):
        result = "not measured" if goal.met is None else verdict(goal.met)
        table.add_row(escape(goal.label), goal.backend, escape(goal.worst), result)
    table.caption = (
        "Ratios of p50s measured in the same rounds. 'Faster than OpenTAXII' is OpenTAXII's "
        "p50 over Liaison's (the smallest counts); every other ratio is Liaison's over the "
        "other (the largest counts)."
    )
    return table


def caption(results: Results, args: argparse.Namespace, classes: Classes) -> list[str]:
    return [
        f"p50/p95 of {args.requests} rounds per read ({args.posts} POSTs) after {WARMUPS} "
        "warm-ups (1 for POSTs, none for first deliveries); each round asks every side once, "
        "in an order rotated every round (Liaison at each size, OpenTAXII at each size, the "
        "floor); one client on the same host, one request at a time, loopback HTTP.",
        f"objects: versions of one generated feed ({classes.count} release classes, "
        f"{classes.markings()} distinct marking combinations), plus "
        f"{len(classes.preamble())} marking definitions and producers first; sees: the "
        "share of the feed's objects (newest versions) the partner may see, counted by the "
        "store (the definitions, the producers and the node's identity, which every partner "
        "sees, left out). Every read asks for reports only (match[type]=report), up to 100 "
        "a page.",
        "reports: 300-1,500 words of generated threat-report prose, about 55 fingerprint "
        "slots per 1,000 words (the seed reports have 54).",
        "first delivery: each sample a page of 100 reports the partner was never sent "
        "(added_after windows spread over the feed): tearline, reference cuts, the partner's "
        "fingerprint written into the text (its slots read from the store, or found in the "
        "request with --no-prepare), disclosures and ledger entries written. Every other read "
        "is a repeat delivery (already recorded: nothing written), timed after warm-ups, so "
        "whatever the server caches of recent copies is warm.",
        "repeat page: the first page again; deep page: a page near the end of the feed "
        f"reached by following next (up to {DEEP_STEPS} times) from an added_after, that "
        f"same URL timed; manifest: the first manifest page; match[id]: {MATCH_IDS} ids of "
        "reports spread over the feed; added_after: a page from the middle of the feed.",
        "POST: 1,000 new indicators (TLP:AMBER) from USA to a write collection (OpenTAXII: to "
        "its collection), timed from sending to a GET of its status answering complete "
        "(both servers import synchronously: one status GET each); Liaison validates with "
        "stix2-validator in a process of its own, OpenTAXII parses with stix2.",
        "floor: a sync Starlette route (no FastAPI) returning a pre-built body the size of "
        "Liaison's largest answer of that request, on uvicorn started as `liaison serve` "
        "starts it (one process), on the same host in the same rounds.",
        "OpenTAXII: gunicorn, one sync worker, as its docs run it; it closes the connection "
        "after every answer (one TCP connection a request, included); JWT bearer tokens "
        "(its primary sign-in); it applies no release policy, no tearline, no fingerprints "
        "and records no disclosures: every reader gets every object, so its pages are a "
        "plain indexed read. Liaison: HTTP Basic, each secret remembered 5 minutes per "
        "process, so a partner's request every 5 minutes pays one Argon2 check (included).",
        "Not covered: concurrent clients, several workers, TLS, a cold disk cache (the "
        "stores are read from the page cache after loading), revoked or rotated credentials, "
        "leak investigation.",
        "medallion (the OASIS reference server) is no longer timed: with its memory backend "
        "it took seconds per page at 10,000 objects in earlier runs of this benchmark.",
        *results.notes,
    ]


# --- command line -----------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.taxii_pages", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--objects",
        type=sizes,
        default=None,
        help=f"store sizes, comma-separated (default {','.join(map(str, DEFAULT_SIZES))})",
    )
    parser.add_argument("--backends", type=backends, default=BACKENDS, help="default: both")
    parser.add_argument(
        "--requests",
        type=positive,
        default=None,
        help=f"timed rounds per read (default {DEFAULT_REQUESTS})",
    )
    parser.add_argument(
        "--posts", type=positive, default=None, help=f"timed POSTs (default {DEFAULT_POSTS})"
    )
    parser.add_argument(
        "--opentaxii-source",
        default=opentaxii.DEFAULT_SOURCE,
        help="OpenTAXII to install: a source tree or anything pip takes (default: its GitHub "
        "master at 1506bb7)",
    )
    parser.add_argument(
        "--opentaxii-venv",
        type=Path,
        default=None,
        help="a directory for OpenTAXII's virtual environment, kept and reused (default: a "
        "temporary one)",
    )
    parser.add_argument(
        "--no-opentaxii", action="store_true", help="time Liaison and the floor only"
    )
    parser.add_argument(
        "--no-prepare",
        action="store_true",
        help="leave the texts' fingerprint slots unprepared (what `liaison prepare` does after "
        "a bulk import): first deliveries then find them in the request",
    )
    parser.add_argument(
        "--slot-cache",
        type=Path,
        default=default_slot_cache(),
        help="where the slots found are kept for the next run (default: %(default)s)",
    )
    parser.add_argument(
        "--no-slot-cache", action="store_true", help="find every text's slots in this run"
    )
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="only fill the slot cache for the largest size (nothing timed, no store)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT,
        help=f"seconds any one request may take (default {TIMEOUT:.0f})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"sizes {','.join(map(str, QUICK_SIZES))}, {QUICK_REQUESTS} rounds, "
        f"{QUICK_POSTS} POSTs",
    )
    args = parser.parse_args(argv)
    if args.objects is None:
        args.objects = QUICK_SIZES if args.quick else DEFAULT_SIZES
    if not args.objects:
        parser.error("--objects needs at least one size")
    if args.requests is None:
        args.requests = QUICK_REQUESTS if args.quick else DEFAULT_REQUESTS
    if args.posts is None:
        args.posts = QUICK_POSTS if args.quick else DEFAULT_POSTS
    return args


def install_peer(
    args: argparse.Namespace, workdir: Path, console: Console, results: Results
) -> Path | None:
    directory = args.opentaxii_venv or workdir / "opentaxii-venv"
    console.print(f"OpenTAXII: installing {args.opentaxii_source} into {directory}…", style="dim")
    start = time.perf_counter()
    try:
        bin_dir = opentaxii.install(directory, args.opentaxii_source)
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or "").strip().splitlines()[-1:] or [str(exc)]
        results.notes.append(f"OpenTAXII not measured: its install failed: {detail[0]}")
        return None
    version = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "from opentaxii._version import __version__ as v; print(v)",
        ],
        capture_output=True,
        text=True,
    ).stdout.strip()
    results.notes.append(
        f"OpenTAXII {version} from {args.opentaxii_source} with "
        f"{', '.join(opentaxii.COMPANIONS)}, in a virtual environment of its own (ready in "
        f"{time.perf_counter() - start:.0f} s); loaded by inserts into its own table through "
        "its SQLAlchemy model, row for row what its add_objects writes (bench/opentaxii.py)."
    )
    return bin_dir


@contextmanager
def peer_stores(
    backend: str, bin_dir: Path, store_sizes: Sequence[int], admin_url: str | None, workdir: Path
) -> Iterator[list[PeerStore]]:
    """An OpenTAXII per size on ``backend``: SQLite files (data and accounts apart, as its
    example configuration has them), or a new PostgreSQL database each."""
    with ExitStack() as stack:
        peers = []
        for size in store_sizes:
            directory = workdir / f"opentaxii-{backend}-{size}"
            if backend == "sqlite":
                data, auth = (
                    f"sqlite:///{directory / 'data.db'}",
                    f"sqlite:///{directory / 'auth.db'}",
                )
            else:
                assert admin_url is not None
                data = auth = stack.enter_context(fresh_database(admin_url))
            instance = opentaxii.configure(bin_dir, directory, data, auth)
            peers.append(PeerStore(backend, size, instance, opentaxii.Loader(instance)))
        yield peers


def sqlite_statistics(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            found = connection.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
            ).scalar_one()
    finally:
        engine.dispose()
    return "analyzed" if found else "never analyzed (no sqlite_stat1)"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = wide_console(220)
    machine = Machine()
    results = Results()
    classes = calibrate(console)
    if args.prepare_only:
        feed = Feed(classes.label_of, [p["id"] for p in classes.producers], seed=SEED)
        cache = SlotCache(args.slot_cache)
        prepare_only(feed, classes.preamble(), max(args.objects), cache, console)
        return
    workdir = Path(tempfile.mkdtemp(prefix="liaison-bench-pages-"))
    try:
        with ExitStack() as stack:
            bin_dir = None if args.no_opentaxii else install_peer(args, workdir, console, results)
            admin_url = None
            if "postgresql" in args.backends:
                admin_url = stack.enter_context(postgres_server())
            stores: dict[str, list[LiaisonStore]] = {}
            peers: dict[str, list[PeerStore]] = {}
            for backend in args.backends:
                nodes = stack.enter_context(
                    node_stores(backend, len(args.objects), "liaison-bench-pages-", admin_url)
                )
                stores[backend] = [
                    LiaisonStore(backend, size, node, setup_alliance(node))
                    for size, node in zip(args.objects, nodes, strict=True)
                ]
                peers[backend] = []
                if bin_dir is not None:
                    peers[backend] = stack.enter_context(
                        peer_stores(backend, bin_dir, args.objects, admin_url, workdir)
                    )
            feed = Feed(classes.label_of, [p["id"] for p in classes.producers], seed=SEED)
            every_store = [s for group in stores.values() for s in group]
            every_peer = [p for group in peers.values() for p in group]
            console.print(
                f"loading {max(args.objects):,} objects into {len(every_store)} Liaison and "
                f"{len(every_peer)} OpenTAXII stores…",
                style="dim",
            )
            slots = None
            if not args.no_prepare and every_store:
                cache = None if args.no_slot_cache else SlotCache(args.slot_cache)
                slots = SlotPreparer(every_store, os.cpu_count() or 2, cache)
            generating = load_all(feed, classes.preamble(), every_store, every_peer, console, slots)
            if slots is not None:
                results.notes.append(slots.note())
            else:
                results.notes.append(
                    "fingerprint slots not prepared (--no-prepare): first deliveries find them "
                    "in the request, as after a bulk import without `liaison prepare`"
                )
            results.notes.append(
                f"generating the feed's {max(args.objects):,} objects took {generating:.0f} s "
                "(not in the loading times)"
            )
            for peer in every_peer:
                assert peer.loader is not None
                peer.loader.close()
            for store in every_store:
                # The preamble and the node's identity: released to every partner.
                store.shared = len(classes.preamble()) + 1
                with store.node.engine.connect() as connection:
                    counts = visibility_counts(connection)
                for code in PARTNERS:
                    c = counts.get(code, {})
                    store.visible[code] = c.get("release", 0) + c.get("release-with-cuts", 0)
                    store.total = max(store.total, sum(c.values()))
                url = store.node.settings.database_url
                if store.backend == "sqlite":
                    note = sqlite_statistics(url)
                else:
                    note = wait_for_statistics(url, "objects", console)
                results.loads.append(
                    (BACKEND_NAMES[store.backend], "Liaison", store.loaded, store.seconds, note)
                )
            for peer in every_peer:
                url = peer.instance.data_url
                if peer.backend == "sqlite":
                    note = sqlite_statistics(url)
                else:
                    note = wait_for_statistics(url, "opentaxii_stixobject", console)
                results.loads.append(
                    (BACKEND_NAMES[peer.backend], "OpenTAXII", peer.loaded, peer.seconds, note)
                )
            for backend in args.backends:
                measure_backend(
                    backend, stores[backend], peers[backend], feed, args, workdir, console, results
                )
    except BaseException:
        console.print(f"the servers' logs are kept in {workdir}", style="red")
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    console.print(machine.summary())
    console.print(render_loads(results))
    for backend in args.backends:
        table = render(results, BACKEND_NAMES[backend], args.objects)
        console.print(table)
    console.print(render_memory(results))
    console.print(render_goals(results, args.objects))
    for line in caption(results, args, classes):
        console.print(escape(f"- {line}"))


if __name__ == "__main__":
    main()
