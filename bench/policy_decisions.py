"""Release decisions: the compiled policy (one grant per release class and partner) against a
naive loop that decides every object version for every partner, on the same data in one run.

Object versions fall into 300 release classes and the alliance has 30 partners. For each
backend and size: deciding everything, and re-deciding after one partner's trust changes,
both ways; the goals are a re-decision that costs the same (within 2×) at every size, and a
compiled path at least 100× faster than the loop at the largest size.

    python -m bench.policy_decisions [--objects 10000,1000000] [--backends sqlite,postgresql]
        [--sample 20000] [--naive-limit 180] [--repeats 7] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from bench.import_throughput import fresh_database, postgres_server
from bench.options import BACKENDS, backends, positive
from liaison.alliance import Clearance, Community, Membership, Partner, country_name
from liaison.markings.handling import marking_definition
from liaison.markings.tlp import TLP_AMBER, TLP_AMBER_STRICT, TLP_CLEAR, TLP_GREEN, TLP_RED
from liaison.node import Node, init_node
from liaison.policy.classes import class_key
from liaison.policy.grants import (
    decide_class,
    load_world,
    marking_handlings,
    record_change,
    redecide,
    register_classes,
    set_rules,
)
from liaison.policy.rules import NodeRules
from liaison.settings import Settings
from liaison.stix.ids import derived_id
from liaison.stix.validate import validation_errors
from liaison.store.alliance import read_partners, save_alliance, update_partner
from liaison.store.engine import write_transaction
from liaison.store.objects import add_objects, count_versions
from liaison.store.pages import count_latest_in_classes, visibility_counts
from liaison.store.schema import grants, objects, release_classes

DEFAULT_OBJECTS = (10_000, 1_000_000)
QUICK_OBJECTS = (2_000, 20_000)
CLASSES = 300
PARTNERS = 30
# The naive loop over every version for every partner is timed on this many versions (the
# first ones added) and extrapolated, unless the extrapolation says a full run is short.
NAIVE_SAMPLE = 20_000
NAIVE_LIMIT_SECONDS = 180.0
REPEATS = 7
REPEAT_BUDGET_SECONDS = 10.0
# Objects per write transaction while loading.
LOAD_BATCH = 20_000
SEED = 20250612

# The partner whose trust changes, and the two levels it alternates between.
CHANGED_PARTNER = "POL"
TRUST_STEPS = ("low", "medium")
REDECIDE_GOAL = 2.0
SPEEDUP_GOAL = 100.0

NODE_COUNTRY = "CAN"
_START = datetime(2025, 1, 1, tzinfo=UTC)
_EU_JOINED = date(1993, 11, 1)
_EU_2004 = date(2004, 5, 1)


# ---------------------------------------------------------------------------------------------
# The world: 30 partners, their communities, the node's rules, marking-definitions, classes


def _partner(code: str, clearance: str, trust: str, status: str = "active") -> Partner:
    return Partner(
        country=code,
        name=f"{country_name(code)} intelligence services",
        clearance=Clearance.parse(clearance),
        trust=trust,
        status=status,
    )


def alliance_partners() -> tuple[Partner, ...]:
    """30 partners with real ISO 3166 alpha-3 codes; the node itself is CAN."""
    fvey = [
        _partner("USA", "USA:TS", "high"),
        _partner("GBR", "GBR:TOP SECRET", "high"),
        _partner("AUS", "AUS:TOP SECRET", "high"),
        _partner("NZL", "NZL:TOP SECRET", "high"),
    ]
    nato = [
        _partner(code, clearance, trust)
        for code, clearance, trust in (
            ("FRA", "NATO:NS", "medium"),
            ("DEU", "NATO:NS", "medium"),
            ("ITA", "NATO:NS", "medium"),
            ("ESP", "NATO:NS", "medium"),
            ("NLD", "NATO:NS", "medium"),
            ("BEL", "NATO:NS", "medium"),
            ("NOR", "NATO:NS", "high"),
            ("DNK", "NATO:NS", "medium"),
            (CHANGED_PARTNER, "NATO:NS", "medium"),
            ("EST", "NATO:NS", "medium"),
            ("LVA", "NATO:NS", "medium"),
            ("LTU", "NATO:NS", "medium"),
            ("TUR", "NATO:NC", "low"),
            ("ALB", "NATO:NC", "medium"),
            ("CZE", "NATO:NS", "medium"),
            ("ROU", "NATO:NC", "medium"),
            ("PRT", "NATO:NC", "medium"),
            ("GRC", "NATO:NC", "low"),
            ("FIN", "NATO:NS", "medium"),
            ("SWE", "NATO:NS", "medium"),
        )
    ]
    nato.append(_partner("HUN", "NATO:NC", "low", status="suspended"))
    others = [
        _partner("JPN", "NATO:NC", "medium"),
        _partner("KOR", "NATO:NR", "medium"),
        _partner("ISR", "NATO:NC", "low"),
        _partner("UKR", "NATO:NR", "low"),
        _partner("CHE", "EU:RESTREINT UE", "medium"),
    ]
    partners = (*fvey, *nato, *others)
    assert len({p.country for p in partners}) == PARTNERS, len(partners)
    return partners


def alliance_communities() -> tuple[Community, ...]:
    def members(*entries: str | tuple[str, date] | tuple[str, date, date]) -> tuple:
        out = []
        for entry in entries:
            if isinstance(entry, str):
                out.append(Membership(country=entry))
            elif len(entry) == 2:
                out.append(Membership(country=entry[0], joined=entry[1]))
            else:
                out.append(Membership(country=entry[0], joined=entry[1], left=entry[2]))
        return tuple(out)

    nato_1949 = date(1949, 8, 24)
    return (
        Community(
            name="FVEY",
            kind="alliance",
            description="Five Eyes",
            members=members("CAN", "USA", "GBR", "AUS", "NZL"),
        ),
        Community(
            name="NATO",
            kind="alliance",
            description="North Atlantic Treaty Organization",
            members=members(
                ("CAN", nato_1949),
                ("USA", nato_1949),
                ("GBR", nato_1949),
                ("FRA", nato_1949),
                ("ITA", nato_1949),
                ("BEL", nato_1949),
                ("NLD", nato_1949),
                ("NOR", nato_1949),
                ("DNK", nato_1949),
                ("PRT", nato_1949),
                ("TUR", date(1952, 2, 18)),
                ("GRC", date(1952, 2, 18)),
                ("DEU", date(1955, 5, 6)),
                ("ESP", date(1982, 5, 30)),
                ("POL", date(1999, 3, 12)),
                ("CZE", date(1999, 3, 12)),
                ("HUN", date(1999, 3, 12)),
                ("EST", date(2004, 3, 29)),
                ("LVA", date(2004, 3, 29)),
                ("LTU", date(2004, 3, 29)),
                ("ROU", date(2004, 3, 29)),
                ("ALB", date(2009, 4, 1)),
                ("FIN", date(2023, 4, 4)),
                ("SWE", date(2024, 3, 7)),
            ),
        ),
        Community(
            name="EU",
            kind="union",
            description="European Union member states among the node's partners",
            members=members(
                *((code, _EU_JOINED) for code in ("FRA", "DEU", "ITA", "BEL", "NLD", "DNK")),
                *((code, _EU_JOINED) for code in ("PRT", "GRC", "ESP")),
                ("FIN", date(1995, 1, 1)),
                ("SWE", date(1995, 1, 1)),
                *((code, _EU_2004) for code in ("POL", "CZE", "HUN", "EST", "LVA", "LTU")),
                ("ROU", date(2007, 1, 1)),
            ),
        ),
        # A mission with dates: one contributor has left, one joins in the future (so grants
        # carry a validity date).
        Community(
            name="OP REASSURANCE",
            kind="mission",
            description="A NATO assurance mission led by Canada",
            members=members(
                ("CAN", date(2014, 4, 17)),
                ("LVA", date(2017, 6, 19)),
                (CHANGED_PARTNER, date(2017, 6, 19)),
                ("ALB", date(2017, 6, 19)),
                ("ESP", date(2017, 6, 19)),
                ("ITA", date(2017, 6, 19), date(2023, 6, 30)),
                ("SWE", date(2031, 1, 1)),
            ),
        ),
    )


def node_rules() -> NodeRules:
    return NodeRules(
        unmarked="green",
        trust_ceilings={"low": "NATO:NC", "medium": "NATO:NS"},
        amber_scope=frozenset({"FVEY", "FRA", "OP REASSURANCE"}),
    )


def handling_definitions(node_identity: str) -> list[dict[str, Any]]:
    """About 40 marking-definitions of the node: classifications, REL TOs and caveats."""
    out: list[dict[str, Any]] = []
    for classification in (
        "CAN:UNCLASSIFIED",
        "CAN:CONFIDENTIAL",
        "CAN:SECRET",
        "CAN:TOP SECRET",
        "NATO:NR",
        "NATO:NC",
        "NATO:NS",
    ):
        for rel_to in (["FVEY"], ["NATO"], ["EU"], ["OP REASSURANCE"]):
            out.append(marking_definition(node_identity, classification, rel_to))
    for classification, rel_to, caveats in (
        ("CAN:SECRET", ["FVEY"], ["ORCON"]),
        ("NATO:NC", ["NATO"], ["ORCON"]),
        ("CAN:SECRET", None, ["NOFORN"]),
        ("CAN:SECRET", ["USA"], ["USA EYES ONLY"]),
        ("CAN:PROTECTED B", ["FVEY"], None),
        ("CAN:SECRET", None, None),
        (None, ["FVEY"], None),
        (None, ["NATO", "JPN", "KOR"], None),
        (None, ["USA", "GBR", CHANGED_PARTNER], None),
        ("NATO:NS", ["CAN", "USA", "GBR", "FRA", "DEU"], None),
        ("USA:S", ["FVEY"], None),
        ("EU:RESTREINT UE", ["EU", "CHE"], None),
    ):
        out.append(marking_definition(node_identity, classification, rel_to, caveats))
    return out


@dataclass(frozen=True)
class ClassSpec:
    """What makes a release class: object markings, granular markings, originator and, with
    granular markings, the type."""

    markings: tuple[str, ...]
    granular: tuple[tuple[str, tuple[str, ...]], ...]
    originator: str
    type: str | None = None


def class_specs(
    node_identity: str, definitions: Sequence[dict[str, Any]], partners: Sequence[Partner]
) -> list[ClassSpec]:
    """Exactly CLASSES specs with distinct class keys, most restrictive combinations mixed in."""
    ids = [d["id"] for d in definitions]
    # A marking whose definition the node never stored: the policy withholds what it marks.
    unknown = derived_id("marking-definition", "bench: a definition the node does not hold")
    named = [d["id"] for d in definitions if "releasable_to" in _handling(d)]
    marking_sets: list[tuple[str, ...]] = [
        (),
        (TLP_CLEAR,),
        (TLP_GREEN,),
        (TLP_AMBER,),
        (TLP_AMBER_STRICT,),
        (TLP_RED,),
        (unknown,),
        (unknown, TLP_GREEN),
        *((i,) for i in ids),
        *((i, TLP_GREEN) for i in ids),
        *((i, TLP_AMBER) for i in ids),
        *((i, TLP_AMBER_STRICT) for i in named[::4]),
        *((i, TLP_RED) for i in named[2::4]),
    ]
    originators = [p.identity for p in partners if p.country in ("USA", "FRA", "JPN", "GBR")]
    candidates = [ClassSpec(tuple(sorted(m)), (), node_identity) for m in marking_sets]
    candidates += [
        ClassSpec(tuple(sorted(m)), (), originators[n % len(originators)])
        for n, m in enumerate(marking_sets)
    ]
    # Granular markings: an optional field (cut) or a required one (the object is withheld).
    selectors = (
        ("indicator", ("description",)),
        ("note", ("abstract",)),
        ("indicator", ("pattern",)),
        ("note", ("content",)),
    )
    for n, marking in enumerate(ids):
        kind, fields = selectors[n % len(selectors)]
        candidates.append(ClassSpec((TLP_GREEN,), ((marking, fields),), node_identity, kind))
        candidates.append(ClassSpec((TLP_CLEAR,), ((marking, fields),), originators[0], kind))
    chosen: dict[str, ClassSpec] = {}
    for spec in candidates:
        # The owner follows created_by_ref here (an operator's import), so it adds no class.
        key = class_key(_object(spec, 0, node_identity, random.Random(0)), None).id
        chosen.setdefault(key, spec)
        if len(chosen) == CLASSES:
            return list(chosen.values())
    raise SystemExit(f"only {len(chosen)} distinct release classes, {CLASSES} needed")


def _handling(definition: dict[str, Any]) -> dict[str, Any]:
    return next(iter(definition["extensions"].values()))


# ---------------------------------------------------------------------------------------------
# Objects


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _object(spec: ClassSpec, n: int, refer_to: str, rng: random.Random) -> dict[str, Any]:
    """Object number ``n`` of class ``spec``: a small valid indicator or note."""
    kind = spec.type or ("indicator" if n % 3 else "note")
    stamp = _stamp(_START + timedelta(milliseconds=n * 37))
    obj: dict[str, Any] = {
        "type": kind,
        "spec_version": "2.1",
        "id": f"{kind}--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
        "created": stamp,
        "modified": stamp,
        "created_by_ref": spec.originator,
    }
    if spec.markings:
        obj["object_marking_refs"] = list(spec.markings)
    if spec.granular:
        obj["granular_markings"] = [
            {"marking_ref": ref, "selectors": list(fields)} for ref, fields in spec.granular
        ]
    octets = (rng.randrange(1, 224), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))
    ip = ".".join(map(str, octets))
    if kind == "indicator":
        obj |= {
            "name": f"C2 server {ip}",
            "description": f"Command and control server {ip}, seen in a phishing campaign.",
            "pattern": f"[ipv4-addr:value = '{ip}']",
            "pattern_type": "stix",
            "valid_from": stamp,
        }
    else:
        obj |= {
            "abstract": f"Analyst note on {ip}",
            "content": f"{ip} was seen scanning government networks.",
            "object_refs": [refer_to],
        }
    return obj


def generate(
    specs: Sequence[ClassSpec], count: int, refer_to: str, batch: int = LOAD_BATCH
) -> Iterator[list[dict[str, Any]]]:
    """``count`` objects in batches: the first ``len(specs)`` one of each class (so every size
    has every class), the rest spread over the classes with a long tail, as feeds are."""
    rng = random.Random(SEED)
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(specs))]
    out: list[dict[str, Any]] = []
    for n in range(count):
        spec = specs[n] if n < len(specs) else rng.choices(specs, weights)[0]
        out.append(_object(spec, n, refer_to, rng))
        if len(out) == batch:
            yield out
            out = []
    if out:
        yield out


def check_valid(sample: Sequence[dict[str, Any]]) -> None:
    """Fail unless the objects (one per class) pass the validator: the store does not check."""
    for obj in sample:
        errors = validation_errors(obj)
        if errors:
            raise SystemExit(f"generated object {obj['id']} is invalid: {errors}")


# ---------------------------------------------------------------------------------------------
# Measurements


@dataclass
class Row:
    backend: str
    objects: int
    measure: str
    compiled: float | None
    naive: float | None = None
    decisions: str = ""
    extrapolated_from: int | None = None


@dataclass
class Run:
    """One backend at one size."""

    backend: str
    objects: int
    rows: list[Row] = field(default_factory=list)
    redecide_seconds: float = 0.0
    ratios: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class NaiveRun:
    versions: int  # versions actually decided
    seconds: float  # actual seconds
    tally: Counter[tuple[str, str]]


def _since(start: float) -> float:
    return time.perf_counter() - start


def _median_run(repeats: int, action: Callable[[int], Any]) -> tuple[float, list[Any]]:
    """The median seconds of ``repeats`` runs (fewer once REPEAT_BUDGET seconds are spent:
    a slow read at a million objects is timed once) and each run's result."""
    times: list[float] = []
    results: list[Any] = []
    for attempt in range(repeats):
        start = time.perf_counter()
        results.append(action(attempt))
        times.append(_since(start))
        if sum(times) > REPEAT_BUDGET_SECONDS:
            break
    return statistics.median(times), results


