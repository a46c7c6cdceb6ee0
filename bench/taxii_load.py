"""TAXII under concurrent load: `liaison serve --workers N` on PostgreSQL, many partners at once.

One PostgreSQL store (embedded, or LIAISON_TEST_DATABASE_URL's server) holds generated
intelligence: reports whose descriptions are 300 to 1,500 words of prose (``bench.ingest``'s
news-like generator), indicators, identities and relationships, some of them revised, under
six handling markings, so that each of eight partners may see 55-75% of it. Each phase starts
`liaison serve --workers N` as a subprocess on a free loopback port and runs closed-loop
clients against it (threads, one keep-alive connection and one request at a time each, every
request with a timeout), each client one of the partners, mixing:

- **first deliveries**: ``objects/?match[id]=...`` over ids that partner has never been sent
  (each partner's visible ids, shuffled, handed out once); some of these pages are asked for
  again at once by another client of the same partner (**raced**), the case in which one copy
  could be recorded twice;
- **repeat pages**: a page that partner already fetched (read-only: its copies are recorded);
- **POSTs** of envelopes of new indicators owned by the partner, each followed by its status,
  polled until complete.

Phases alternate between worker counts (1, 2, 2, 1, ...: ABBA, so that a store growing
through the run weighs alike on both); each is measured after a warm-up. Afterwards the store
is checked: every disclosure recorded exactly once, the ledger's disclosure entries one to one
with the records and with what the clients were told, and `liaison ledger verify --json`.

    python -m bench.taxii_load [--objects N] [--seconds 60] [--clients 32] [--workers 1,2]
        [--rounds 2] [--warmup 10] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.ingest import story_of, tell
from bench.options import positive, sizes
from bench.report import Machine, ratio, verdict, wide_console
from bench.stores import node_stores
from liaison.alliance import Collection, Partner
from liaison.markings.handling import marking_definition
from liaison.markings.tlp import TLP_CLEAR
from liaison.node import Node
from liaison.policy.grants import record_change, redecide, register_classes
from liaison.stix.validate import validation_errors
from liaison.store.alliance import save_alliance
from liaison.store.engine import write_transaction
from liaison.store.objects import add_objects
from liaison.store.schema import disclosures, grants, ledger_entries, objects
from liaison.taxii.credentials import IssuedCredentials, issue_credentials

DEFAULT_OBJECTS = 100_000
QUICK_OBJECTS = 4_000
DEFAULT_SECONDS = 60.0
QUICK_SECONDS = 10.0
DEFAULT_CLIENTS = 32
DEFAULT_WORKERS = (1, 2)
DEFAULT_ROUNDS = 2
QUICK_ROUNDS = 1
DEFAULT_WARMUP = 10.0
QUICK_WARMUP = 4.0
# The goal of issue 14, printed and never asserted.
GOAL = 1.6

SEED = 20250614
LOAD_BATCH = 5_000
PAGE_IDS = 50  # ids per first-delivery page (match[id]); the URL stays under 4 KB
POST_OBJECTS = 10  # indicators per POSTed envelope
# What a client does next, by weight; a first delivery is raced with this probability.
MIX = {"first": 45, "repeat": 40, "post": 15}
RACE_SHARE = 0.1
RACE_WAIT = 3.0  # seconds a raced page waits for a second client of its partner
REQUEST_TIMEOUT = 60.0
STATUS_POLLS = 20
STARTUP_TIMEOUT = 180.0
STAGGER = 2.0  # seconds over which the clients open their connections
WARMUP_CAP = 180.0
STOP_TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parents[1]

FIRST, RACED, REPEAT, POST, STATUS = "first", "raced", "repeat", "POST", "status"
KINDS = (FIRST, RACED, REPEAT, POST, STATUS)
KIND_NAMES = {
    FIRST: "first delivery",
    RACED: "first delivery, raced",
    REPEAT: "repeat page",
    POST: f"POST ({POST_OBJECTS} objects)",
    STATUS: "status poll",
}

FVEY = ("USA", "GBR", "AUS", "NZL")
EUROPE = ("FRA", "DEU", "NLD", "NOR")
PARTNERS = FVEY + EUROPE
CLEARANCES = {
    "USA": "USA:TS",
    "GBR": "GBR:TOP SECRET",
    "AUS": "AUS:TOP SECRET",
    "NZL": "NZL:TOP SECRET",
    **{code: "NATO:CTS" for code in EUROPE},
}
# Handling markings: REL TO (None: TLP:CLEAR; () : NOFORN) and the share of objects under it.
# Each FVEY partner may see 65-75% of the objects, each European one 55%.
HANDLING: tuple[tuple[str, tuple[str, ...] | None, int], ...] = (
    ("REL TO all eight", PARTNERS, 30),
    ("REL TO FVEY", FVEY, 25),
    ("REL TO Europe", EUROPE, 15),
    ("REL TO USA, GBR", ("USA", "GBR"), 10),
    ("TLP:CLEAR", None, 10),
    ("NOFORN", (), 10),
)
# Object types of the generated feed, by weight; every REVISE-th object is a revision.
TYPES = {"indicator": 55, "relationship": 25, "report": 10, "identity": 10}
REVISE = 20

# What STIX 2.1 requires of the generated types beside the common properties: a copy without
# one of these is incomplete (the server must withhold it rather than cut the reference).
REQUIRED = {
    "relationship": frozenset({"relationship_type", "source_ref", "target_ref"}),
    "report": frozenset({"name", "published", "object_refs"}),
    "indicator": frozenset({"pattern", "pattern_type", "valid_from"}),
    "identity": frozenset({"name"}),
}
ACCEPT = {"Accept": "application/taxii+json;version=2.1"}
TAXII_CONTENT = {"Content-Type": "application/taxii+json;version=2.1"}
LEDGER_HEADER = "X-Liaison-Ledger-Entries"
COLLECTIONS = (
    Collection(alias="intel", title="Intelligence", read=PARTNERS),
    Collection(
        alias="submissions", title="Partner submissions", types=("indicator",), write=PARTNERS
    ),
)
OBJECTS_PATH = f"/api/collections/{COLLECTIONS[0].id}/objects/"
POST_PATH = f"/api/collections/{COLLECTIONS[1].id}/objects/"
_START = datetime(2025, 1, 1, tzinfo=UTC)
_CONTEXTS = ("a phishing campaign", "ransomware intrusions", "credential theft", "espionage")


# --- data -------------------------------------------------------------------------------


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _ip(rng: random.Random) -> str:
    return (
        f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    )


class Feed:
    """The node's generated objects, the same for the same seed: the marking definitions
    first, then ``count`` objects (identities, indicators, relationships and reports; every
    REVISE-th a new version of a recent indicator). References only point backwards."""

    def __init__(self, node_identity: str, seed: int = SEED) -> None:
        self.node_identity = node_identity
        self.seed = seed
        self.markings: list[tuple[str, dict[str, Any] | None, int]] = []
        for name, rel_to, weight in HANDLING:
            if rel_to is None:
                self.markings.append((name, None, weight))
            elif rel_to:
                definition = marking_definition(node_identity, releasable_to=list(rel_to))
                self.markings.append((name, definition, weight))
            else:
                definition = marking_definition(node_identity, caveats=["NOFORN"])
                self.markings.append((name, definition, weight))
        self.noforn = next(d for n, d, _ in self.markings if n == "NOFORN")
        assert self.noforn is not None

    def definitions(self) -> list[dict[str, Any]]:
        return [d for _, d, _ in self.markings if d is not None]

    def objects(self, count: int) -> Iterator[dict[str, Any]]:
        rng = random.Random(self.seed)
        ids: dict[str, list[str]] = {"identity": [], "indicator": [], "relationship": []}
        recent: deque[dict[str, Any]] = deque(maxlen=500)
        weights = [w for _, _, w in self.markings]
        refs = [TLP_CLEAR if d is None else d["id"] for _, d, _ in self.markings]
        kinds, kind_weights = list(TYPES), list(TYPES.values())
        for index in range(count):
            created = _START + timedelta(seconds=index * 7)
            if index % REVISE == REVISE - 1 and recent:
                earlier = rng.choice(recent)
                later = datetime.strptime(earlier["modified"], "%Y-%m-%dT%H:%M:%S.%f%z")
                later += timedelta(minutes=rng.randrange(1, 10_000))
                revised = earlier | {"modified": _stamp(later), "confidence": rng.choice((15, 85))}
                yield revised
                continue
            kind = rng.choices(kinds, kind_weights)[0]
            if kind != "identity" and len(ids["indicator"]) < 2:
                kind = "indicator"
            if kind == "relationship" and not ids["identity"]:
                kind = "indicator"
            marking = rng.choices(refs, weights)[0]
            obj: dict[str, Any] = {
                "type": kind,
                "spec_version": "2.1",
                "id": f"{kind}--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                "created": _stamp(created),
                "modified": _stamp(created),
                "created_by_ref": self.node_identity,
                "object_marking_refs": [marking],
            }
            if kind == "identity":
                obj |= {"name": f"Target organization {index}", "identity_class": "organization"}
            elif kind == "indicator":
                ip = _ip(rng)
                obj |= {
                    "name": f"C2 server {ip}",
                    "description": f"C2 server {ip}, seen in {rng.choice(_CONTEXTS)}.",
                    "indicator_types": ["malicious-activity"],
                    "pattern": f"[ipv4-addr:value = '{ip}']",
                    "pattern_type": "stix",
                    "valid_from": obj["created"],
                    "confidence": 50,
                }
                recent.append(obj)
            elif kind == "relationship":
                if rng.random() < 0.4:
                    source, target = rng.sample(ids["indicator"][-2_000:], 2)
                    relationship = "derived-from"
                else:
                    source = rng.choice(ids["indicator"][-2_000:])
                    target = rng.choice(ids["identity"][-500:])
                    relationship = "related-to"
                obj |= {
                    "relationship_type": relationship,
                    "source_ref": source,
                    "target_ref": target,
                }
            else:
                story = dataclasses.replace(story_of(rng), words=rng.randint(300, 1_500))
                text, _ = tell(story, rng)
                headline, _, prose = text.partition("\n\n")
                pools = [ids["indicator"][-3_000:], ids["relationship"][-1_000:]]
                chosen = {
                    rng.choice(rng.choices([p for p in pools if p], k=1)[0]): None
                    for _ in range(rng.randint(2, 25))
                }
                obj |= {
                    "name": headline,
                    "description": prose.strip(),
                    "report_types": ["threat-report"],
                    "published": obj["created"],
                    "object_refs": list(chosen),
                }
            if kind in ids:
                ids[kind].append(obj["id"])
            yield obj

    def submission(self, partner: str, identity: str, count: int, rng: random.Random) -> bytes:
        """An envelope of ``count`` new indicators owned by ``partner`` (fresh ids every
        time), marked NOFORN so that no partner's pages change while they arrive."""
        now = _stamp(datetime.now(UTC))
        items = []
        assert self.noforn is not None
        for _ in range(count):
            ip = _ip(rng)
            items.append(
                {
                    "type": "indicator",
                    "spec_version": "2.1",
                    "id": f"indicator--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                    "created": now,
                    "modified": now,
                    "created_by_ref": identity,
                    "name": f"Scanner {ip} ({partner})",
                    "indicator_types": ["anomalous-activity"],
                    "pattern": f"[ipv4-addr:value = '{ip}']",
                    "pattern_type": "stix",
                    "valid_from": now,
                    "object_marking_refs": [self.noforn["id"]],
                }
            )
        return json.dumps({"objects": items}).encode()


