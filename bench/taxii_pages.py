"""TAXII page latency: a partner's pages as the store grows, against a trivial response.

In one run, with the same generated indicators: a partner's first page (limit=100), a page
deep in its feed reached through ``next``, and a first manifest page, at each store size on
SQLite and PostgreSQL, for partners that may see 90%, 10% and 0.1% of the objects; beside
them the floor (a trivial JSON response from the same FastAPI + uvicorn setup on a loopback
port), the first page while the partner POSTs envelopes of 100 objects, and the same
requests against the OASIS reference server medallion (memory backend, installed from PyPI
into its own virtual environment, each request capped by a timeout). Each size is a store of
its own, served by its own uvicorn, and each kind of request goes round-robin over the sizes
and the floor, so that load from other processes falls on every size alike.

    python -m bench.taxii_pages [--objects 10000,100000,1000000] [--backends sqlite,postgresql]
        [--requests 30] [--medallion-sizes 1000,10000] [--medallion-timeout 60] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI
from rich.console import Console
from rich.table import Table

from bench.options import BACKENDS, backends, positive, sizes
from bench.peers import peer_environment
from bench.report import Machine, ratio, verdict, wide_console
from bench.stores import node_stores
from liaison.alliance import Collection, Partner
from liaison.markings.handling import marking_definition
from liaison.markings.tlp import TLP_CLEAR
from liaison.node import Node
from liaison.policy.grants import record_change, redecide, register_classes
from liaison.stix.ids import derived_id
from liaison.stix.timestamps import from_micros
from liaison.store.alliance import save_alliance
from liaison.store.engine import write_transaction
from liaison.store.objects import add_objects
from liaison.store.pages import visibility_counts
from liaison.store.schema import grants, objects
from liaison.taxii.credentials import IssuedCredentials, issue_credentials

BACKEND_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (2_000, 20_000)
DEFAULT_MEDALLION_SIZES = (1_000, 10_000)
QUICK_MEDALLION_SIZES = (1_000,)
DEFAULT_REQUESTS = 30
QUICK_REQUESTS = 15
WARMUPS = 3
# medallion takes seconds per page: fewer samples, and a cap on each request.
MEDALLION_REQUESTS = 5
MEDALLION_TIMEOUT = 60.0
# The first page under POSTs is timed while at least this many POSTs complete.
MIN_POSTS = 5
MEDALLION_REQUIREMENTS = ("medallion==3.0.0", "flask<4", "werkzeug<4")

PAGE = 100
# The deep page is reached by following `next` this many times.
DEEP_STEPS = 10
SEED = 20250612
LOAD_BATCH = 20_000
# Objects come in deterministic chunks: object i depends only on its chunk, so every size is
# a prefix of the same generated data.
CHUNK = 1_000
_START = datetime(2025, 1, 1, tzinfo=UTC)

# Partner -> the share of the store it is meant to see (measured in the run).
ROOT = Path(__file__).resolve().parents[1]
PARTNERS = {"USA": "90%", "GBR": "10%", "AUS": "0.1%"}
PRODUCERS = 4
ACCEPT = {"Accept": "application/taxii+json;version=2.1"}
TAXII_CONTENT = {"Content-Type": "application/taxii+json;version=2.1"}

FLOOR = "trivial GET (floor)"
FIRST = "first page"
DEEP = "deep page (next)"
MANIFEST = "manifest page"
POSTING = "first page, POSTs running"
KINDS = (FIRST, DEEP, MANIFEST)

# Goals of the issue.
GROWTH_GOAL = 1.5
FLOOR_GOAL = 3.0
POST_GOAL = 1.5


# --- data -------------------------------------------------------------------------------


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _ip(rng: random.Random) -> str:
    return (
        f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    )


class Generator:
    """The same small, valid indicators for every backend, size and server.

    Of every 1,000 entries, 1 is REL TO USA, GBR, AUS; 99 REL TO USA, GBR; 800 REL TO USA;
    100 NOFORN: USA may see 90%, GBR 10%, AUS 0.1%. Originators rotate over the node and four
    producers (20 release classes). Every tenth entry is a new version of the entry five
    before it, so a size counts object versions.
    """

    def __init__(self, node_identity: str) -> None:
        self.node_identity = node_identity
        self.definitions = [
            marking_definition(node_identity, releasable_to=["USA", "GBR", "AUS"]),
            marking_definition(node_identity, releasable_to=["USA", "GBR"]),
            marking_definition(node_identity, releasable_to=["USA"]),
            marking_definition(node_identity, caveats=["NOFORN"]),
        ]
        self.producers = [self._producer(i) for i in range(PRODUCERS)]
        self.originators = [node_identity, *(p["id"] for p in self.producers)]

    @staticmethod
    def _producer(number: int) -> dict[str, Any]:
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

    def preamble(self) -> list[dict[str, Any]]:
        """What the indicators refer to: their markings' definitions and their producers."""
        return [*self.definitions, *self.producers]

    def marking_for(self, index: int) -> str:
        slot = index % 1000
        if slot == 0:
            return self.definitions[0]["id"]
        if slot < 100:
            return self.definitions[1]["id"]
        if slot < 900:
            return self.definitions[2]["id"]
        return self.definitions[3]["id"]

    def objects(self, start: int, stop: int) -> list[dict[str, Any]]:
        """Entries ``start`` to ``stop`` of the generated sequence."""
        out: list[dict[str, Any]] = []
        for chunk in range(start // CHUNK, (stop - 1) // CHUNK + 1):
            first = chunk * CHUNK
            entries = self._chunk(chunk)
            out.extend(entries[max(start, first) - first : min(stop, first + CHUNK) - first])
        return out

    def _chunk(self, chunk: int) -> list[dict[str, Any]]:
        rng = random.Random(SEED * 1_000_003 + chunk)
        out: list[dict[str, Any]] = []
        for offset in range(CHUNK):
            index = chunk * CHUNK + offset
            if offset % 10 == 9:
                out.append(self._revision(out[offset - 5], rng))
            else:
                out.append(self._indicator(index, rng))
        return out

    def _indicator(self, index: int, rng: random.Random) -> dict[str, Any]:
        created = _stamp(_START + timedelta(seconds=index))
        ip = _ip(rng)
        return {
            "type": "indicator",
            "spec_version": "2.1",
            "id": f"indicator--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
            "created": created,
            "modified": created,
            "created_by_ref": self.originators[index % len(self.originators)],
            "name": f"C2 server {ip}",
            "indicator_types": ["malicious-activity"],
            "pattern": f"[ipv4-addr:value = '{ip}']",
            "pattern_type": "stix",
            "valid_from": created,
            "object_marking_refs": [self.marking_for(index)],
        }

    @staticmethod
    def _revision(earlier: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        modified = datetime.strptime(earlier["modified"], "%Y-%m-%dT%H:%M:%S.%f%z")
        later = modified + timedelta(milliseconds=rng.randrange(1, 86_400_000))
        return earlier | {"modified": _stamp(later), "confidence": rng.choice((15, 50, 85))}

    def submission(self, partner: str, count: int) -> bytes:
        """An envelope of ``count`` new indicators from ``partner`` (fresh ids every time),
        marked NOFORN so that no partner's pages change while they arrive."""
        now = _stamp(datetime.now(UTC))
        rng = random.Random()
        items = []
        for _ in range(count):
            ip = _ip(rng)
            items.append(
                {
                    "type": "indicator",
                    "spec_version": "2.1",
                    "id": f"indicator--{uuid.uuid4()}",
                    "created": now,
                    "modified": now,
                    "created_by_ref": derived_id("identity", f"agency:{partner}"),
                    "name": f"Scanner {ip}",
                    "indicator_types": ["anomalous-activity"],
                    "pattern": f"[ipv4-addr:value = '{ip}']",
                    "pattern_type": "stix",
                    "valid_from": now,
                    "object_marking_refs": [self.definitions[3]["id"]],
                }
            )
        return json.dumps({"objects": items}).encode()


COLLECTIONS = (
    Collection(alias="intel", title="Indicators", read=tuple(PARTNERS)),
    Collection(
        alias="submissions",
        title="Partner submissions",
        types=("indicator",),
        write=tuple(PARTNERS),
    ),
)
READ_PATH = f"/api/collections/{COLLECTIONS[0].id}/"
POST_PATH = f"/api/collections/{COLLECTIONS[1].id}/objects/"


def setup_alliance(node: Node) -> dict[str, IssuedCredentials]:
    """The three partners and the two collections; each partner's credentials."""
    partners = tuple(
        Partner(country=code, name=f"{code} agency", clearance=f"{code}:TOP SECRET", trust="high")
        for code in PARTNERS
    )
    with write_transaction(node.engine) as connection:
        save_alliance(connection, partners, (), COLLECTIONS)
        record_change(connection, "alliance", {"source": "bench.taxii_pages"})
        redecide(connection)
        return {code: issue_credentials(connection, code) for code in PARTNERS}


def load(engine: sa.Engine, generator: Generator, start: int, stop: int) -> None:
    """Store entries ``start`` to ``stop`` (the preamble first), in write transactions of
    LOAD_BATCH, registering their release classes as the importer does (no validator)."""
    for first in range(start, stop, LOAD_BATCH):
        batch = generator.objects(first, min(stop, first + LOAD_BATCH))
        if first == 0:
            batch = generator.preamble() + batch
        with write_transaction(engine) as connection:
            added = add_objects(connection, batch)
            register_classes(connection, added.classes)


def visible_counts(connection: sa.Connection) -> tuple[dict[str, int], int]:
    """How many objects (latest versions) each partner may see, and how many there are."""
    counts = visibility_counts(connection)
    total = 0
    seen = {}
    for code in PARTNERS:
        c = counts.get(code, {"release": 0, "release-with-cuts": 0, "withhold": 0})
        total = max(total, sum(c.values()))
        seen[code] = c["release"] + c["release-with-cuts"]
    return seen, total


def nth_visible_added(connection: sa.Connection, partner: str, offset: int) -> int:
    """The ``date_added`` of the partner's ``offset``-th visible object (latest versions)."""
    query = (
        sa.select(objects.c.date_added)
        .join(
            grants,
            sa.and_(grants.c.class_id == objects.c.release_class, grants.c.partner == partner),
        )
        .where(grants.c.decision != "withhold", objects.c.latest.is_(True))
        .order_by(objects.c.date_added)
        .offset(offset)
        .limit(1)
    )
    return connection.execute(query).scalar_one()


# --- measuring --------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    samples: tuple[float, ...]  # seconds

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        if len(self.samples) < 2:
            return self.samples[0]
        return statistics.quantiles(self.samples, n=100, method="inclusive")[94]


@dataclass
class Row:
    backend: str
    objects: int | None
    partner: str | None  # None: no release policy (the floor, medallion)
    share: str
    kind: str
    latency: Latency | None
    # Whose floor the row is compared with: the backend's name, or "medallion".
    group: str = ""
    # The cap a request exceeded (medallion), or None.
    timeout: float | None = None
    note: str = ""
    items: int | None = None  # objects (or manifest entries) in the page
    idle: Latency | None = None  # for POSTING rows: the same request without POSTs
    posts: Latency | None = None  # for POSTING rows: the POSTs' own latency


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(factory: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """uvicorn serving the app ``factory`` makes, in a process of its own on a free loopback
    port (as `liaison serve` runs it): its base URL. Client and server do not share a GIL."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", factory]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "error"]
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env_path()]))
    process = subprocess.Popen(command, env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server {factory} did not start")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def env_path() -> str:
    return os.environ.get("PYTHONPATH", "")


def node_env(node: Node) -> dict[str, str]:
    return {
        "LIAISON_HOME": str(node.settings.home),
        "LIAISON_DATABASE_URL": node.settings.database_url,
    }


def floor_app() -> FastAPI:
    """A trivial JSON endpoint on the same stack: FastAPI, a sync route (run in the thread
    pool like the TAXII routes), uvicorn with the same settings."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/floor")
    def floor() -> dict[str, Any]:
        return {"title": "floor", "more": False}

    return app


def timed_get(
    client: httpx.Client, path: str, params: dict[str, Any] | None = None
) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = client.get(path, params=params)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"GET {path} {params}: {response.status_code} {response.text[:300]}")
    return elapsed, response


def items_in(response: httpx.Response) -> int:
    """How many objects (or manifest entries) a page holds."""
    return len(response.json().get("objects", []))


def partner_client(url: str, issued: IssuedCredentials, timeout: float = 120.0) -> httpx.Client:
    return httpx.Client(
        base_url=url, auth=(issued.username, issued.password), headers=ACCEPT, timeout=timeout
    )


def deep_page(
    client: httpx.Client, engine: sa.Engine, partner: str, visible: int
) -> tuple[dict[str, Any] | None, str]:
    """The parameters of a full page reached through `next`, deep in the partner's feed:
    start (added_after) so that DEEP_STEPS + 1 full pages remain, then follow `next`
    DEEP_STEPS times (fewer in a shorter feed, so that the page is still full); and a note
    saying where it is. None when the feed has no second full page."""
    offset = visible - 1 - (DEEP_STEPS + 1) * PAGE - PAGE // 2
    params: dict[str, Any] = {"limit": PAGE}
    before = 0
    if offset > 0:
        with engine.connect() as connection:
            added = nth_visible_added(connection, partner, offset)
        params["added_after"] = from_micros(added)
        before = offset + 1
    wanted = min(DEEP_STEPS, (visible - before) // PAGE - 1)
    path = READ_PATH + "objects/"
    steps = 0
    current: dict[str, Any] | None = None
    body = client.get(path, params=params).json()
    while steps < wanted and body.get("next"):
        before += len(body.get("objects", []))
        current = params | {"next": body["next"]}
        body = client.get(path, params=current).json()
        steps += 1
    if current is None:
        return None, "no second full page"
    where = "added_after + " if "added_after" in params else ""
    return current, f"{before:,} objects before it; {where}{steps}× next"


Target = tuple[httpx.Client, str, dict[str, Any] | None]


def interleaved(
    targets: dict[int | str, Target], count: int, warmups: int
) -> dict[int | str, tuple[Latency, int]]:
    """Each target's latency over ``count`` rounds; every round asks each target once, in
    a rotating order, so that load from outside the benchmark falls on all of them alike.
    Also how many items each target's page held."""
    keys = list(targets)
    for key in keys:
        client, path, params = targets[key]
        for _ in range(warmups):
            timed_get(client, path, params)
    samples: dict[int | str, list[float]] = {key: [] for key in keys}
    last: dict[int | str, httpx.Response] = {}
    for round_number in range(count):
        shift = round_number % len(keys)
        for key in keys[shift:] + keys[:shift]:
            client, path, params = targets[key]
            elapsed, last[key] = timed_get(client, path, params)
            samples[key].append(elapsed)
    return {key: (Latency(tuple(samples[key])), items_in(last[key])) for key in keys}


def measure_while_posting(
    url: str,
    issued: IssuedCredentials,
    generator: Generator,
    idle: Row,
    count: int,
) -> Row:
    """The partner's first page while it POSTs envelopes of 100 objects back to back (after
    one untimed POST: the first one in a process also loads the validator)."""
    with partner_client(url, issued) as client:
        body = generator.submission(issued.partner, PAGE)
        response = client.post(POST_PATH, content=body, headers=TAXII_CONTENT)
        if response.status_code != 202:
            raise SystemExit(f"a POST failed: {response.status_code} {response.text[:300]}")
    stop = threading.Event()
    started = threading.Event()
    post_times: list[float] = []
    failures: list[str] = []

    def poster() -> None:
        with partner_client(url, issued) as client:
            while not stop.is_set():
                body = generator.submission(issued.partner, PAGE)
                started.set()
                begin = time.perf_counter()
                response = client.post(POST_PATH, content=body, headers=TAXII_CONTENT)
                post_times.append(time.perf_counter() - begin)
                if response.status_code != 202 or response.json().get("success_count") != PAGE:
                    failures.append(f"{response.status_code} {response.text[:300]}")
                    return

    thread = threading.Thread(target=poster, daemon=True)
    thread.start()
    started.wait(timeout=30)
    # At least `count` pages, and on for as long as MIN_POSTS take: a few quick pages could
    # otherwise all slip in before the first POST reaches the server.
    timings = []
    deadline = time.monotonic() + 300
    with partner_client(url, issued) as client:
        while len(timings) < count or (len(post_times) < MIN_POSTS and not failures):
            timings.append(timed_get(client, READ_PATH + "objects/", {"limit": PAGE}))
            if time.monotonic() > deadline:
                break
    stop.set()
    thread.join(timeout=300)
    if failures:
        raise SystemExit(f"a POST failed: {failures[0]}")
    posts = Latency(tuple(post_times)) if post_times else None
    return Row(
        idle.backend,
        idle.objects,
        idle.partner,
        idle.share,
        POSTING,
        Latency(tuple(t for t, _ in timings)),
        group=idle.group,
        items=items_in(timings[-1][1]),
        idle=idle.latency,
        posts=posts,
        note=f"{len(post_times)} POSTs × {PAGE} objects, POST p50 "
        f"{_ms(posts.p50) if posts else '—'} ms",
    )


@dataclass
class Store:
    """One store size: its node, its own server and a client per partner."""

    size: int
    node: Node
    url: str
    credentials: dict[str, IssuedCredentials]
    clients: dict[str, httpx.Client]
    visible: dict[str, int]
    total: int

    def share(self, partner: str) -> str:
        return f"{partner} {100 * self.visible[partner] / self.total:.1f}%"


def bench_backend(
    backend: str,
    sizes: Sequence[int],
    floor: httpx.Client,
    count: int,
    warmups: int,
    console: Console,
    results: Results,
) -> None:
    """One store per size, each loaded with the same generated prefix and served by its own
    uvicorn; each request kind is then timed round-robin over the sizes and the floor."""
    name = BACKEND_NAMES[backend]
    rows: list[Row] = []
    floor_samples: list[float] = []
    with node_stores(backend, len(sizes), "liaison-bench-pages-") as nodes, ExitStack() as stack:
        # The node's identity derives from its country: the same objects for every store.
        generator = Generator(nodes[0].identity_id)
        stores = []
        for size, node in zip(sizes, nodes, strict=True):
            console.print(f"{name}: loading {size:,} object versions…", style="dim")
            credentials = setup_alliance(node)
            start = time.perf_counter()
            load(node.engine, generator, 0, size)
            results.loads.append(f"{name} {size:,} in {time.perf_counter() - start:.1f} s")
            with node.engine.connect() as connection:
                visible, total = visible_counts(connection)
            url = stack.enter_context(serve("liaison.taxii.app:app_from_env", node_env(node)))
            clients = {
                code: stack.enter_context(partner_client(url, issued))
                for code, issued in credentials.items()
            }
            stores.append(Store(size, node, url, credentials, clients, visible, total))
        for code in PARTNERS:
            console.print(f"{name}: {code} pages…", style="dim")
            for kind in KINDS:
                targets: dict[int | str, Target] = {}
                notes: dict[int, str] = {}
                for store in stores:
                    client = store.clients[code]
                    if kind == FIRST:
                        targets[store.size] = (client, READ_PATH + "objects/", {"limit": PAGE})
                    elif kind == MANIFEST:
                        targets[store.size] = (client, READ_PATH + "manifest/", {"limit": PAGE})
                    else:
                        params, notes[store.size] = deep_page(
                            client, store.node.engine, code, store.visible[code]
                        )
                        if params is not None:
                            targets[store.size] = (client, READ_PATH + "objects/", params)
                targets["floor"] = (floor, "/floor", None)
                measured = interleaved(targets, count, warmups)
                floor_samples.extend(measured.pop("floor")[0].samples)
                for store in stores:
                    latency, items = measured.get(store.size, (None, None))
                    rows.append(
                        Row(
                            name,
                            store.size,
                            code,
                            store.share(code),
                            kind,
                            latency,
                            group=name,
                            items=items,
                            note=notes.get(store.size, ""),
                        )
                    )
        order = {
            **{kind: i for i, kind in enumerate(KINDS)},
            **{p: i for i, p in enumerate(PARTNERS)},
        }
        rows.sort(key=lambda r: (r.objects or 0, order[r.partner or ""], order[r.kind]))
        largest = stores[-1]
        for code in PARTNERS:
            console.print(f"{name}: {code} first page while POSTing…", style="dim")
            idle = next(
                r
                for r in rows
                if r.objects == largest.size and r.partner == code and r.kind == FIRST
            )
            rows.append(
                measure_while_posting(
                    largest.url, largest.credentials[code], generator, idle, count
                )
            )
    floor_row = Row(
        "uvicorn + FastAPI",
        None,
        None,
        f"— (beside {name})",
        FLOOR,
        Latency(tuple(floor_samples)),
        group=name,
    )
    results.rows.extend([floor_row, *rows])


# --- medallion --------------------------------------------------------------------------

MEDALLION_API_ROOT = "api1"
MEDALLION_COLLECTION = "6f3b3ea2-4a5e-4b38-9d4c-1f7b6f3c7e01"
MEDALLION_USER = ("bench", "bench-password")


def medallion_config(directory: Path, items: Sequence[dict[str, Any]]) -> Path:
    """medallion's memory-backend data file (one API root, one collection holding every
    object with a manifest entry each, added in order) and its configuration."""
    added = datetime(2025, 6, 1, tzinfo=UTC)
    manifest = [
        {
            "id": obj["id"],
            "date_added": (added + timedelta(milliseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "version": obj.get("modified") or obj["created"],
            "media_type": "application/stix+json;version=2.1",
        }
        for i, obj in enumerate(items)
    ]
    data = {
        "/discovery": {
            "title": "bench",
            "description": "medallion for bench.taxii_pages",
            "default": f"/{MEDALLION_API_ROOT}/",
            "api_roots": [f"/{MEDALLION_API_ROOT}/"],
        },
        MEDALLION_API_ROOT: {
            "information": {
                "title": "bench",
                "description": "",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 100 * 1024 * 1024,
            },
            "status": [],
            "collections": [
                {
                    "id": MEDALLION_COLLECTION,
                    "title": "Indicators",
                    "description": "",
                    "can_read": True,
                    "can_write": True,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": list(items),
                    "manifest": manifest,
                }
            ],
        },
    }
    data_file = directory / "data.json"
    data_file.write_text(json.dumps(data))
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(data_file),
        },
        "users": {MEDALLION_USER[0]: MEDALLION_USER[1]},
        "taxii": {"max_page_size": PAGE},
    }
    config_file = directory / "config.json"
    config_file.write_text(json.dumps(config))
    return config_file


class Medallion:
    """One medallion process on a loopback port; restarted after a request times out (a
    timed-out request would otherwise go on computing beside the next)."""

    def __init__(self, bin_dir: Path, config: Path, log: Path) -> None:
        self.bin_dir, self.config, self.log = bin_dir, config, log
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.bin_dir / "medallion"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "ERROR",
                    str(self.config),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"medallion exited: see {self.log}")
            try:
                response = httpx.get(
                    f"{self.url}/taxii2/", auth=MEDALLION_USER, headers=ACCEPT, timeout=5
                )
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("medallion did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, timeout: float) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=MEDALLION_USER, headers=ACCEPT, timeout=timeout)


def medallion_rows(
    server: Medallion, size: int, count: int, cap: float, console: Console
) -> list[Row]:
    """First page, pages through `next`, and the first manifest page, each request capped."""
    backend = "medallion 3.0.0 (memory)"
    share = "— (no policy: all)"
    group = "medallion"
    path = f"/{MEDALLION_API_ROOT}/collections/{MEDALLION_COLLECTION}/"
    rows = []

    def capped(kind: str, target: str) -> tuple[Row, dict[str, Any] | None]:
        """The first request is the warm-up: when it exceeds the cap, nothing else is tried."""
        samples: list[float] = []
        body = None
        with server.client(cap) as client:
            for attempt in range(count + 1):
                try:
                    start = time.perf_counter()
                    response = client.get(target, params={"limit": PAGE})
                    elapsed = time.perf_counter() - start
                except httpx.TimeoutException:
                    console.print(f"medallion {size:,}: {kind} > {cap:.0f} s", style="dim")
                    server.restart()
                    row = Row(backend, size, None, share, kind, None, group=group, timeout=cap)
                    return row, None
                if response.status_code != 200:
                    raise SystemExit(f"medallion {target}: {response.status_code}")
                body = response.json()
                if attempt:
                    samples.append(elapsed)
        items = len(body.get("objects", [])) if body else None
        latency = Latency(tuple(samples))
        return Row(backend, size, None, share, kind, latency, group=group, items=items), body

    first, body = capped(FIRST, path + "objects/")
    rows.append(first)
    if body is None or not body.get("next"):
        note = "needs the first page"
        rows.append(Row(backend, size, None, share, DEEP, None, group=group, note=note))
    else:
        # medallion's `next` is a server-side session that hands out the following page
        # each time: time DEEP_STEPS successive pages.
        samples = []
        with server.client(cap) as client:
            token = body["next"]
            for _ in range(DEEP_STEPS):
                start = time.perf_counter()
                response = client.get(path + "objects/", params={"limit": PAGE, "next": token})
                samples.append(time.perf_counter() - start)
                page = response.json()
                if response.status_code != 200 or not page.get("next"):
                    break
                token = page["next"]
        note = f"pages 2 to {len(samples) + 1}, each requested once (stateful `next`)"
        rows.append(
            Row(
                backend,
                size,
                None,
                share,
                DEEP,
                Latency(tuple(samples)),
                group=group,
                items=PAGE,
                note=note,
            )
        )
    manifest, _ = capped(MANIFEST, path + "manifest/")
    rows.append(manifest)
    return rows


def bench_medallion(
    sizes: Sequence[int],
    generator: Generator,
    cap: float,
    console: Console,
    results: Results,
) -> None:
    directory = Path(tempfile.mkdtemp(prefix="liaison-bench-medallion-"))
    try:
        console.print("medallion: installing from PyPI into its own venv…", style="dim")
        start = time.perf_counter()
        try:
            bin_dir = peer_environment(directory / "venv", MEDALLION_REQUIREMENTS)
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or "").strip().splitlines()[-1:] or [str(exc)]
            results.notes.append(f"medallion not measured: install failed: {detail[0]}")
            return
        results.notes.append(
            f"medallion: {', '.join(MEDALLION_REQUIREMENTS)} installed in "
            f"{time.perf_counter() - start:.0f} s into a venv of its own"
        )
        for size in sizes:
            console.print(f"medallion {size:,}: starting…", style="dim")
            workdir = directory / str(size)
            workdir.mkdir()
            config = medallion_config(workdir, generator.preamble() + generator.objects(0, size))
            server = Medallion(bin_dir, config, workdir / "medallion.log")
            try:
                server.start()
                results.rows.extend(medallion_rows(server, size, MEDALLION_REQUESTS, cap, console))
            finally:
                server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# --- report -----------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}"


def baseline(rows: Sequence[Row], row: Row) -> Row | None:
    """The same request at the smallest size measured for that server and partner."""
    same = [
        r
        for r in rows
        if r.backend == row.backend
        and r.partner == row.partner
        and r.kind == row.kind
        and r.objects is not None
    ]
    smallest = min((r.objects for r in same if r.objects is not None), default=None)
    return next((r for r in same if r.objects == smallest), None)


def floors(rows: Sequence[Row]) -> Callable[[Row], float]:
    """The p50 of the floor a row is compared with: the floor timed beside its backend's
    requests; for medallion, every floor sample of the run."""
    by_group = {r.group: r.latency for r in rows if r.kind == FLOOR and r.latency}
    pooled = tuple(s for latency in by_group.values() for s in latency.samples)

    def floor_of(row: Row) -> float:
        latency = by_group.get(row.group)
        if latency is not None:
            return latency.p50
        return statistics.median(pooled) if pooled else float("nan")

    return floor_of


def render(results: Results, count: int, warmups: int, cap: float) -> Table:
    table = Table(title="TAXII page latency (limit=100)")
    table.add_column("server")
    table.add_column("objects", justify="right")
    table.add_column("partner sees")
    table.add_column("request")
    table.add_column("items", justify="right")
    for heading in ("p50 ms", "p95 ms", "p50 × smallest", "p50 × floor"):
        table.add_column(heading, justify="right")
    table.add_column("note")
    floor_of = floors(results.rows)
    for row in results.rows:
        floor_p50 = floor_of(row)
        objects = f"{row.objects:,}" if row.objects is not None else "—"
        if row.latency is None:
            if row.timeout is not None:
                over = f"> {row.timeout * 1000:,.0f}"
                base = baseline(results.rows, row)
                growth = "—"
                if base is not None and base.latency is not None:
                    growth = f"> {ratio(row.timeout / base.latency.p50)}"
                table.add_row(
                    row.backend,
                    objects,
                    row.share,
                    row.kind,
                    "—",
                    over,
                    over,
                    growth,
                    f"> {ratio(row.timeout / floor_p50)}",
                    f"> {row.timeout:.0f} s: request cut at the cap",
                )
            else:
                table.add_row(
                    row.backend, objects, row.share, row.kind, "—", "—", "—", "—", "—", row.note
                )
            continue
        p50 = row.latency.p50
        base = baseline(results.rows, row) if row.kind != FLOOR else None
        if row.kind == POSTING and row.idle is not None:
            growth = f"{ratio(p50 / row.idle.p50)} idle"
        elif base is None or base is row or base.latency is None:
            growth = "—"
        else:
            growth = ratio(p50 / base.latency.p50)
        table.add_row(
            row.backend,
            objects,
            row.share,
            row.kind,
            f"{row.items:,}" if row.items is not None else "—",
            _ms(p50),
            _ms(row.latency.p95),
            growth,
            ratio(p50 / floor_p50),
            row.note,
        )
    caption = [
        f"p50/p95 of {count} requests after {warmups} warm-ups (medallion: "
        f"{MEDALLION_REQUESTS} after 1, each capped at {cap:.0f} s), one keep-alive "
        "connection per partner; each server is a uvicorn process of its own (as `liaison "
        "serve` runs it), the client another.",
        "Each size is its own store, loaded with the same generated objects and served by its "
        "own uvicorn; a row's requests go round-robin over the sizes and the floor (a trivial "
        "JSON route on the same FastAPI + uvicorn setup), so load from other processes falls "
        "on all alike. medallion is compared with every floor sample of the run.",
        "objects: generated object versions (every tenth a new version of an earlier "
        "object), plus 9 definitions and producers; partner sees: its share of the latest "
        "versions, counted by the store.",
        "An objects GET records disclosures (a write) the first time a copy goes to a "
        "partner, here during the warm-ups; the timed repeats of the same request find them "
        "recorded and are read-only.",
        f"deep page: `next` followed {DEEP_STEPS} times from an added_after chosen so that "
        f"{DEEP_STEPS + 1} full pages remain (fewer times in a shorter feed, so that the page "
        "is full), then that same `next` URL is timed; items: objects in the page.",
        f"{POSTING}: at the largest size, while the same partner POSTs envelopes of "
        f"{PAGE} new indicators (NOFORN, so no page changes) back to back to another "
        f"collection (timed over at least {MIN_POSTS} POSTs, after an untimed one); "
        "p50 × smallest column: ratio to the same request without POSTs.",
        "loading: " + "; ".join(results.loads),
        *results.notes,
    ]
    table.caption = "\n".join(caption)
    return table


def goals(results: Results, sizes: Sequence[int]) -> Table:
    table = Table(title="Goals")
    table.add_column("goal")
    table.add_column("server")
    table.add_column("partner")
    table.add_column("worst", justify="right")
    table.add_column("result")
    floor_of = floors(results.rows)
    smallest, largest = min(sizes), max(sizes)
    liaison = [r for r in results.rows if r.partner is not None and r.latency is not None]
    for backend in dict.fromkeys(r.backend for r in liaison):
        for partner in PARTNERS:
            mine = [r for r in liaison if r.backend == backend and r.partner == partner]
            growth: list[tuple[float, str]] = []
            over_floor: list[tuple[float, str]] = []
            posting: list[tuple[float, str]] = []
            for row in mine:
                assert row.latency is not None
                if row.kind == POSTING and row.idle is not None:
                    posting.append((row.latency.p50 / row.idle.p50, "p50"))
                    posting.append((row.latency.p95 / row.idle.p95, "p95"))
                    continue
                if row.objects != largest:
                    continue
                over_floor.append((row.latency.p50 / floor_of(row), row.kind))
                base = next((r for r in mine if r.kind == row.kind and r.objects == smallest), None)
                if base is not None and base.latency is not None and smallest != largest:
                    growth.append((row.latency.p50 / base.latency.p50, row.kind))
            for label, values, limit in (
                (f"p50 at {largest:,} ≤ {GROWTH_GOAL}× {smallest:,}", growth, GROWTH_GOAL),
                (f"p50 at {largest:,} ≤ {FLOOR_GOAL:.0f}× floor", over_floor, FLOOR_GOAL),
                (f"POSTs slow first page ≤ {POST_GOAL}×", posting, POST_GOAL),
            ):
                if not values:
                    table.add_row(label, backend, partner, "—", "not measured")
                    continue
                worst, what = max(values)
                table.add_row(
                    label, backend, partner, f"{ratio(worst)} ({what})", verdict(worst <= limit)
                )
    table.caption = (
        f"Pages are first page, deep page and manifest page; the POST goal compares the first "
        f"page's p50 and p95 with and without POSTs running (limit {POST_GOAL}× taken as "
        "'does not slow')."
    )
    return table


# --- command line -----------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.taxii_pages", description=__doc__.splitlines()[0]
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
        help=f"timed requests per row (default {DEFAULT_REQUESTS})",
    )
    parser.add_argument(
        "--medallion-sizes",
        type=sizes,
        default=None,
        help="sizes for medallion, comma-separated, 'none' to skip (default "
        f"{','.join(map(str, DEFAULT_MEDALLION_SIZES))})",
    )
    parser.add_argument(
        "--medallion-timeout",
        type=float,
        default=MEDALLION_TIMEOUT,
        help=f"seconds a medallion request may take (default {MEDALLION_TIMEOUT:.0f})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"sizes {','.join(map(str, QUICK_SIZES))}, medallion at "
        f"{','.join(map(str, QUICK_MEDALLION_SIZES))}, {QUICK_REQUESTS} requests",
    )
    args = parser.parse_args(argv)
    if args.objects is None:
        args.objects = QUICK_SIZES if args.quick else DEFAULT_SIZES
    if not args.objects:
        parser.error("--objects needs at least one size")
    if args.medallion_sizes is None:
        args.medallion_sizes = QUICK_MEDALLION_SIZES if args.quick else DEFAULT_MEDALLION_SIZES
    if args.requests is None:
        args.requests = QUICK_REQUESTS if args.quick else DEFAULT_REQUESTS
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = wide_console(190)
    machine = Machine()
    results = Results()
    with (
        serve("bench.taxii_pages:floor_app") as url,
        httpx.Client(base_url=url, headers=ACCEPT) as floor,
    ):
        for backend in args.backends:
            bench_backend(backend, args.objects, floor, args.requests, WARMUPS, console, results)
    if args.medallion_sizes:
        node_identity = derived_id("identity", "agency:CAN")
        bench_medallion(
            args.medallion_sizes,
            Generator(node_identity),
            args.medallion_timeout,
            console,
            results,
        )
    console.print(machine.summary())
    console.print(render(results, args.requests, WARMUPS, args.medallion_timeout))
    console.print(goals(results, args.objects))


if __name__ == "__main__":
    main()