def fresh_node(home: Path, url: str | None) -> Node:
    environ = {"LIAISON_HOME": str(home)}
    if url is not None:
        environ["LIAISON_DATABASE_URL"] = url
    node, _ = init_node(Settings.from_env(environ), country=NODE_COUNTRY)
    return node


def set_up_world(node: Node, today: date) -> tuple[list[dict[str, Any]], list[ClassSpec]]:
    """Alliance, rules and the node's marking-definitions in the store; the definitions and
    the class specs."""
    partners = alliance_partners()
    definitions = handling_definitions(node.identity_id)
    specs = class_specs(node.identity_id, definitions, partners)
    with write_transaction(node.engine) as connection:
        save_alliance(connection, partners, alliance_communities())
        set_rules(connection, node_rules())
        record_change(connection, "alliance", {"source": "bench.policy_decisions"})
        redecide(connection, at=today)
        added = add_objects(connection, definitions)
        register_classes(connection, added.classes)
    return definitions, specs


def load_objects(
    node: Node, specs: Sequence[ClassSpec], count: int, console: Console
) -> tuple[float, int]:
    """Store ``count`` objects through add_objects + register_classes, one write transaction
    per batch; the seconds spent in the store (not in generating) and the classes they use."""
    seconds = 0.0
    classes: set[str] = set()
    checked = False
    stored = 0
    for batch in generate(specs, count, node.identity_id):
        if not checked:
            check_valid(batch[: len(specs)])
            checked = True
        start = time.perf_counter()
        with write_transaction(node.engine) as connection:
            added = add_objects(connection, batch)
            register_classes(connection, added.classes)
        seconds += _since(start)
        classes.update(added.classes)
        stored += len(batch)
        if stored % (10 * LOAD_BATCH) == 0 and stored < count:
            console.print(f"  {stored:,} objects stored ({seconds:.0f} s)", style="dim")
    if len(classes) != CLASSES:
        raise SystemExit(f"{count:,} objects span {len(classes)} release classes, not {CLASSES}")
    console.print(f"  loaded {count:,} objects in {seconds:.1f} s", style="dim")
    return seconds, len(classes)