def setup_alliance(node: Node) -> tuple[dict[str, IssuedCredentials], dict[str, str]]:
    """The eight partners and the two collections: each partner's credentials and identity."""
    partners = tuple(
        Partner(country=code, name=f"{code} agency", clearance=CLEARANCES[code], trust="high")
        for code in PARTNERS
    )
    with write_transaction(node.engine) as connection:
        save_alliance(connection, partners, (), COLLECTIONS)
        record_change(connection, "alliance", {"source": "bench.taxii_load"})
        redecide(connection)
        issued = {code: issue_credentials(connection, code) for code in PARTNERS}
    return issued, {p.country: p.identity for p in partners}


def load(node: Node, feed: Feed, count: int) -> tuple[dict[str, int], set[str]]:
    """Store the definitions and ``count`` generated objects in write transactions of
    LOAD_BATCH, registering their release classes as the importer does (no validator; a
    sample is validated first). How many of each type were stored, and their ids."""
    sample = list(feed.objects(min(count, 400)))
    for obj in [*feed.definitions(), *sample[::8]]:
        errors = validation_errors(obj)
        if errors:
            raise SystemExit(f"generated object {obj['id']} is invalid: {errors}")
    types: Counter[str] = Counter()
    ids: set[str] = set()
    batch: list[dict[str, Any]] = list(feed.definitions())
    for obj in feed.objects(count):
        batch.append(obj)
        types[obj["type"]] += 1
        ids.add(obj["id"])
        if len(batch) >= LOAD_BATCH:
            _store(node, batch)
            batch = []
    if batch:
        _store(node, batch)
    return dict(types), ids


def _store(node: Node, batch: list[dict[str, Any]]) -> None:
    with write_transaction(node.engine) as connection:
        added = add_objects(connection, batch)
        # "present": a revision drawn twice (same id and modified) is stored once.
        if "refused" in added.outcomes:
            raise SystemExit(
                f"loading: {Counter(added.outcomes)} {list(added.messages.items())[:3]}"
            )
        register_classes(connection, added.classes)


def visible_ids(connection: sa.Connection, generated: set[str]) -> dict[str, list[str]]:
    """Each partner's visible generated ids (their latest version's class is granted)."""
    query = (
        sa.select(grants.c.partner, objects.c.id)
        .join(grants, grants.c.class_id == objects.c.release_class)
        .where(grants.c.decision != "withhold", objects.c.latest.is_(True))
        .order_by(grants.c.partner, objects.c.id)
    )
    out: dict[str, list[str]] = {code: [] for code in PARTNERS}
    for partner, object_id in connection.execute(query):
        if partner in out and object_id in generated:
            out[partner].append(object_id)
    return out