def decide_everything(node: Node, today: date, repeats: int) -> tuple[float, int]:
    def once(_: int) -> None:
        with write_transaction(node.engine) as connection:
            redecide(connection, at=today)

    seconds, _ = _median_run(repeats, once)
    with node.engine.connect() as connection:
        written = connection.execute(sa.select(sa.func.count()).select_from(grants)).scalar_one()
    return seconds, written


def change_trust(node: Node, today: date, attempt: int) -> tuple[float, list[str]]:
    """Re-decide after the partner's trust changes, as ``liaison partner set --trust`` does
    (update, record, re-decide for that partner), with the commit; its trust alternates
    between two levels so every attempt is a real change. The seconds and the changed class
    ids."""
    trust = TRUST_STEPS[attempt % len(TRUST_STEPS)]
    start = time.perf_counter()
    with write_transaction(node.engine) as connection:
        current = next(p for p in read_partners(connection) if p.country == CHANGED_PARTNER)
        update_partner(connection, current.model_copy(update={"trust": trust}))
        record_change(connection, "partner", {"partner": CHANGED_PARTNER, "trust": trust})
        changes = redecide(connection, partners=[CHANGED_PARTNER], at=today)
    return _since(start), sorted({c.class_id for c in changes})


def naive_decisions(
    engine: sa.Engine,
    partners: Sequence[str] | None,
    marking_ids: Sequence[str],
    today: date,
    limit: int | None,
) -> NaiveRun:
    """The per-object loop: read every version (the first ``limit``), parse it, find its
    class key and call the same decision function for each partner. World and marking
    handlings are read once; decisions are tallied, not stored."""
    with engine.connect() as connection:
        start = time.perf_counter()
        world = load_world(connection)
        handlings = marking_handlings(connection, marking_ids)
        codes = sorted(world.context.partners) if partners is None else list(partners)
        query = sa.select(objects.c.body, objects.c.owner).order_by(objects.c.date_added)
        if limit is not None:
            query = query.limit(limit)
        tally: Counter[tuple[str, str]] = Counter()
        versions = 0
        for body, owner in connection.execute(query.execution_options(yield_per=5_000)):
            key = class_key(json.loads(body), owner)
            versions += 1
            for code in codes:
                tally[code, decide_class(key, world, handlings, code, today).decision] += 1
        seconds = _since(start)
    return NaiveRun(versions, seconds, tally)


def expected_tally(
    engine: sa.Engine, partners: Sequence[str] | None, limit: int | None
) -> Counter[tuple[str, str]]:
    """What the stored grants say about the same versions the naive loop decided."""
    with engine.connect() as connection:
        query = sa.select(grants.c.partner, grants.c.class_id, grants.c.decision)
        if partners is not None:
            query = query.where(grants.c.partner.in_(partners))
        by_class: dict[str, list[tuple[str, str]]] = {}
        for partner, class_id, decision in connection.execute(query):
            by_class.setdefault(class_id, []).append((partner, decision))
        rows = sa.select(objects.c.release_class).order_by(objects.c.date_added)
        if limit is not None:
            rows = rows.limit(limit)
        per_class = Counter(connection.execute(rows.execution_options(yield_per=20_000)).scalars())
    tally: Counter[tuple[str, str]] = Counter()
    for class_id, versions in per_class.items():
        for pair in by_class[class_id]:
            tally[pair] += versions
    return tally


def naive_measure(
    engine: sa.Engine,
    partners: Sequence[str] | None,
    marking_ids: Sequence[str],
    today: date,
    total: int,
    sample: int,
    limit_seconds: float,
) -> tuple[float, int | None]:
    """Seconds for the naive loop over all ``total`` versions, and the sample size when it
    was extrapolated. The loop runs in full when ``total`` is within the sample, or when the
    sample says a full run takes at most ``limit_seconds``. Its decisions must match the
    grants."""
    run = naive_decisions(engine, partners, marking_ids, today, sample if total > sample else None)
    if run.versions < total:
        estimate = run.seconds * total / run.versions
        if estimate > limit_seconds:
            _check(run, expected_tally(engine, partners, run.versions))
            return estimate, run.versions
        run = naive_decisions(engine, partners, marking_ids, today, None)
    _check(run, expected_tally(engine, partners, None))
    return run.seconds, None