# --- the load ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    kind: str
    start: float
    end: float
    error: str = ""  # what went wrong; empty when the request succeeded

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(eq=False)
class Race:
    """A first-delivery page asked for by two clients of one partner: each one's (start,
    end), filled in as they are answered."""

    ids: tuple[str, ...]
    first: list[float] = field(default_factory=list)
    second: list[float] = field(default_factory=list)
    taken: threading.Event = field(default_factory=threading.Event)

    @property
    def overlapped(self) -> bool:
        """The second request was sent before the first was answered."""
        return bool(self.first and self.second) and self.second[0] < self.first[1]


@dataclass
class Shared:
    """What the clients of every phase share: the ids each partner has not been sent yet,
    the pages it has been sent, raced pages waiting for their second client, and what the
    server said about the ledger."""

    pools: dict[str, deque[tuple[str, ...]]]
    pages: dict[str, list[tuple[str, ...]]] = field(default_factory=lambda: defaultdict(list))
    races: dict[str, deque[Race]] = field(default_factory=lambda: defaultdict(deque))
    # Per partner: the ledger entries named by the X-Liaison-Ledger-Entries of its pages.
    entries: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Pages whose objects did not match the ledger entries their header named.
    mismatched: list[str] = field(default_factory=list)
    exhausted: set[str] = field(default_factory=set)
    # (partner, id, modified) -> the hash of each property of the copy first received, and
    # the copies received later that differ: (that key, the request, the properties).
    copies: dict[tuple[str, Any, Any], dict[str, int]] = field(default_factory=dict)
    changed_copies: list[tuple[tuple[str, Any, Any], str, list[str]]] = field(default_factory=list)
    # Copies received without a property STIX requires of their type: "partner: id lacks …".
    incomplete: list[str] = field(default_factory=list)
    # Per partner: the ids of the pages whose request failed (an error or no answer).
    failed_ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # Per partner: the ids of the pages raced (asked for by two clients at once).
    raced_ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def take(self, partner: str) -> tuple[str, ...] | None:
        with self.lock:
            pool = self.pools[partner]
            if not pool:
                self.exhausted.add(partner)
                return None
            return pool.popleft()


@dataclass
class ClientLog:
    samples: list[Sample] = field(default_factory=list)
    races: list[Race] = field(default_factory=list)  # those this client asked second


class Client:
    """One partner's client: one request at a time on one keep-alive connection."""

    def __init__(
        self,
        url: str,
        issued: IssuedCredentials,
        identity: str,
        shared: Shared,
        feed: Feed,
        seed: int,
    ) -> None:
        self.partner = issued.partner
        self.identity = identity
        self.shared = shared
        self.feed = feed
        self.rng = random.Random(seed)
        self.log = ClientLog()
        self.stop = threading.Event()
        self.http = httpx.Client(
            base_url=url,
            auth=(issued.username, issued.password),
            headers=ACCEPT,
            timeout=httpx.Timeout(REQUEST_TIMEOUT, connect=10.0),
        )

    def run(self, stop: threading.Event, delay: float) -> None:
        """Requests until ``stop``, the first after ``delay`` seconds (clients connect one
        after another, as partners do, not all in the same millisecond)."""
        kinds, weights = list(MIX), list(MIX.values())
        self.stop = stop
        try:
            stop.wait(delay)
            while not stop.is_set():
                choice = self.rng.choices(kinds, weights)[0]
                if self.race():
                    continue
                if choice == "post":
                    self.post()
                elif choice == "first" or not self.shared.pages[self.partner]:
                    self.first()
                else:
                    self.repeat()
        finally:
            self.http.close()

    def _send(
        self, kind: str, method: str, path: str, **kwargs: Any
    ) -> tuple[httpx.Response | None, float, float]:
        start = time.monotonic()
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            end = time.monotonic()
            self._done(kind, start, end, f"{type(error).__name__}: {error}")
            return None, start, end
        end = time.monotonic()
        return response, start, end

    def _done(self, kind: str, start: float, end: float, error: str = "") -> None:
        self.log.samples.append(
            Sample(kind, start, end, f"{KIND_NAMES[kind]}: {error}" * bool(error))
        )

    def _page(self, kind: str, ids: tuple[str, ...]) -> tuple[float, float]:
        params = {"match[id]": ",".join(ids), "limit": len(ids)}
        response, start, end = self._send(kind, "GET", OBJECTS_PATH, params=params)
        if response is None or response.status_code != 200:
            if response is not None:
                self._done(kind, start, end, _status(response))
            # The server may have recorded these copies before the answer was lost.
            with self.shared.lock:
                self.shared.failed_ids[self.partner].update(ids)
            return start, end
        self._done(kind, start, end)
        received = response.json().get("objects", [])
        header = response.headers.get(LEDGER_HEADER, "")
        named = {int(part) for part in header.split(",") if part.strip()}
        # Each property of each copy, hashed (in this process): the same version must reach
        # its partner as the same copy every time.
        copies = {
            (obj.get("id"), obj.get("modified")): {
                key: hash(json.dumps(value, sort_keys=True)) for key, value in obj.items()
            }
            for obj in received
        }
        incomplete = [
            f"{obj.get('id')} lacks {', '.join(sorted(missing))}"
            for obj in received
            if (missing := REQUIRED.get(obj.get("type", ""), frozenset()) - obj.keys())
        ]
        with self.shared.lock:
            self.shared.incomplete.extend(f"{self.partner}: {i}" for i in incomplete)
            self.shared.entries[self.partner].update(named)
            if len(named) != len(received):
                self.shared.mismatched.append(
                    f"{self.partner} {KIND_NAMES[kind]}: {len(received)} objects, "
                    f"{len(named)} entries"
                )
            for (object_id, version), fields in copies.items():
                key = (self.partner, object_id, version)
                earlier = self.shared.copies.setdefault(key, fields)
                if earlier is not fields and earlier != fields:
                    changed = sorted(
                        k for k in earlier.keys() | fields.keys() if earlier.get(k) != fields.get(k)
                    )
                    self.shared.changed_copies.append((key, KIND_NAMES[kind], changed))
        return start, end

    def race(self) -> bool:
        """Ask for a page another client of the partner is about to ask for, if one is
        waiting: both requests are sent at about the same moment."""
        with self.shared.lock:
            waiting = self.shared.races[self.partner]
            raced = waiting.popleft() if waiting else None
        if raced is None:
            return False
        raced.taken.set()
        raced.second.extend(self._page(RACED, raced.ids))
        self.log.races.append(raced)
        return True

    def first(self) -> None:
        shared = self.shared
        ids = shared.take(self.partner)
        if ids is None:  # nothing new left for this partner: a repeat instead
            self.repeat()
            return
        race = None
        if self.rng.random() < RACE_SHARE:
            # Offered to the partner's other clients; sent once one of them takes it (or
            # alone after RACE_WAIT), so that both requests are in flight together.
            race = Race(ids)
            with shared.lock:
                shared.races[self.partner].append(race)
                shared.raced_ids[self.partner].update(ids)
            if not race.taken.wait(RACE_WAIT):
                with shared.lock:
                    if race in shared.races[self.partner]:
                        shared.races[self.partner].remove(race)
        times = self._page(FIRST, ids)
        if race is not None:
            race.first.extend(times)
        with shared.lock:
            shared.pages[self.partner].append(ids)

    def repeat(self) -> None:
        with self.shared.lock:
            pages = self.shared.pages[self.partner]
            ids = self.rng.choice(pages) if pages else None
        if ids is None:
            return
        self._page(REPEAT, ids)

    def post(self) -> None:
        body = self.feed.submission(self.partner, self.identity, POST_OBJECTS, self.rng)
        response, start, end = self._send(
            POST, "POST", POST_PATH, content=body, headers=TAXII_CONTENT
        )
        if response is None:
            return
        if response.status_code != 202:
            self._done(POST, start, end, _status(response))
            return
        status = response.json()
        if status.get("success_count") != POST_OBJECTS and status.get("status") == "complete":
            self._done(POST, start, end, f"202 but {_summary(status)}")
            return
        self._done(POST, start, end)
        for _ in range(STATUS_POLLS):
            if self.stop.is_set():
                return
            response, start, end = self._send(STATUS, "GET", f"/api/status/{status['id']}/")
            if response is None:
                return
            if response.status_code != 200:
                self._done(STATUS, start, end, _status(response))
                return
            polled = response.json()
            if polled.get("status") == "complete":
                stored = polled.get("success_count") == POST_OBJECTS
                self._done(STATUS, start, end, "" if stored else _summary(polled))
                return
            self._done(STATUS, start, end)
            time.sleep(0.05)
        self._done(STATUS, start, end, f"not complete after {STATUS_POLLS} polls")