def _check(run: NaiveRun, expected: Counter[tuple[str, str]]) -> None:
    if run.tally != expected:
        differ = sorted(k for k in set(run.tally) | set(expected) if run.tally[k] != expected[k])
        details = ", ".join(f"{k}: naive {run.tally[k]}, grants {expected[k]}" for k in differ[:5])
        raise SystemExit(f"the naive loop and the stored grants disagree: {details}")


@dataclass
class Store:
    """One backend at one size, open until every size of its backend has been measured."""

    node: Node
    run: Run
    total: int  # stored object versions, with the node's identity and definitions
    classes: int  # stored release classes
    redecide_times: list[float] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


def measure_size(
    backend: str, node: Node, count: int, args: argparse.Namespace, console: Console
) -> Store:
    """Load ``count`` objects and take every measure but the re-decision after a trust
    change, which ``measure_redecisions`` takes for all sizes together."""
    today = date.today()
    run = Run(backend, count)
    definitions, specs = set_up_world(node, today)
    load_seconds, classes = load_objects(node, specs, count, console)
    engine = node.engine
    with engine.connect() as connection:
        total = count_versions(connection)
        stored_classes = connection.execute(
            sa.select(sa.func.count()).select_from(release_classes)
        ).scalar_one()
    run.rows.append(
        Row(backend, count, "load, not compared", load_seconds, decisions=f"{classes} classes")
    )

    console.print("  compiled: decide everything…", style="dim")
    decide_seconds, written = decide_everything(node, today, args.repeats)
    console.print("  read side: visibility counts…", style="dim")
    counts_seconds, _ = _median_of(args.repeats, lambda: _read(engine, visibility_counts))

    marking_ids = sorted(
        {d["id"] for d in definitions}
        | {m for spec in specs for m in spec.markings}
        | {m for spec in specs for m, _ in spec.granular}
    )
    console.print("  naive: decide everything…", style="dim")
    naive_all, all_sample = naive_measure(
        engine, None, marking_ids, today, total, args.sample, args.naive_limit
    )
    console.print(f"  naive: re-decide for {CHANGED_PARTNER}…", style="dim")
    naive_one, one_sample = naive_measure(
        engine, [CHANGED_PARTNER], marking_ids, today, total, args.sample, args.naive_limit
    )
    run.rows += [
        Row(
            backend,
            count,
            "decide everything",
            decide_seconds,
            naive_all,
            f"{written:,} / {_count(total * PARTNERS)}",
            all_sample,
        ),
        Row(
            backend,
            count,
            f"re-decide: {CHANGED_PARTNER} trust",
            None,  # measure_redecisions fills it in
            naive_one,
            f"{stored_classes:,} / {_count(total)}",
            one_sample,
        ),
        Row(backend, count, "read: visibility_counts", counts_seconds),
    ]
    run.ratios["decide everything"] = naive_all / decide_seconds
    return Store(node, run, total, stored_classes)


def redecide_rounds(args: argparse.Namespace) -> int:
    """Re-decisions are cheap and the 2× goal compares two of them: more rounds."""
    return 3 * args.repeats


def measure_redecisions(stores: Sequence[Store], args: argparse.Namespace) -> None:
    """The compiled re-decision after a trust change, in rounds that take every size in turn,
    so that a busy spell on the machine slows every size alike; then the count of objects in
    the changed classes that ``liaison partner set`` reports."""
    today = date.today()
    for attempt in range(redecide_rounds(args)):
        for store in stores:
            seconds, changed = change_trust(store.node, today, attempt)
            store.redecide_times.append(seconds)
            store.changed = store.changed or changed
    for store in stores:
        run = store.run
        row = next(r for r in run.rows if r.measure.startswith("re-decide"))
        row.compiled = statistics.median(store.redecide_times)
        row.measure += f"\n({len(store.changed)} of {store.classes} grants changed)"
        run.redecide_seconds = row.compiled
        assert row.naive is not None
        run.ratios["re-decide after a partner change"] = row.naive / row.compiled
        changed = store.changed
        affected_seconds, affected = _median_of(
            args.repeats,
            lambda node=store.node, changed=changed: _read(
                node.engine, lambda c: count_latest_in_classes(c, changed)
            ),
        )
        run.rows.append(
            Row(
                run.backend,
                run.objects,
                "read: count changed objects",
                affected_seconds,
                decisions=f"{affected:,} objects",
            )
        )