def _status(response: httpx.Response) -> str:
    return f"{response.status_code} {response.text[:200]}"


def _summary(status: dict[str, Any]) -> str:
    return (
        f"status {status.get('status')}, {status.get('success_count')} of "
        f"{status.get('total_count')} stored, failures {str(status.get('failures'))[:200]}"
    )


# --- processes and CPU ------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (field 3 is the first)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def group_pids(pgid: int) -> list[int]:
    """The processes of process group ``pgid``."""
    found = []
    for pid in _pids():
        fields = _stat(pid)
        if fields is not None and int(fields[2]) == pgid:
            found.append(pid)
    return found


def children_of(parent: int) -> list[int]:
    found = []
    for pid in _pids():
        fields = _stat(pid)
        if fields is not None and int(fields[1]) == parent:
            found.append(pid)
    return found


def cpu_seconds(pids: Sequence[int], reaped: Sequence[int] = ()) -> float:
    """CPU time of ``pids`` (user + system), and of the children ``reaped`` ones waited for."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is None:
            continue
        total += int(fields[11]) + int(fields[12])
        if pid in reaped:
            total += int(fields[13]) + int(fields[14])
    return total / _TICK


def machine_busy() -> tuple[float, float]:
    """Busy and total CPU seconds of the machine since boot (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / _TICK, total / _TICK


@dataclass(frozen=True)
class CpuReading:
    server: float
    postgres: float
    client: float
    busy: float
    total: float


class Meter:
    """CPU seconds of the server's process group, the PostgreSQL server (postmaster and its
    backends), this process (the clients) and the whole machine."""

    def __init__(self, server_pgid: int, postmaster: int | None) -> None:
        self.server_pgid = server_pgid
        self.postmaster = postmaster

    def read(self) -> CpuReading:
        server = group_pids(self.server_pgid)
        postgres = 0.0
        if self.postmaster is not None:
            postgres = cpu_seconds(
                [self.postmaster, *children_of(self.postmaster)], reaped=[self.postmaster]
            )
        times = os.times()
        busy, total = machine_busy()
        return CpuReading(
            cpu_seconds(server, reaped=server), postgres, times.user + times.system, busy, total
        )


def postmaster_of(engine: sa.Engine) -> int | None:
    """The PostgreSQL server's process, when it runs on this machine as one we can see."""
    with engine.connect() as connection:
        backend = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    fields = _stat(int(backend))
    try:
        local = Path(f"/proc/{backend}/comm").read_text().strip() == "postgres"
    except OSError:
        local = False
    # A server elsewhere: its backend's pid names nothing here (or another process).
    return int(fields[1]) if fields is not None and local else None


def connections_per_process(pgid: int, port: int) -> list[int]:
    """For each process of the group holding established connections on ``port`` (the
    serving workers), how many it holds, largest first."""
    inodes: dict[str, int] = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes[inode] = 1
    counts = []
    for pid in group_pids(pgid):
        held = 0
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    held += 1
        except OSError:
            continue
        if held:
            counts.append(held)
    return sorted(counts, reverse=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def liaison_command() -> list[str]:
    script = Path(sys.executable).with_name("liaison")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from liaison.cli import main; main()"]


def node_env(node: Node) -> dict[str, str]:
    return {
        **os.environ,
        "LIAISON_HOME": str(node.settings.home),
        "LIAISON_DATABASE_URL": node.settings.database_url,
    }


@dataclass
class Server:
    """`liaison serve --workers N` in a session of its own; its log file."""

    workers: int
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    # How the stop went: "clean", or what had to be done.
    stopped: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)')


def tracebacks(log: str) -> Counter[str]:
    """The server's tracebacks, each summed up in one line: the exception, and the frames
    of Liaison's own code it passed through (innermost last); and its other log lines
    (uvicorn's warnings), numbers left out; how often each occurred."""
    found: Counter[str] = Counter()
    frames: list[str] | None = None
    for line in log.splitlines():
        if line.startswith("Traceback (most recent call last)"):
            frames = []
            continue
        if frames is None:
            skip = ("TAXII 2.1 for node", "  ", "ERROR:    Exception in ASGI application")
            if line.strip() and not line.startswith(skip):
                found[re.sub(r"\d+", "N", line.strip())[:240]] += 1
            continue
        match = _FRAME.match(line)
        if match:
            path = match["path"]
            if "/liaison/" in path and "site-packages" not in path:
                where = path[path.rindex("/liaison/") + 1 :]
                frames.append(f"{where}:{match['line']} {match['function']}")
            continue
        if line and not line[0].isspace() and not line.startswith("During handling"):
            if line.startswith(("The above exception", "Traceback")):
                continue
            path = " → ".join(frames[-4:]) or "(no Liaison frame)"
            found[f"{line.strip()[:240]}  [at {path}]"] += 1
            frames = None
    return found


@contextmanager
def serve(node: Node, workers: int, log: Path) -> Iterator[Server]:
    """`liaison serve --workers N` on a free loopback port, stopped (SIGTERM to the server,
    then SIGKILL to its whole process group) when the context ends."""
    port = free_port()
    command = [*liaison_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            env=node_env(node),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(workers, port, process, log)
    try:
        yield server
    finally:
        server.stopped = stop(process)


def stop(process: subprocess.Popen[bytes]) -> str:
    """Stop the server gracefully; kill what is left of its group. How it went."""
    pgid = process.pid
    outcome = "clean"
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            outcome = f"no exit {STOP_TIMEOUT:.0f} s after SIGTERM: killed"
    elif process.returncode != 0:
        outcome = f"had exited with {process.returncode}"
    deadline = time.monotonic() + 10
    left = group_pids(pgid)
    if left and outcome == "clean":
        # The server has exited; its workers and validators should follow within moments.
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = group_pids(pgid)
        if left:
            outcome = f"{len(left)} process(es) outlived the server: killed"
    if left:
        with suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    if process.poll() is None:
        process.kill()
    process.wait()
    return outcome


def wait_ready(server: Server, issued: IssuedCredentials) -> float:
    """Wait until /taxii2/ answers, then until the server's processes are quiet (every
    worker has started: a busy one is still importing); how long it took."""
    begin = time.monotonic()
    deadline = begin + STARTUP_TIMEOUT
    with httpx.Client(
        base_url=server.url, auth=(issued.username, issued.password), headers=ACCEPT, timeout=30
    ) as client:
        while True:
            if server.process.poll() is not None:
                raise SystemExit(
                    f"`liaison serve --workers {server.workers}` exited with "
                    f"{server.process.returncode}:\n{server.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not answer /taxii2/:\n{server.log_tail()}")
            try:
                if client.get("/taxii2/").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    pgid = server.process.pid
    previous = cpu_seconds(group_pids(pgid), reaped=group_pids(pgid))
    while time.monotonic() < deadline:
        time.sleep(1.0)
        pids = group_pids(pgid)
        now = cpu_seconds(pids, reaped=pids)
        if now - previous < 0.05 and len(pids) >= server.workers:
            break
        previous = now
    return time.monotonic() - begin


# --- one phase --------------------------------------------------------------------------


@dataclass
class Phase:
    number: int
    workers: int
    seconds: float
    warmup: float  # the warm-up it took
    unanswered: int  # requests sent in the window and answered only after it
    longest: float  # the longest of those, in seconds
    samples: list[Sample]  # answered within the measured window, failed ones included
    # Sent within the window, answered (or failed) whenever: their latency is what the
    # partners waited, requests still in flight when the window closed included.
    started: list[Sample]
    errors: list[str]  # of requests answered after the warm-up
    warmup_errors: list[str]
    races: list[Race]
    cpu: tuple[CpuReading, CpuReading]
    connections: list[int]
    startup: float
    stopped: str
    log_tail: str = ""
    failures: Counter[str] = field(default_factory=Counter)  # the server's tracebacks

    def rate(self) -> float:
        """Successful requests per second."""
        return sum(s.ok for s in self.samples) / self.seconds


def run_phase(
    number: int,
    node: Node,
    workers: int,
    args: argparse.Namespace,
    credentials: dict[str, IssuedCredentials],
    identities: dict[str, str],
    shared: Shared,
    feed: Feed,
    postmaster: int | None,
    logs: Path,
    console: Console,
) -> Phase:
    log = logs / f"phase-{number}-workers-{workers}.log"
    with serve(node, workers, log) as server:
        startup = wait_ready(server, credentials[PARTNERS[0]])
        console.print(
            f"phase {number}: {workers} worker(s) on port {server.port} ready in {startup:.0f} s;"
            f" {args.clients} clients, {args.warmup:.0f} s warm-up + {args.seconds:.0f} s…",
            style="dim",
        )
        meter = Meter(server.process.pid, postmaster)
        clients = [
            Client(
                server.url,
                credentials[PARTNERS[i % len(PARTNERS)]],
                identities[PARTNERS[i % len(PARTNERS)]],
                shared,
                feed,
                SEED * 1_000 + number * 100 + i,
            )
            for i in range(args.clients)
        ]
        stop_clients = threading.Event()
        spread = min(STAGGER, args.warmup / 2)
        threads = [
            threading.Thread(
                target=c.run, args=(stop_clients, spread * i / len(clients)), daemon=True
            )
            for i, c in enumerate(clients)
        ]
        began = time.monotonic()
        try:
            for thread in threads:
                thread.start()
            # The warm-up lasts until every client has had an answer (the first requests of
            # a process load its models and check each partner's password), at least
            # --warmup seconds and at most WARMUP_CAP.
            time.sleep(max(0.0, began + args.warmup - time.monotonic()))
            while time.monotonic() < began + WARMUP_CAP and not all(c.log.samples for c in clients):
                time.sleep(0.2)
            measure_from = time.monotonic()
            measure_to = measure_from + args.seconds
            before = meter.read()
            time.sleep(max(0.0, measure_from + args.seconds / 2 - time.monotonic()))
            connections = connections_per_process(server.process.pid, server.port)
            time.sleep(max(0.0, measure_to - time.monotonic()))
            after = meter.read()
        finally:
            stop_clients.set()
            for thread in threads:
                thread.join(timeout=2 * REQUEST_TIMEOUT + 10)
        hung = sum(thread.is_alive() for thread in threads)
        # A checkpoint, as a partner asks for one with its receipts: ledger verify then
        # checks the log against a signed, anchored root too.
        checkpoint = ""
        try:
            with httpx.Client(
                base_url=server.url,
                auth=(credentials[PARTNERS[0]].username, credentials[PARTNERS[0]].password),
                headers=ACCEPT,
                timeout=REQUEST_TIMEOUT,
            ) as client:
                response = client.get("/api/ledger/checkpoint/")
            if response.status_code != 200:
                checkpoint = _status(response)
        except httpx.HTTPError as error:
            checkpoint = f"{type(error).__name__}: {error}"
    samples: list[Sample] = []
    started: list[Sample] = []
    errors: list[str] = []
    warmup_errors: list[str] = []
    races: list[Race] = []
    for c in clients:
        for sample in c.log.samples:
            if measure_from <= sample.end <= measure_to:
                samples.append(sample)
            if measure_from <= sample.start < measure_to:
                started.append(sample)
            if sample.error:
                # A request that failed after the window (it was sent within it and the
                # phase waited for it) counts with the window.
                (errors if sample.end >= measure_from else warmup_errors).append(sample.error)
        races.extend(
            r for r in c.log.races if r.second and measure_from <= r.second[1] <= measure_to
        )
    if hung:
        errors.append(f"{hung} client(s) still waiting for an answer when the phase ended")
    if checkpoint:
        errors.append(f"checkpoint after the phase, the clients stopped: {checkpoint}")
    unanswered = [s for s in started if s.end > measure_to]
    phase = Phase(
        number,
        workers,
        args.seconds,
        measure_from - began,
        len(unanswered),
        max((s.end - s.start for s in unanswered), default=0.0),
        samples,
        started,
        errors,
        warmup_errors,
        races,
        (before, after),
        connections,
        startup,
        server.stopped,
    )
    phase.failures = tracebacks(server.log_text())
    if server.stopped != "clean" or ((errors or warmup_errors) and not phase.failures):
        phase.log_tail = server.log_tail()
    return phase


# --- checks -----------------------------------------------------------------------------


@dataclass
class Checks:
    records: int = 0
    null_entries: int = 0
    shared_entries: int = 0  # records filed under an entry another record also names
    copies_per_version: int = 0  # (partner, object, version) sent as more than one copy
    ledger_disclosures: int = 0
    duplicate_entries: int = 0  # disclosure entries repeating an earlier one's copy
    client_entries: int = 0
    missing_from_clients: int = 0  # records whose entry no response named, unexplained
    # Records whose entry no response named, of objects in a page whose request failed:
    # recorded, then the answer was lost (the server records before it sends).
    unsent: int = 0
    unknown_to_store: int = 0  # entries named to a client with no record
    page_mismatches: list[str] = field(default_factory=list)
    # The versions sent to one partner as two different copies: a line each (a few).
    copies_detail: list[str] = field(default_factory=list)
    copies_raced: int = 0  # of those versions, how many were in a raced page
    verify: dict[str, Any] = field(default_factory=dict)
    verify_exit: int | None = None
    verify_output: str = ""

    @property
    def exactly_once(self) -> bool:
        return (
            self.null_entries == 0
            and self.shared_entries == 0
            and self.copies_per_version == 0
            and self.duplicate_entries == 0
            and self.ledger_disclosures == self.records
        )

    @property
    def clients_agree(self) -> bool:
        return (
            self.missing_from_clients == 0
            and self.unknown_to_store == 0
            and not self.page_mismatches
        )

    @property
    def verified(self) -> bool:
        return self.verify_exit == 0 and self.verify.get("verified") is True


def check_store(node: Node, shared: Shared) -> Checks:
    checks = Checks(page_mismatches=list(shared.mismatched))
    d = disclosures.c
    with node.engine.connect() as connection:
        rows = connection.execute(sa.select(d.partner, d.object_id, d.version, d.entry)).all()
        checks.records = len(rows)
        checks.null_entries = sum(1 for r in rows if r.entry is None)
        per_entry = Counter(r.entry for r in rows if r.entry is not None)
        checks.shared_entries = sum(n for n in per_entry.values() if n > 1)
        per_version = Counter((r.partner, r.object_id, r.version) for r in rows)
        checks.copies_per_version = sum(n - 1 for n in per_version.values() if n > 1)
        twice = sorted(key for key, n in per_version.items() if n > 1)
        checks.copies_raced = sum(1 for p, o, _ in twice if o in shared.raced_ids.get(p, ()))
        for partner, object_id, version in twice[:5]:
            copies = connection.execute(
                sa.select(d.entry, d.digest, d.release_class, d.at)
                .where(d.partner == partner, d.object_id == object_id, d.version == version)
                .order_by(d.entry)
            ).all()
            described = "; ".join(
                f"entry {c.entry} sha256 {c.digest[:12]} class {c.release_class[:12]}"
                for c in copies
            )
            seconds = (copies[-1].at - copies[0].at) / 1e6
            checks.copies_detail.append(
                f"{partner} {object_id} (version {version}): {described}; recorded "
                f"{seconds:.3f} s apart"
            )
        seen: set[tuple[Any, ...]] = set()
        entries = connection.execute(
            sa.select(ledger_entries.c.body)
            .where(ledger_entries.c.kind == "disclosure")
            .order_by(ledger_entries.c.seq)
            .execution_options(yield_per=5_000)
        )
        for (body,) in entries:
            content = json.loads(body)
            key = (
                content.get("partner"),
                content.get("object_id"),
                content.get("version"),
                content.get("sha256"),
            )
            checks.ledger_disclosures += 1
            if key in seen:
                checks.duplicate_entries += 1
            seen.add(key)
    recorded = {(r.partner, r.entry): r.object_id for r in rows}
    told = {(partner, e) for partner, named in shared.entries.items() for e in named}
    checks.client_entries = len(told)
    for key in recorded.keys() - told:
        if recorded[key] in shared.failed_ids.get(key[0], ()):
            checks.unsent += 1
        else:
            checks.missing_from_clients += 1
    checks.unknown_to_store = len(told - recorded.keys())
    command = [*liaison_command(), "ledger", "verify", "--json"]
    result = subprocess.run(
        command, env=node_env(node), capture_output=True, text=True, timeout=1_800, check=False
    )
    checks.verify_exit = result.returncode
    checks.verify_output = (result.stdout + result.stderr)[-2_000:]
    try:
        checks.verify = json.loads(result.stdout)
    except ValueError:
        checks.verify = {}
    return checks


# --- report -----------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}"


def percentiles(samples: Sequence[Sample]) -> tuple[float, float] | None:
    times = [s.end - s.start for s in samples]
    if not times:
        return None
    if len(times) < 2:
        return times[0], times[0]
    return statistics.median(times), statistics.quantiles(times, n=100, method="inclusive")[94]


@dataclass
class Summary:
    """One worker count over all its phases."""

    workers: int
    phases: list[Phase]

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.phases)

    @property
    def samples(self) -> list[Sample]:
        return [s for p in self.phases for s in p.samples]

    @property
    def started(self) -> list[Sample]:
        return [s for p in self.phases for s in p.started]

    def rate(self) -> float:
        """Successful requests per second."""
        return sum(s.ok for s in self.samples) / self.seconds

    def errors(self) -> int:
        return sum(len(p.errors) for p in self.phases)


def _by_kind(samples: Sequence[Sample], seconds: float) -> str:
    counts = Counter(s.kind for s in samples if s.ok)
    return " · ".join(f"{k} {counts[k] / seconds:.1f}" for k in KINDS if counts[k])


def _cpu(phases: Sequence[Phase]) -> str:
    """Cores used on average: server / PostgreSQL / clients / whole machine."""
    seconds = sum(p.seconds for p in phases)
    server = sum(p.cpu[1].server - p.cpu[0].server for p in phases) / seconds
    postgres = sum(p.cpu[1].postgres - p.cpu[0].postgres for p in phases) / seconds
    client = sum(p.cpu[1].client - p.cpu[0].client for p in phases) / seconds
    busy = sum(p.cpu[1].busy - p.cpu[0].busy for p in phases)
    total = sum(p.cpu[1].total - p.cpu[0].total for p in phases)
    cores = os.cpu_count() or 1
    machine = busy / total * cores if total else float("nan")
    other = machine - server - postgres - client
    return f"{server:.2f} / {postgres:.2f} / {client:.2f} / {max(other, 0):.2f} of {machine:.2f}"


def _races(phases: Sequence[Phase]) -> str:
    races = [r for p in phases for r in p.races]
    if not races:
        return "—"
    return f"{sum(r.overlapped for r in races)}/{len(races)}"


def render(summaries: Sequence[Summary], args: argparse.Namespace, notes: list[str]) -> Table:
    table = Table(title=f"TAXII under load: {args.clients} partner clients, PostgreSQL")
    table.add_column("workers", justify="right")
    table.add_column("phase (warm-up)")
    table.add_column("requests/s", justify="right")
    table.add_column("by kind (requests/s)")
    table.add_column("errors", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p95 ms", justify="right")
    table.add_column("× 1 worker", justify="right")
    table.add_column("cores: server / PG / clients / other of machine")
    table.add_column("conns per worker")
    table.add_column("races overlapped", justify="right")
    one = next((s for s in summaries if s.workers == 1), None)
    base = one.rate() if one and one.samples else None
    for summary in summaries:
        rows: list[tuple[str, Sequence[Phase]]] = [
            (f"phase {p.number} ({p.warmup:.0f} s)", [p]) for p in summary.phases
        ]
        if len(summary.phases) > 1:
            rows.append(("[bold]all[/bold]", summary.phases))
        for label, phases in rows:
            samples = [s for p in phases for s in p.samples]
            seconds = sum(p.seconds for p in phases)
            errors = sum(len(p.errors) for p in phases)
            rate = sum(s.ok for s in samples) / seconds
            pct = percentiles([s for p in phases for s in p.started])
            table.add_row(
                str(summary.workers),
                label,
                f"{rate:,.1f}",
                _by_kind(samples, seconds),
                f"[red]{errors}[/red]" if errors else "0",
                _ms(pct[0]) if pct else "—",
                _ms(pct[1]) if pct else "—",
                ratio(rate / base) if base else "—",
                _cpu(phases),
                " ".join("/".join(map(str, p.connections)) or "—" for p in phases),
                _races(phases),
            )
    table.caption = "\n".join(notes)
    return table


def render_kinds(summaries: Sequence[Summary]) -> Table:
    table = Table(title="Latency by kind (measured windows of all phases)")
    table.add_column("workers", justify="right")
    table.add_column("request")
    table.add_column("requests/s", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p95 ms", justify="right")
    table.add_column("errors", justify="right")
    for summary in summaries:
        for kind in KINDS:
            samples = [s for s in summary.samples if s.kind == kind]
            started = [s for s in summary.started if s.kind == kind]
            if not samples and not started:
                continue
            pct = percentiles(started)
            failed = sum(1 for s in started if not s.ok)
            table.add_row(
                str(summary.workers),
                KIND_NAMES[kind],
                f"{sum(s.ok for s in samples) / summary.seconds:,.1f}",
                _ms(pct[0]) if pct else "—",
                _ms(pct[1]) if pct else "—",
                f"[red]{failed}[/red]" if failed else "0",
            )
    return table


def _yes(value: bool) -> str:
    return "[green]yes[/green]" if value else "[red]no[/red]"


def render_checks(summaries: Sequence[Summary], checks: Checks, shared: Shared) -> Table:
    table = Table(title="Checks and goal")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    phases = [p for s in summaries for p in s.phases]
    errors = sum(len(p.errors) for p in phases)
    warm = sum(len(p.warmup_errors) for p in phases)
    table.add_row(
        "no errors (non-2xx, transport, status not complete)",
        _yes(errors == 0 and warm == 0),
        f"{errors} in measured windows, {warm} in warm-ups",
    )
    once = (
        f"{checks.records:,} records, {checks.ledger_disclosures:,} disclosure entries; "
        f"{checks.duplicate_entries} entries repeat a copy, {checks.copies_per_version} versions "
        f"sent to a partner as a second, different copy ({checks.copies_raced} of them in raced "
        f"pages), {checks.shared_entries} records share an entry, {checks.null_entries} without one"
    )
    if checks.copies_detail:
        once += "\n" + escape("\n".join(checks.copies_detail))
    table.add_row("every disclosure recorded exactly once", _yes(checks.exactly_once), once)
    changed = shared.changed_copies
    kinds = Counter(kind for _, kind, _ in changed)
    props = Counter(p for _, _, props in changed for p in props)
    types = Counter(str(key[1]).split("--")[0] for key, _, _ in changed)
    table.add_row(
        "a version reaches its partner as the same copy every time (client side)",
        _yes(not changed),
        f"{len(shared.copies):,} (partner, version) copies received; {len(changed)} later "
        "receptions differed"
        + (
            f": by request {dict(kinds)}, type {dict(types)}, properties {dict(props)}; e.g. "
            + escape("; ".join(list(dict.fromkeys(f"{k[0]} {k[1]}" for k, _, _ in changed))[:3]))
            if changed
            else ""
        ),
    )
    incomplete = shared.incomplete
    table.add_row(
        "every copy received is complete (STIX required properties)",
        _yes(not incomplete),
        f"{len(incomplete)} copies lacked a required property"
        + (": e.g. " + escape("; ".join(incomplete[:3])) if incomplete else ""),
    )
    table.add_row(
        "what the clients were told = what is recorded",
        _yes(checks.clients_agree),
        f"{checks.client_entries:,} (partner, entry) pairs named in {LEDGER_HEADER}; "
        f"{checks.missing_from_clients} records never named, {checks.unknown_to_store} named "
        f"without a record; {len(checks.page_mismatches)} pages whose objects ≠ entries; "
        f"{checks.unsent} records of copies in pages that failed (recorded, then the answer "
        "was lost: allowed, the server records before it sends)",
    )
    warnings = checks.verify.get("warnings", [])
    detail = (
        f"exit {checks.verify_exit}; {checks.verify.get('tree_size', '?')} entries, "
        f"{checks.verify.get('disclosures', '?')} disclosure records, "
        f"{checks.verify.get('checkpoints', '?')} checkpoints; warnings: "
        + ("; ".join(warnings) if warnings else "none")
    )
    if not checks.verified:
        detail += f"\n{escape(checks.verify_output)}"
    table.add_row("`liaison ledger verify --json` passes", _yes(checks.verified), detail)
    failures: Counter[str] = Counter()
    for p in phases:
        failures.update(p.failures)
    table.add_row(
        "no exception in the servers' logs",
        _yes(not failures),
        escape("\n".join(f"{n}× {text}" for text, n in failures.most_common(6))) or "none",
    )
    stops = [f"phase {p.number}: {p.stopped}" for p in phases if p.stopped != "clean"]
    table.add_row(
        "servers stopped cleanly (SIGTERM)", _yes(not stops), "; ".join(stops) or "every phase"
    )
    rates = {s.workers: s.rate() for s in summaries}
    label = f"goal: 2 workers ≥ {GOAL}× 1 worker (requests/s)"
    failing = sorted({s.workers for s in summaries if s.errors()})
    if 1 in rates and 2 in rates and rates[1] > 0:
        value = rates[2] / rates[1]
        measured = f"{ratio(value)}: {rates[2]:,.1f} against {rates[1]:,.1f} requests/s"
        if failing:
            table.add_row(
                label,
                "[red]not comparable[/red]",
                f"{measured}, but with {' and '.join(map(str, failing))} worker(s) requests "
                "failed in the measured window: a ratio to a failing server measures nothing",
            )
        else:
            table.add_row(label, verdict(value >= GOAL), measured)
    elif 1 in rates and 2 in rates:
        table.add_row(
            label,
            "[red]no ratio[/red]",
            f"1 worker answered no request successfully; 2 workers: {rates[2]:,.1f} requests/s",
        )
    else:
        table.add_row(f"goal: 2 workers ≥ {GOAL}× 1 worker", "not measured", "needs --workers 1,2")
    return table


# --- command line -----------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.taxii_load", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--objects",
        type=positive,
        default=None,
        help=f"generated objects (default {DEFAULT_OBJECTS:,})",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help=f"measured seconds per phase (default {DEFAULT_SECONDS:.0f})",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="unmeasured seconds of load before each phase's window "
        f"(default {DEFAULT_WARMUP:.0f})",
    )
    parser.add_argument(
        "--clients", type=positive, default=DEFAULT_CLIENTS, help=f"default {DEFAULT_CLIENTS}"
    )
    parser.add_argument(
        "--workers",
        type=sizes,
        default=DEFAULT_WORKERS,
        help="worker counts, comma-separated (default 1,2)",
    )
    parser.add_argument(
        "--rounds",
        type=positive,
        default=None,
        help=f"phases per worker count, alternating ABBA (default {DEFAULT_ROUNDS})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_OBJECTS:,} objects, {QUICK_SECONDS:.0f} s phases, {QUICK_ROUNDS} round",
    )
    args = parser.parse_args(argv)
    if args.objects is None:
        args.objects = QUICK_OBJECTS if args.quick else DEFAULT_OBJECTS
    if args.seconds is None:
        args.seconds = QUICK_SECONDS if args.quick else DEFAULT_SECONDS
    if args.warmup is None:
        args.warmup = QUICK_WARMUP if args.quick else DEFAULT_WARMUP
    if args.rounds is None:
        args.rounds = QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS
    if not args.workers:
        parser.error("--workers needs at least one count")
    if args.seconds <= 0 or args.warmup < 0:
        parser.error("--seconds must be positive and --warmup not negative")
    return args


def code_version() -> str:
    """Which code the servers ran: the commit, and how the working tree under src/ differs
    from it (read-only git commands that take no optional lock)."""
    environment = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}

    def git(*arguments: str) -> str:
        try:
            result = subprocess.run(
                ["git", "-C", str(ROOT), *arguments],
                env=environment,
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return result.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "server code: not a git checkout"
    changed = git("diff", "--name-only", "HEAD", "--", "src").splitlines()
    added = git("ls-files", "--others", "--exclude-standard", "--", "src").splitlines()
    if not changed and not added:
        return f"server code: commit {commit}, unmodified"
    return (
        f"server code: commit {commit} with {len(changed)} modified and {len(added)} new files "
        "under src/ (the working tree as each server found it when it started)"
    )


def schedule(workers: Sequence[int], rounds: int) -> list[int]:
    """Worker counts in phase order: ABBA... so that drift weighs alike on each count."""
    order: list[int] = []
    for number in range(rounds):
        order.extend(workers if number % 2 == 0 else reversed(workers))
    return order


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = wide_console(220)
    machine = Machine()
    version = code_version()
    notes: list[str] = []
    with (
        node_stores("postgresql", 1, "liaison-bench-load-") as nodes,
        tempfile.TemporaryDirectory(prefix="liaison-bench-load-logs-") as logs,
    ):
        node = nodes[0]
        feed = Feed(node.identity_id)
        credentials, identities = setup_alliance(node)
        console.print(f"loading {args.objects:,} generated objects into PostgreSQL…", style="dim")
        start = time.perf_counter()
        types, generated = load(node, feed, args.objects)
        loaded = time.perf_counter() - start
        with node.engine.connect() as connection:
            visible = visible_ids(connection, generated)
        pools: dict[str, deque[tuple[str, ...]]] = {}
        for index, code in enumerate(PARTNERS):
            ids = visible[code]
            random.Random(SEED + index).shuffle(ids)
            pools[code] = deque(tuple(ids[i : i + PAGE_IDS]) for i in range(0, len(ids), PAGE_IDS))
        shared = Shared(pools)
        postmaster = postmaster_of(node.engine)
        phases: list[Phase] = []
        for number, workers in enumerate(schedule(args.workers, args.rounds), start=1):
            phase = run_phase(
                number,
                node,
                workers,
                args,
                credentials,
                identities,
                shared,
                feed,
                postmaster,
                Path(logs),
                console,
            )
            phases.append(phase)
            status = (
                f"{phase.rate():,.1f} requests/s after a {phase.warmup:.0f} s warm-up, "
                f"{len(phase.errors)} errors, {phase.unanswered} requests sent in the window "
                f"answered only after it (the longest in {phase.longest:.0f} s)"
            )
            console.print(f"phase {number}: {status}", style="dim")
            for when, errors in (("window", phase.errors), ("warm-up", phase.warmup_errors)):
                for error, n in Counter(errors).most_common(6):
                    console.print(f"  {n}× ({when}) {error}", style="red", markup=False)
            for failure, n in phase.failures.most_common(8):
                console.print(f"  server: {n}× {failure}", style="red", markup=False)
            if phase.log_tail:
                console.print(f"  server log (tail), stop: {phase.stopped}", style="red")
                console.print(phase.log_tail, markup=False, highlight=False)
        console.print("checking the disclosures and the ledger…", style="dim")
        checks = check_store(node, shared)
        left = {code: len(pool) * PAGE_IDS for code, pool in shared.pools.items()}
    summaries = [
        Summary(w, [p for p in phases if p.workers == w]) for w in dict.fromkeys(args.workers)
    ]
    shares = ", ".join(
        f"{code} {100 * len(visible[code]) / max(1, len(generated)):.0f}%" for code in PARTNERS
    )
    kinds = ", ".join(f"{n:,} {t}" for t, n in sorted(types.items(), key=lambda kv: -kv[1]))
    notes += [
        f"Store: {args.objects:,} generated object versions ({kinds}; every {REVISE}th a new "
        f"version) under {len(HANDLING)} handling markings, loaded in {loaded:.0f} s; reports "
        "carry 300-1,500 words of news-like prose (bench.ingest's generator), which the server "
        f"fingerprints per partner. Partners see: {shares} of the objects.",
        f"Each worker count ran {args.rounds} phase(s) in ABBA order "
        f"({', '.join(map(str, schedule(args.workers, args.rounds)))}), each a fresh `liaison "
        "serve --workers N` on a loopback port, then a warm-up under load (at least "
        f"{args.warmup:.0f} s and until every client has had an answer, at most "
        f"{WARMUP_CAP:.0f} s: Argon2 checks once per partner and process, models and "
        f"validator loaded; the phase column shows it), then {args.seconds:.0f} s measured. "
        "requests/s: requests answered successfully within the window; p50/p95: every request "
        "sent within the window, failed ones and those answered after it included.",
        f"{args.clients} client threads in this process ({args.clients // len(PARTNERS)} or more "
        "per partner), each one request at a time on its own keep-alive connection, timeout "
        f"{REQUEST_TIMEOUT:.0f} s; next request by weight: first delivery {MIX['first']}, "
        f"repeat {MIX['repeat']}, POST {MIX['post']} (then its status, polled until complete). "
        f"First deliveries: match[id] over {PAGE_IDS} ids the partner was never sent; "
        f"{RACE_SHARE:.0%} are asked again at once by another client of the partner (raced; "
        "'races overlapped': the second request sent while the first was in flight).",
        "cores: CPU seconds per second over the measured window, from /proc: the server's "
        "process group (uvicorn, its workers, their validator processes), PostgreSQL's "
        "postmaster and backends, this process (all clients), and the rest of the machine "
        "(other work sharing it). conns per worker: established client connections per "
        "serving process at mid-window (keep-alive: the kernel chose the worker at connect).",
        "Not covered: a network (loopback only), clients on other machines (here they share "
        f"the {os.cpu_count()} cores with the server and PostgreSQL), TLS, a tuned or remote "
        "PostgreSQL (embedded, default settings, same disk), more than the partners' "
        "own reads and POSTs (no manifests, no ledger receipts under load).",
    ]
    exhausted = sorted(shared.exhausted)
    if exhausted:
        notes.append(
            f"[red]First deliveries ran out for {', '.join(exhausted)}: later 'first' turns "
            "were repeats. Raise --objects.[/red]"
        )
    else:
        notes.append(
            "Ids never sent, left at the end: "
            + ", ".join(f"{code} {n:,}" for code, n in left.items())
        )
    ended = code_version()
    if ended != version:
        version = f"{version}; at the end: {ended.removeprefix('server code: ')}"
    console.print(machine.summary(f"{args.objects:,} objects", version))
    console.print(render(summaries, args, notes))
    console.print(render_kinds(summaries))
    console.print(render_checks(summaries, checks, shared))


if __name__ == "__main__":
    main()