def _read(engine: sa.Engine, query: Callable[[sa.Connection], Any]) -> Any:
    with engine.connect() as connection:
        return query(connection)


def _median_of(repeats: int, action: Callable[[], Any]) -> tuple[float, Any]:
    seconds, results = _median_run(repeats, lambda _: action())
    return seconds, results[0]


def bench_backend(
    backend: str, sizes: Sequence[int], args: argparse.Namespace, console: Console
) -> list[Run]:
    """Every size on one backend; the stores stay open until the re-decisions are measured."""
    label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[backend]
    with ExitStack() as stack:
        admin_url = stack.enter_context(postgres_server()) if backend == "postgresql" else None
        stores: list[Store] = []
        for count in sizes:
            console.print(f"{label}, {count:,} objects…", style="dim")
            home = stack.enter_context(tempfile.TemporaryDirectory(prefix="liaison-bench-"))
            url = stack.enter_context(fresh_database(admin_url)) if admin_url else None
            node = fresh_node(Path(home), url)
            stack.callback(node.engine.dispose)
            stores.append(measure_size(label, node, count, args, console))
        console.print(
            f"{label}: re-decide after a trust change, {redecide_rounds(args)} rounds over "
            "every size…",
            style="dim",
        )
        measure_redecisions(stores, args)
        return [store.run for store in stores]


# ---------------------------------------------------------------------------------------------
# Output


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4f}" if value < 1 else f"{value:,.2f}"


def _ratio(value: float) -> str:
    return f"{value:,.1f}×" if value < 10 else f"{value:,.0f}×"


def _count(value: int) -> str:
    return f"{value / 1e6:.1f}M" if value >= 1_000_000 else f"{value:,}"


def render(runs: Sequence[Run], args: argparse.Namespace) -> Table:
    table = Table(
        title=f"Release decisions: {CLASSES} release classes, {PARTNERS} partners",
    )
    table.add_column("backend")
    table.add_column("objects", justify="right")
    table.add_column("measure")
    table.add_column("compiled s", justify="right")
    table.add_column("naive s", justify="right")
    table.add_column("naive/compiled", justify="right")
    table.add_column("decisions (compiled / naive)", justify="right")
    extrapolated = False
    for run_index, run in enumerate(runs):
        for row_index, row in enumerate(run.rows):
            measure = row.measure
            naive = _seconds(row.naive)
            if row.extrapolated_from is not None:
                extrapolated = True
                naive += " *"
                measure += f"\n* naive: extrapolated from {row.extrapolated_from:,} objects"
            ratio = _ratio(row.naive / row.compiled) if row.naive and row.compiled else "—"
            table.add_row(
                row.backend if row_index == 0 else "",
                f"{row.objects:,}" if row_index == 0 else "",
                measure,
                _seconds(row.compiled),
                naive,
                ratio,
                row.decisions,
                end_section=row_index == len(run.rows) - 1 and run_index < len(runs) - 1,
            )
    notes = [
        f"compiled and reads: median of up to {args.repeats} runs (fewer past "
        f"{REPEAT_BUDGET_SECONDS:g} s), each write a transaction with its commit; "
        f"re-decide = update_partner + record_change + redecide(partners=[{CHANGED_PARTNER}]), "
        f"trust alternating {' / '.join(TRUST_STEPS)}, median of {redecide_rounds(args)} "
        "rounds that take "
        "every size of the backend in turn",
        "naive: per object version read from the objects table, json.loads + class_key + "
        "decide_class for each partner (world and handlings read once); decisions tallied, "
        "not stored, and checked equal to the stored grants",
        "objects: the generated notes and indicators; the store also holds the node's identity "
        "and its marking-definitions (2 more release classes)",
    ]
    if extrapolated:
        notes.append(
            f"* naive timed on the first {args.sample:,} object versions and extrapolated linearly "
            "to all of them"
        )
    table.caption = "\n".join(notes)
    return table


def render_goals(runs: Sequence[Run]) -> Table:
    table = Table(title="Goals")
    table.add_column("backend")
    table.add_column("goal")
    table.add_column("measured", justify="right")
    table.add_column("result")
    for backend in dict.fromkeys(run.backend for run in runs):
        mine = sorted((r for r in runs if r.backend == backend), key=lambda r: r.objects)
        small, large = mine[0], mine[-1]
        if small is large:
            table.add_row(backend, "re-decide: largest / smallest ≤ 2×", "one size only", "—")
        else:
            ratio = large.redecide_seconds / small.redecide_seconds
            table.add_row(
                backend,
                f"re-decide after a partner change, {large.objects:,} vs {small.objects:,} "
                f"objects ≤ {REDECIDE_GOAL:g}×",
                f"{_seconds(large.redecide_seconds)} / {_seconds(small.redecide_seconds)} s "
                f"= {ratio:.2f}×",
                _met(ratio <= REDECIDE_GOAL),
            )
        for name, speedup in large.ratios.items():
            table.add_row(
                backend,
                f"compiled vs naive, {name}, {large.objects:,} objects ≥ {SPEEDUP_GOAL:g}×",
                _ratio(speedup),
                _met(speedup >= SPEEDUP_GOAL),
            )
    return table


def _met(ok: bool) -> str:
    return "[green]met[/green]" if ok else "[red]not met[/red]"


# ---------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.policy_decisions", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--objects",
        type=_sizes,
        default=None,
        help=f"comma-separated sizes, default {','.join(map(str, DEFAULT_OBJECTS))}",
    )
    parser.add_argument("--backends", type=backends, default=BACKENDS, help="default: both")
    parser.add_argument(
        "--sample",
        type=positive,
        default=NAIVE_SAMPLE,
        help=f"object versions the naive loop is timed on at larger sizes (default {NAIVE_SAMPLE})",
    )
    parser.add_argument(
        "--naive-limit",
        type=float,
        default=NAIVE_LIMIT_SECONDS,
        help="run the naive loop in full when the sample predicts at most this many seconds "
        f"(default {NAIVE_LIMIT_SECONDS:g})",
    )
    parser.add_argument(
        "--repeats", type=positive, default=REPEATS, help=f"compiled runs (default {REPEATS})"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{','.join(map(str, QUICK_OBJECTS))} objects unless --objects",
    )
    args = parser.parse_args(argv)
    if args.objects is None:
        args.objects = QUICK_OBJECTS if args.quick else DEFAULT_OBJECTS
    return args


def _sizes(raw: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(part) for part in raw.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated numbers: {raw!r}") from None
    if not sizes or sizes[0] < CLASSES:
        raise argparse.ArgumentTypeError(f"each size must be at least {CLASSES} (one per class)")
    return sizes


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:
        # Written to a file: wide enough for the table rather than 80 columns.
        console = Console(width=max(console.width, 120))
    load = os.getloadavg()[0]
    runs: list[Run] = []
    for backend in args.backends:
        runs += bench_backend(backend, args.objects, args, console)
    console.print(
        f"CPU count: {os.cpu_count()} (1-minute load average at start: {load:.2f}, "
        f"at end: {os.getloadavg()[0]:.2f})"
    )
    console.print(render(runs, args))
    console.print(render_goals(runs))


if __name__ == "__main__":
    main()
