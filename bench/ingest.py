"""Ingest: entity precision and recall on the seeds, documents/s and memory on generated news.

Three measurements of ``liaison ingest``:

- **Entities** on the five seed documents (``../shared/seeds``) against the hand-labelled
  ``tests/ingest/gold_seeds.json``: precision and recall per entity type, micro-averaged and
  per seed, and whether the pipeline groups exactly the gold same-story sets.
- **Throughput** on generated news-like documents of seed size (600-1,200 words; people with
  titles, countries, capitals, organisations, groups, dates; one document in five belongs to
  a pair telling the same story, rewritten): documents/s of the pipeline alone
  (``read_paths`` + ``ingest``, no store) with the time split by stage, and of ``run_ingest``
  into a fresh SQLite node (validation and the store included).
- **Memory**: the pipeline over up to 20,000 generated documents in a fresh process, its
  resident set sampled after 1,000, 5,000, 10,000 and 20,000 documents and once it returns,
  beside a whole run of 1,000 in a process of its own (a run's peak comes at its end, when
  it groups stories); then what is retained, by allocation site (tracemalloc), in another.

    python -m bench.ingest [--documents 1000] [--memory-documents 20000] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from rich.table import Table

from bench.options import positive
from bench.report import Machine, elapsed, verdict, wide_console
from liaison.ingest import entities
from liaison.ingest import pipeline as pipeline_module
from liaison.ingest import read as read_module
from liaison.ingest.pipeline import Ingested, ingest
from liaison.ingest.read import Document, Failure, read_paths
from liaison.ingest.run import run_ingest
from liaison.ingest.sources import SourceRatings
from liaison.node import init_node
from liaison.settings import Settings

DEFAULT_DOCUMENTS = 1_000
QUICK_DOCUMENTS = 200
DEFAULT_MEMORY_DOCUMENTS = 20_000
QUICK_MEMORY_DOCUMENTS = 2_000
CHECKPOINTS = (1_000, 5_000, 10_000, 20_000)
# tracemalloc slows the pipeline several times: the retained objects are traced on fewer.
TRACED_DOCUMENTS = 2_000
QUICK_TRACED_DOCUMENTS = 500
TRACED_TOP = 5
TRACED_FROM = 10  # growth is counted from this document on, after the first allocations
# Goals of the issue.
RATE_GOAL = 100  # documents/s
FLAT_GOAL = 2.0  # peak RSS at the largest size over peak RSS at 1,000 documents
# RSS added per document from which memory is said to grow with the documents, not flat.
LINEAR_KIB = 1.0

SEED = 20250614
REPO = Path(__file__).resolve().parents[1]
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
GOLD = REPO / "tests" / "ingest" / "gold_seeds.json"
AUTHOR = "identity--00000000-0000-4000-8000-000000000001"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
# One document in PAIR_EVERY starts a pair: it and the next one tell the same story.
PAIR_EVERY = 10
KEPT_PARAGRAPHS = 0.6  # of the first telling, in the rewritten one, word for word

PIPELINE = "pipeline: read_paths + ingest (no store)"
RUN_INGEST = "run_ingest into SQLite (pipeline + validation + store)"


# --- the generated corpus --------------------------------------------------------------------

# (country, demonym, capital) as news text writes them.
COUNTRIES = (
    ("Canada", "Canadian", "Ottawa"), ("United States", "American", "Washington"),
    ("United Kingdom", "British", "London"), ("France", "French", "Paris"),
    ("Germany", "German", "Berlin"), ("Italy", "Italian", "Rome"), ("Spain", "Spanish", "Madrid"),
    ("Poland", "Polish", "Warsaw"), ("Ukraine", "Ukrainian", "Kyiv"),
    ("Russia", "Russian", "Moscow"), ("Latvia", "Latvian", "Riga"),
    ("Estonia", "Estonian", "Tallinn"), ("Lithuania", "Lithuanian", "Vilnius"),
    ("Belgium", "Belgian", "Brussels"), ("Netherlands", "Dutch", "Amsterdam"),
    ("Norway", "Norwegian", "Oslo"), ("Sweden", "Swedish", "Stockholm"),
    ("Finland", "Finnish", "Helsinki"), ("Denmark", "Danish", "Copenhagen"),
    ("Turkey", "Turkish", "Ankara"), ("Greece", "Greek", "Athens"),
    ("Romania", "Romanian", "Bucharest"), ("Hungary", "Hungarian", "Budapest"),
    ("Israel", "Israeli", "Jerusalem"), ("Iran", "Iranian", "Tehran"), ("Iraq", "Iraqi", "Baghdad"),
    ("Syria", "Syrian", "Damascus"), ("Jordan", "Jordanian", "Amman"),
    ("Egypt", "Egyptian", "Cairo"), ("Saudi Arabia", "Saudi", "Riyadh"),
    ("Afghanistan", "Afghan", "Kabul"), ("Pakistan", "Pakistani", "Islamabad"),
    ("India", "Indian", "New Delhi"), ("China", "Chinese", "Beijing"),
    ("Japan", "Japanese", "Tokyo"), ("South Korea", "South Korean", "Seoul"),
    ("North Korea", "North Korean", "Pyongyang"), ("Australia", "Australian", "Canberra"),
    ("New Zealand", "New Zealand", "Wellington"), ("Mexico", "Mexican", "Mexico City"),
    ("Brazil", "Brazilian", "Brasilia"), ("Nigeria", "Nigerian", "Abuja"),
    ("Kenya", "Kenyan", "Nairobi"), ("Somalia", "Somali", "Mogadishu"),
    ("Mali", "Malian", "Bamako"), ("Yemen", "Yemeni", "Sanaa"),
    ("Lebanon", "Lebanese", "Beirut"), ("Georgia", "Georgian", "Tbilisi"),
    ("Philippines", "Filipino", "Manila"), ("Indonesia", "Indonesian", "Jakarta"),
)  # fmt: skip
ORGANIZATIONS = (
    "NATO", "CSIS", "the White House", "the European Union", "the United Nations", "Interpol",
    "Europol", "the FBI", "the CIA", "MI5", "GCHQ", "the Kremlin", "the RCMP", "Five Eyes",
    "the G7", "the Department of National Defence", "Global Affairs Canada", "the Pentagon",
    "the Communications Security Establishment", "the Home Office", "the OSCE", "ASIO",
    "the International Atomic Energy Agency", "the World Health Organization", "Mossad",
)  # fmt: skip
GROUPS = (
    "ISIS", "the Islamic State", "the Taliban", "al-Qaeda", "al-Shabaab", "Boko Haram",
    "Hezbollah", "the Houthis", "the Haqqani Network", "APT28", "Sandworm", "the Lazarus Group",
    "Volt Typhoon", "the Wagner Group", "Lashkar-e-Taiba",
)  # fmt: skip
TITLES = (
    "Prime Minister", "President", "Foreign Minister", "Defence Minister", "Secretary General",
    "Ambassador", "Gen.", "Director", "Minister", "Senator", "Public Safety Minister",
)  # fmt: skip
GIVEN_NAMES = (
    "Adam", "Alice", "Andrew", "Anna", "Boris", "Brian", "Carlos", "Catherine", "Claire",
    "Daniel", "David", "Diana", "Dmitri", "Elizabeth", "Emma", "Eric", "François", "Greg",
    "Hannah", "Helen", "Ivan", "Jacques", "James", "Jan", "Jean", "Jens", "Joan", "John",
    "Julia", "Karen", "Karl", "Kate", "Lars", "Laura", "Louise", "Marc", "Maria", "Mark",
    "Martin", "Mary", "Michael", "Michel", "Nathan", "Nicole", "Olga", "Omar", "Patrick",
    "Paul", "Peter", "Pierre", "Rachel", "Richard", "Robert", "Sarah", "Sergei", "Sophie",
    "Stephen", "Susan", "Thomas", "Viktor", "William", "Yuri",
)  # fmt: skip
SURNAMES = (
    "Abbott", "Achterberg", "Baptiste", "Barclay", "Belanger", "Bergstrom", "Blackwood",
    "Brandt", "Castellano", "Chaudhry", "Cormier", "Dalgaard", "Delacroix", "Dubinsky",
    "Eklund", "Esposito", "Fairbanks", "Fitzgerald", "Gallagher", "Gauthier", "Grabowski",
    "Halvorsen", "Hargreaves", "Ibrahimov", "Jankowski", "Kaminski", "Karlsson", "Kowalczyk",
    "Lachance", "Lindqvist", "Lombardi", "Macintyre", "Marchetti", "Novak", "Oyelaran",
    "Petrenko", "Pettersen", "Quinlan", "Rasmussen", "Rousseau", "Salvatori", "Schuster",
    "Sokolov", "Strand", "Tremblay", "Van Buren", "Vasquez", "Whitfield", "Wojcik", "Zielinski",
    "Okonkwo", "Haddad", "Nakamura", "Takahashi", "Moreau", "Lefebvre", "Kovalenko", "Ostrowski",
    "Sandoval", "Underwood",
)  # fmt: skip
NOUNS = (
    "intelligence", "threat", "agreement", "deployment", "investigation", "briefing", "budget",
    "alliance", "strategy", "mission", "sanction", "ceasefire", "exercise", "network", "review",
    "report", "programme", "warning", "summit", "framework", "partnership", "operation",
    "assessment", "commitment", "border", "patrol", "pipeline", "election", "leak", "policy",
)  # fmt: skip
ADJECTIVES = (
    "sensitive", "classified", "regional", "joint", "sweeping", "fragile", "unprecedented",
    "bilateral", "costly", "urgent", "long-term", "covert", "public", "detailed", "growing",
    "military", "diplomatic", "economic", "secret", "new", "former", "domestic", "coordinated",
)  # fmt: skip
VERBS = (
    "expand", "review", "strengthen", "delay", "fund", "monitor", "share", "suspend", "defend",
    "renew", "coordinate", "question", "support", "restrict", "investigate", "announce",
)  # fmt: skip
PAST = (
    "expanded", "reviewed", "criticized", "delayed", "funded", "monitored", "shared", "suspended",
    "defended", "renewed", "questioned", "supported", "restricted", "announced", "rejected",
)  # fmt: skip
PERIODS = ("days", "weeks", "months", "years", "hours")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
# {P} a person's first mention (title and full name), {S} a later one (surname); {C} a
# country, {D} its demonym, {K} a capital, {O} an organisation, {G} a group; the rest filler.
SENTENCES = (
    "{P} said on {day} that {C} would {verb} its {adj} {noun} with {O}.",
    "“We are going to {verb} the {noun} and {verb} our {adj} {noun},” {S} told reporters in {K}.",
    "{O} has come under fire in recent {period} over {adj} {noun} linked to {G}.",
    "{G} claimed the attack in {K}, which killed {n} people and wounded {n} others.",
    "Officials in {K} said {n} {nouns} had been {past} since {month}.",
    "{D} officials {past} the {adj} {noun} after a meeting with {P}.",
    "{S} added that the {noun} would be {past} by {O} before {month}.",
    "The {adj} {noun} was {past} by {D} diplomats, according to {a_noun} seen by reporters.",
    "Analysts said {C} and {C} had {past} {a_adj} {noun} on {G} for {n} {period}.",
    "{P}, speaking in {K}, {past} calls to {verb} the {noun}.",
    "A spokesperson for {O} declined to comment on the {adj} {noun} on {day}.",
    "The {noun} follows {n} {period} of {adj} talks between {C} and {C}.",
    "{S} said {C} had “no intention” to {verb} the {noun} while {G} remained active.",
    "Critics in {C} argued the {adj} {noun} would {verb} the {noun} for {n} {period}.",
    "{D} troops have been stationed in {C} since {month} {year} as part of a {noun}.",
    "The attack by {G} in {K} was condemned by {O} and by {D} leaders.",
    "It was not immediately clear whether {O} would {verb} the {adj} {noun}.",
    "{S} is expected to travel to {K} on {day} to {verb} the {noun} with {O} officials.",
    "The {noun} cost about ${n} million, a figure {S} {past} as {adj}.",
    "Several {adj} {nouns} were {past} in {month}, the {D} government said.",
)  # fmt: skip
FILLER = (
    "The {adj} {noun} {past} {a_adj} {noun} for {n} {period}, and the {noun} was {past}.",
    "Observers said the {noun} could {verb} the {adj} {noun} within {n} {period}.",
    "The {noun} has been {past} several times since {month} {year}.",
    "Some {nouns} were {past} in private, while the {adj} {noun} remained {adj}.",
    "{a_adj} {noun} published on {day} {past} the {noun} in {n} sections.",
)  # fmt: skip
HEADLINES = (
    "{D} officials warn of {adj} {noun} after talks in {K}",
    "{S} says {C} will {verb} {noun} with allies",
    "{O} to {verb} {adj} {noun} as {G} threat grows",
    "{C} and {C} sign {adj} {noun} in {K}",
)  # fmt: skip


@dataclass(frozen=True)
class Person:
    title: str
    given: str
    surname: str
    demonym: str | None


@dataclass(frozen=True)
class Story:
    """The facts a generated document tells; a pair's two documents share them."""

    day: date
    people: tuple[Person, ...]
    countries: tuple[tuple[str, str, str], ...]
    organizations: tuple[str, ...]
    groups: tuple[str, ...]
    words: int


def story_of(rng: random.Random) -> Story:
    countries = tuple(rng.sample(COUNTRIES, rng.randint(4, 7)))
    people = tuple(
        Person(
            rng.choice(TITLES),
            rng.choice(GIVEN_NAMES),
            rng.choice(SURNAMES),
            rng.choice(countries)[1] if rng.random() < 0.5 else None,
        )
        for _ in range(rng.randint(3, 5))
    )
    day = date(2012, 1, 1) + timedelta(days=rng.randrange(13 * 365))
    organizations = tuple(rng.sample(ORGANIZATIONS, rng.randint(2, 4)))
    groups = tuple(rng.sample(GROUPS, rng.randint(1, 2)))
    return Story(day, people, countries, organizations, groups, rng.randint(600, 1_200))


class Telling:
    """One document's words for a story: who has been named in full so far, and the slots."""

    def __init__(self, story: Story, rng: random.Random) -> None:
        self.story, self.rng = story, rng
        self.named: set[Person] = set()

    def fill(self, template: str) -> str:
        rng, story = self.rng, self.story
        slots: dict[str, Callable[[], str]] = {
            "P": self._full,
            "S": self._surname,
            "C": lambda: rng.choice(story.countries)[0],
            "D": lambda: rng.choice(story.countries)[1],
            "K": lambda: rng.choice(story.countries)[2],
            "O": lambda: rng.choice(story.organizations),
            "G": lambda: rng.choice(story.groups),
            "noun": lambda: rng.choice(NOUNS),
            "nouns": lambda: _plural(rng.choice(NOUNS)),
            "adj": lambda: rng.choice(ADJECTIVES),
            "a_adj": lambda: _article(rng.choice(ADJECTIVES)),
            "a_noun": lambda: _article(rng.choice(NOUNS)),
            "verb": lambda: rng.choice(VERBS),
            "past": lambda: rng.choice(PAST),
            "period": lambda: rng.choice(PERIODS),
            "day": lambda: rng.choice(DAYS),
            "month": lambda: rng.choice(MONTHS),
            "year": lambda: str(rng.randint(2001, story.day.year)),
            "n": lambda: str(rng.randint(2, 400)),
        }
        parts = template.split("{")
        out = [parts[0]]
        for part in parts[1:]:
            name, rest = part.split("}", 1)
            out.append(slots[name]())
            out.append(rest)
        text = "".join(out)
        return text[0].upper() + text[1:]

    def _full(self) -> str:
        person = self.rng.choice(self.story.people)
        self.named.add(person)
        name = f"{person.title} {person.given} {person.surname}"
        return f"{person.demonym} {name}" if person.demonym else name

    def _surname(self) -> str:
        named = [p for p in self.story.people if p in self.named]
        return self.rng.choice(named).surname if named else self._full()

    def paragraph(self) -> str:
        count = self.rng.randint(2, 4)
        return " ".join(
            self.fill(self.rng.choice(FILLER if self.rng.random() < 0.25 else SENTENCES))
            for _ in range(count)
        )


def _plural(noun: str) -> str:
    return noun[:-1] + "ies" if noun.endswith("y") else noun + "s"


def _article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def tell(story: Story, rng: random.Random, kept: Sequence[str] = ()) -> tuple[str, list[str]]:
    """A document telling ``story``: its text and its paragraphs. ``kept``: another telling's
    paragraphs, each reused word for word with probability KEPT_PARAGRAPHS."""
    telling = Telling(story, rng)
    city = story.countries[0][2]
    dateline = f"{story.day:%B} {story.day.day}, {story.day.year}"
    paragraphs = [f"{city.upper()} – {telling.fill(SENTENCES[0])}"]
    for old in kept[1:]:
        if rng.random() < KEPT_PARAGRAPHS:
            paragraphs.append(old)
            telling.named.update(story.people)  # reused text may name anyone
        else:
            paragraphs.append(telling.paragraph())
    words = sum(len(p.split()) for p in paragraphs)
    while words < story.words:
        paragraphs.append(telling.paragraph())
        words += len(paragraphs[-1].split())
    headline = telling.fill(rng.choice(HEADLINES))
    return "\n\n".join([headline, f"Published {dateline}", *paragraphs]) + "\n", paragraphs


def generate(directory: Path, count: int) -> list[Path]:
    """``count`` documents written to ``directory``; document i is the same at every count."""
    paths: list[Path] = []
    previous: tuple[Story, list[str]] | None = None
    for number in range(count):
        rng = random.Random(SEED * 1_000_003 + number)
        if number % PAIR_EVERY == 1 and previous is not None:
            story, kept = previous  # the same story, told again by another outlet
            text, _ = tell(story, rng, kept)
            previous = None
        else:
            story = story_of(rng)
            text, paragraphs = tell(story, rng)
            previous = (story, paragraphs) if number % PAIR_EVERY == 0 else None
        path = directory / f"{number:06d}.txt"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def expected_pairs(paths: Sequence[Path]) -> set[frozenset[str]]:
    return {
        frozenset((str(paths[i]), str(paths[i + 1]))) for i in range(0, len(paths) - 1, PAIR_EVERY)
    }


# --- entities on the seeds -------------------------------------------------------------------


@dataclass
class Counts:
    expected: int = 0
    found: int = 0
    correct: int = 0

    def add(self, expected: set[str], found: set[str]) -> None:
        self.expected += len(expected)
        self.found += len(found)
        self.correct += len(expected & found)

    @property
    def precision(self) -> float:
        return self.correct / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.expected if self.expected else 1.0


@dataclass
class Accuracy:
    total: dict[str, Counts] = field(default_factory=dict)  # kind (and "all") -> counts
    per_seed: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    gold_stories: set[frozenset[str]] = field(default_factory=set)
    found_stories: set[frozenset[str]] = field(default_factory=set)


def _names(names: Sequence[str]) -> dict[str, str]:
    """Normalized name -> the name as written, as the tests compare names."""
    return {entities.normalized_name(name): name for name in names}


def bench_accuracy(seeds: Path) -> Accuracy:
    gold = json.loads(GOLD.read_text(encoding="utf-8"))
    documents = [d for d in read_paths([seeds]) if isinstance(d, Document)]
    accuracy = Accuracy(total={kind: Counts() for kind in (*entities.KINDS, "all")})
    for document in documents:
        seed = Path(document.origin).name
        labelled = gold["documents"].get(seed)
        if labelled is None:
            continue
        found = entities.names_by_kind(entities.extract(document.text)[0])
        # Per seed, the score the tests hold to their floors.
        accuracy.per_seed[seed] = entities.score(labelled, found)
        for kind in entities.KINDS:
            want = _names(labelled.get(kind, []))
            got = _names(found[kind])
            for counter in (accuracy.total[kind], accuracy.total["all"]):
                counter.add(set(want), set(got))
            short = seed[:3]
            accuracy.missed += [f"{short} {kind} {want[k]}" for k in sorted(set(want) - set(got))]
            accuracy.extra += [f"{short} {kind} {got[k]}" for k in sorted(set(got) - set(want))]
    result = ingest(read_paths([seeds]), AUTHOR, SourceRatings(), now=NOW)
    accuracy.found_stories = found_stories(result, lambda origin: Path(origin).name)
    accuracy.gold_stories = {frozenset(g) for g in gold["same_story"]}
    return accuracy


def render_accuracy(accuracy: Accuracy) -> list[Table]:
    total = Table(title="Entities on the 5 seeds against gold_seeds.json (micro-averaged)")
    total.add_column("entity type")
    for heading in ("gold", "found", "correct", "precision", "recall"):
        total.add_column(heading, justify="right")
    for kind, c in accuracy.total.items():
        total.add_row(
            kind,
            str(c.expected),
            str(c.found),
            str(c.correct),
            f"{c.precision:.2f}",
            f"{c.recall:.2f}",
        )
    total.caption = "\n".join(
        [
            "Names compared as entities.normalized_name (case, accents, punctuation).",
            "missed: " + ("; ".join(accuracy.missed) or "none"),
            "not in gold: " + ("; ".join(accuracy.extra) or "none"),
        ]
    )
    per_seed = Table(title="Per seed: precision / recall")
    per_seed.add_column("seed")
    for kind in entities.KINDS:
        per_seed.add_column(kind, justify="right")
    for seed, scores in accuracy.per_seed.items():
        per_seed.add_row(seed, *(f"{p:.2f} / {r:.2f}" for p, r in scores.values()))
    per_seed.caption = "1.00 where there is nothing to find, or nothing was found."
    return [total, per_seed]


def _story_names(stories_: set[frozenset[str]]) -> str:
    groups = sorted(sorted(name[:3] for name in group) for group in stories_)
    return ", ".join("{" + " ".join(g) + "}" for g in groups) or "none"


# --- throughput ------------------------------------------------------------------------------


@dataclass
class Throughput:
    documents: int
    words: int
    pipeline_seconds: float = 0.0
    pipeline_cpu: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    run_seconds: float | None = None
    run_cpu: float = 0.0
    run_counts: dict[str, int] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    objects: int = 0
    failures: int = 0
    pairs: int = 0
    pairs_found: int = 0
    stories_found: int = 0
    stories_wrong: list[str] = field(default_factory=list)


def warm_up(paths: Sequence[Path]) -> None:
    """Build the matcher, load dateparser's languages and read a few files, untimed."""
    ingest(read_paths(paths[:10]), AUTHOR, SourceRatings(), now=NOW)


def bench_pipeline(paths: Sequence[Path]) -> Throughput:
    warm_up(paths)
    words = sum(len(p.read_text(encoding="utf-8").split()) for p in paths)
    measured = Throughput(len(paths), words)
    seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)
    with ExitStack() as stack:
        for target, name, stage in TIMED_CALLS:
            stack.enter_context(_timed(target, name, seconds, stage))
        gc.collect()
        cpu, start = time.process_time(), time.perf_counter()
        items = _timed_items(read_paths(paths), seconds)
        result = ingest(items, AUTHOR, SourceRatings(), now=NOW)
        measured.pipeline_seconds = elapsed(start)
        measured.pipeline_cpu = time.process_time() - cpu
    measured.stage_seconds = seconds
    measured.objects = len(result.objects)
    measured.failures = len(result.failures)
    _check_stories(result, paths, measured)
    return measured


# Stages of the pipeline, timed inside one run by wrapping the calls ingest makes.
READ = "read_paths: read, clean, headline, date"
CLEAN = "  of which clean_text"
DATE = "  of which date_in (dateparser)"
EXTRACT = "entities.extract"
ENTITY_OBJECTS = "entities.entity_objects (entity and relationship STIX)"
GROUP = "stories.stories (MinHash LSH grouping)"
GRADE = "admiralty.grade (copies of reports and groupings)"
REST = "rest: report dicts, sha256, ids, bookkeeping"
STAGES = (READ, CLEAN, DATE, EXTRACT, ENTITY_OBJECTS, GROUP, GRADE)
# Sub-stages: already counted in the stage above them.
NESTED = (CLEAN, DATE)
TIMED_CALLS: tuple[tuple[Any, str, str], ...] = (
    (read_module, "clean_text", CLEAN),
    (read_module, "date_in", DATE),
    (entities, "extract", EXTRACT),
    (entities, "entity_objects", ENTITY_OBJECTS),
    (pipeline_module, "stories", GROUP),
    (pipeline_module, "grade", GRADE),
)


@contextmanager
def _timed(target: Any, name: str, seconds: dict[str, float], stage: str) -> Iterator[None]:
    """``target.name`` replaced, while the context lasts, by a wrapper adding its time to
    ``seconds[stage]``: ingest looks these names up at each call."""
    original = getattr(target, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds[stage] += time.perf_counter() - start

    with mock.patch.object(target, name, wrapper):
        yield


def _timed_items(items: Iterator[Document | Failure], seconds: dict[str, float]) -> Iterator[Any]:
    """``items``, the time spent producing each (reading, not ingesting) added to READ."""
    while True:
        start = time.perf_counter()
        try:
            item = next(items)
        except StopIteration:
            return
        finally:
            seconds[READ] += time.perf_counter() - start
        yield item


def found_stories(result: Ingested, name: Callable[[str], str]) -> set[frozenset[str]]:
    """The stories the pipeline found, each as the ``name`` of its documents' origins."""
    groups: dict[str, set[str]] = {}
    for item in result.results:
        if item.story is not None:
            groups.setdefault(item.story, set()).add(name(item.origin))
    return {frozenset(g) for g in groups.values()}


def _check_stories(result: Ingested, paths: Sequence[Path], measured: Throughput) -> None:
    """The generated pairs against the stories the pipeline found."""
    found = found_stories(result, str)
    pairs = expected_pairs(paths)
    measured.pairs = len(pairs)
    measured.pairs_found = len(pairs & found)
    measured.stories_found = len(found)
    measured.stories_wrong = sorted(
        "{" + " ".join(sorted(Path(o).stem for o in g)) + "}" for g in found - pairs
    )


def bench_run_ingest(paths: Sequence[Path], measured: Throughput) -> None:
    with tempfile.TemporaryDirectory(prefix="liaison-bench-ingest-") as directory:
        settings = Settings.from_env(
            {"LIAISON_HOME": directory, "LIAISON_DATABASE_URL": f"sqlite:///{directory}/l.db"}
        )
        node, _ = init_node(settings)
        try:
            gc.collect()
            cpu, start = _cpu_with_workers(), time.perf_counter()
            run = run_ingest(node, paths)
            measured.run_seconds = elapsed(start)
            measured.run_cpu = _cpu_with_workers() - cpu
        finally:
            node.engine.dispose()
    if run.imported is not None:
        for status in ("added", "present", "rejected"):
            measured.run_counts[status] = run.imported.count(status)
        measured.rejected = [f"{s.id}: {'; '.join(s.messages)}" for s in run.imported.rejected[:3]]


def _cpu_with_workers() -> float:
    """CPU seconds of this process and of its finished children (the validator workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def render_throughput(measured: Throughput) -> list[Table]:
    n = measured.documents
    table = Table(
        title=f"Throughput, {n:,} generated documents ({measured.words / n:,.0f} words on average)"
    )
    table.add_column("run")
    for heading in ("documents", "seconds", "documents/s", "CPU seconds", f"goal ≥ {RATE_GOAL}/s"):
        table.add_column(heading, justify="right")
    runs = [(PIPELINE, measured.pipeline_seconds, measured.pipeline_cpu)]
    if measured.run_seconds is not None:
        runs.append((RUN_INGEST, measured.run_seconds, measured.run_cpu))
    for label, seconds, cpu in runs:
        rate = n / seconds
        table.add_row(
            label,
            f"{n:,}",
            f"{seconds:.2f}",
            f"{rate:,.0f}",
            f"{cpu:.2f}",
            verdict(rate >= RATE_GOAL),
        )
    notes = [
        "CPU seconds: of this process, and for run_ingest also of its validator workers.",
        f"The pipeline made {measured.objects:,} STIX objects; {measured.failures} documents "
        "failed to read.",
        f"Same story: {measured.pairs_found} of the {measured.pairs} generated pairs grouped "
        f"exactly; {measured.stories_found} stories found"
        + (
            f", {len(measured.stories_wrong)} not a generated pair: "
            + ", ".join(measured.stories_wrong[:5])
            if measured.stories_wrong
            else ""
        )
        + ".",
    ]
    if measured.run_seconds is not None:
        counts = ", ".join(f"{v:,} {k}" for k, v in measured.run_counts.items())
        notes.append(
            f"run_ingest imported {counts} (validators: one process per core); the import is "
            f"≈ {measured.run_seconds - measured.pipeline_seconds:.2f} s of it (run_ingest less "
            "the pipeline run)."
        )
        notes += [f"rejected: {r}" for r in measured.rejected]
    table.caption = "\n".join(notes)

    stages = Table(title=f"Where the pipeline's time goes, {n:,} documents (one run)")
    stages.add_column("stage")
    for heading in ("seconds", "ms/document", "share"):
        stages.add_column(heading, justify="right")
    seconds = measured.stage_seconds
    counted = sum(v for k, v in seconds.items() if k not in NESTED)
    rows = [*seconds.items(), (REST, measured.pipeline_seconds - counted)]
    rows.append(("pipeline, end to end", measured.pipeline_seconds))
    for label, value in rows:
        stages.add_row(
            label,
            f"{value:.2f}",
            f"{value * 1000 / n:.2f}",
            f"{value / measured.pipeline_seconds:.0%}",
        )
    stages.caption = (
        "Wall-clock time inside each call ingest makes (wrapped for this run); "
        "rest: the run less the stages."
    )
    return [table, stages]


# --- memory ----------------------------------------------------------------------------------


def _status_kib(field_name: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS now, VmHWM the peak so far)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field_name} in /proc/self/status")


def _memory_sample(documents: int, seconds: float) -> dict[str, Any]:
    """The process's RSS now and its peak so far, after ``documents`` in ``seconds``."""
    return {
        "documents": documents,
        "rss": _status_kib("VmRSS"),
        "peak": _status_kib("VmHWM"),
        "seconds": seconds,
    }


def memory_child(directory: Path, count: int, checkpoints: Sequence[int]) -> dict[str, Any]:
    """Run in a fresh process: the pipeline over the first ``count`` documents, RSS sampled."""
    paths = sorted(directory.glob("*.txt"))[:count]
    warm_up(paths)
    gc.collect()
    samples = [_memory_sample(0, 0.0)]
    done = 0
    start = time.perf_counter()

    def sample() -> None:
        nonlocal done
        done += 1
        if done in checkpoints:
            samples.append(_memory_sample(done, elapsed(start)))

    result = ingest(read_paths(paths), AUTHOR, SourceRatings(), now=NOW, on_document=sample)
    # RSS is read before the objects are counted: counting them loads them all.
    after = {**_memory_sample(done, elapsed(start)), "objects": len(result.objects)}
    return {"samples": samples, "after": after}


def traced_child(directory: Path, count: int) -> dict[str, Any]:
    """Run in a fresh process: what the pipeline holds on to, by allocation site, between its
    TRACED_FROM-th document and its last one, and after it returns."""
    paths = sorted(directory.glob("*.txt"))[:count]
    warm_up(paths)
    gc.collect()
    tracemalloc.start()
    snapshots: dict[str, tracemalloc.Snapshot] = {}
    done = 0

    def sample() -> None:
        nonlocal done
        done += 1
        if done == TRACED_FROM:
            snapshots["first"] = tracemalloc.take_snapshot()
        elif done == count:
            snapshots["last"] = tracemalloc.take_snapshot()

    result = ingest(read_paths(paths), AUTHOR, SourceRatings(), now=NOW, on_document=sample)
    gc.collect()  # what is garbage is not retained
    after = tracemalloc.take_snapshot()
    traced, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    sites = []
    for when, snapshot in (("during", snapshots["last"]), ("returned", after)):
        for diff in snapshot.compare_to(snapshots["first"], "lineno")[:TRACED_TOP]:
            frame = diff.traceback[0]
            sites.append(
                {
                    "when": when,
                    "site": f"{_short(frame.filename)}:{frame.lineno}",
                    "bytes": diff.size_diff,
                    "blocks": diff.count_diff,
                }
            )
    during = sum(stat.size for stat in snapshots["last"].statistics("filename"))
    return {"documents": count, "sites": sites, "during": during, "traced": traced, "peak": peak}


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/src/", "/lib/python"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def _child(*arguments: str) -> dict[str, Any]:
    """The JSON that ``python -m bench.ingest ARGUMENTS`` prints last, from a fresh process."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.ingest", *arguments],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(arguments[:1])} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def render_memory(memory: dict[str, Any], small: dict[str, Any] | None, documents: int) -> Table:
    table = Table(title=f"Memory of the pipeline over {documents:,} generated documents")
    table.add_column("documents read")
    for heading in ("RSS MiB", "peak RSS MiB", "above start MiB", "KiB/document", "documents/s"):
        table.add_column(heading, justify="right")
    for label, run, row in _memory_rows(memory, small):
        read = row["documents"]
        grown = row["rss"] - run["samples"][0]["rss"]
        table.add_row(
            label,
            f"{row['rss'] / 1024:,.0f}",
            f"{row['peak'] / 1024:,.0f}",
            f"{grown / 1024:,.0f}",
            f"{grown / read:,.1f}" if read else "",
            f"{read / row['seconds']:,.0f}" if row["seconds"] else "",
        )
    table.caption = (
        "RSS: VmRSS of a fresh process, sampled through on_document (before grouping, which "
        "runs once all documents are read); peak: VmHWM, the most the process held so far. "
        "KiB/document: RSS above the start over the documents read."
    )
    return table


def _memory_rows(
    memory: dict[str, Any], small: dict[str, Any] | None
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    rows = [("0 (after warm-up)", memory, memory["samples"][0])]
    rows += [(f"{s['documents']:,}", memory, s) for s in memory["samples"][1:]]
    rows.append(("after ingest returned (whole run)", memory, memory["after"]))
    if small is not None:
        count = small["after"]["documents"]
        rows.append((f"whole run of {count:,}, own process", small, small["after"]))
    return rows


def render_traced(traced: dict[str, Any]) -> Table:
    table = Table(
        title=f"Retained by the pipeline (tracemalloc, {traced['documents']:,} documents, "
        f"top {TRACED_TOP} allocation sites, growth since document {TRACED_FROM})"
    )
    table.add_column("when")
    table.add_column("allocated at")
    for heading in ("MiB", "blocks", "bytes/document"):
        table.add_column(heading, justify="right")
    per = traced["documents"] - TRACED_FROM
    for site in traced["sites"]:
        table.add_row(
            "before grouping" if site["when"] == "during" else "after ingest returned",
            site["site"],
            f"{site['bytes'] / 2**20:,.1f}",
            f"{site['blocks']:,}",
            f"{site['bytes'] / per:,.0f}",
        )
    table.caption = (
        f"traced: {traced['during'] / 2**20:,.0f} MiB at the last document (before grouping), "
        f"{traced['traced'] / 2**20:,.0f} MiB after ingest returned, "
        f"{traced['peak'] / 2**20:,.0f} MiB at the peak (grouping)"
    )
    return table


@dataclass(frozen=True)
class Growth:
    ratio: float  # peak RSS of the whole run at the largest size over that at the smallest
    low: int
    high: int
    reading: float  # KiB of RSS per document while reading, between the two checkpoints
    whole_run: bool  # False: peaks at checkpoints (before grouping), no run of ``low`` alone


def growth(memory: dict[str, Any], small: dict[str, Any] | None) -> Growth | None:
    samples = [s for s in memory["samples"] if s["documents"] >= CHECKPOINTS[0]]
    if len(samples) < 2:
        return None
    first, last = samples[0], samples[-1]
    reading = (last["rss"] - first["rss"]) / (last["documents"] - first["documents"])
    if small is None:
        ratio = last["peak"] / first["peak"]
        return Growth(ratio, first["documents"], last["documents"], reading, False)
    ratio = memory["after"]["peak"] / small["after"]["peak"]
    low, high = small["after"]["documents"], memory["after"]["documents"]
    return Growth(ratio, low, high, reading, True)


# --- goals and main --------------------------------------------------------------------------


def goals(
    measured: Throughput, memory: dict[str, Any] | None, small: dict[str, Any] | None, load: float
) -> Table:
    table = Table(title="Goals")
    table.add_column("goal")
    table.add_column("measured")
    table.add_column("result")
    n = measured.documents
    for label, seconds, cpu in (
        (PIPELINE, measured.pipeline_seconds, measured.pipeline_cpu),
        (RUN_INGEST, measured.run_seconds, measured.run_cpu),
    ):
        goal = f"≥ {RATE_GOAL} documents/s, {label}"
        if seconds is None:
            table.add_row(goal, "—", "not measured")
            continue
        rate = n / seconds
        table.add_row(
            goal,
            f"{rate:,.0f} documents/s on {n:,} ({n / cpu:,.0f} per CPU second)",
            verdict(rate >= RATE_GOAL),
        )
    goal = (
        f"memory flat on {DEFAULT_MEMORY_DOCUMENTS:,} (peak RSS < {FLAT_GOAL:.0f}× that at 1,000)"
    )
    grown = growth(memory, small) if memory else None
    if grown is None:
        table.add_row(goal, "—", "not measured")
    else:
        what = "whole-run peak" if grown.whole_run else "peak before grouping"
        measured_text = (
            f"{what} {grown.ratio:.2f}× ({grown.low:,} → {grown.high:,}); RSS "
            f"+{grown.reading:,.1f} KiB per document read"
        )
        if grown.high < DEFAULT_MEMORY_DOCUMENTS:
            measured_text += f"; {DEFAULT_MEMORY_DOCUMENTS:,} not measured"
        if grown.ratio >= FLAT_GOAL:
            result = verdict(False)
            if grown.reading >= LINEAR_KIB:
                result += ": grows linearly"
        elif grown.reading >= LINEAR_KIB:
            result = "[yellow]met by the 2× rule, but not flat: grows linearly[/yellow]"
        else:
            result = verdict(True)
        table.add_row(goal, measured_text, result)
    cpus = os.cpu_count() or 1
    table.caption = f"Documents/s are wall-clock, on {cpus} CPUs."
    if load > cpus / 2:
        table.caption += (
            f" The 1-minute load average was {load:.2f} at the start: other processes shared "
            "the CPUs and slowed the wall clock; CPU seconds count this run's work alone."
        )
    return table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--documents",
        type=positive,
        default=None,
        help=f"throughput; default {DEFAULT_DOCUMENTS:,}",
    )
    parser.add_argument(
        "--memory-documents",
        type=positive,
        default=None,
        help=f"memory; default {DEFAULT_MEMORY_DOCUMENTS:,}",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_DOCUMENTS} documents for throughput, {QUICK_MEMORY_DOCUMENTS:,} for memory",
    )
    # The memory runs, each in a fresh process: DIRECTORY COUNT.
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--traced-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.documents is None:
        args.documents = QUICK_DOCUMENTS if args.quick else DEFAULT_DOCUMENTS
    if args.memory_documents is None:
        args.memory_documents = QUICK_MEMORY_DOCUMENTS if args.quick else DEFAULT_MEMORY_DOCUMENTS
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.memory_child:
        directory, count = Path(args.memory_child[0]), int(args.memory_child[1])
        checkpoints = [c for c in CHECKPOINTS if c < count] + [count]
        print(json.dumps(memory_child(directory, count, checkpoints)))
        return
    if args.traced_child:
        directory, count = Path(args.traced_child[0]), int(args.traced_child[1])
        print(json.dumps(traced_child(directory, count)))
        return

    console = wide_console(160)
    machine = Machine()
    if SEEDS.is_dir():
        console.print("entities on the seeds…", style="dim")
        accuracy = bench_accuracy(SEEDS)
        for table in render_accuracy(accuracy):
            console.print(table)
        exact = accuracy.found_stories == accuracy.gold_stories
        console.print(
            f"Same story on the seeds: gold {_story_names(accuracy.gold_stories)}; "
            f"pipeline {_story_names(accuracy.found_stories)}: "
            + ("[green]exactly gold's[/green]" if exact else "[red]not gold's[/red]")
        )
    else:
        console.print(f"[yellow]{SEEDS} is absent: entity precision and recall skipped[/yellow]")

    size = max(args.documents, args.memory_documents)
    with tempfile.TemporaryDirectory(prefix="liaison-bench-ingest-") as directory:
        console.print(f"generating {size:,} documents…", style="dim")
        start = time.perf_counter()
        paths = generate(Path(directory), size)
        console.print(f"generated in {elapsed(start):.1f} s", style="dim")
        sample = paths[: args.documents]
        console.print(f"pipeline on {len(sample):,} documents…", style="dim")
        measured = bench_pipeline(sample)
        console.print(f"run_ingest on {len(sample):,} documents…", style="dim")
        bench_run_ingest(sample, measured)
        for table in render_throughput(measured):
            console.print(table)

        console.print(f"memory on {args.memory_documents:,} documents…", style="dim")
        memory = _child("--memory-child", directory, str(args.memory_documents))
        small = None
        if args.memory_documents > CHECKPOINTS[0]:
            # The peak of a whole run comes at its end, in grouping: a run of the smallest size
            # alone, to compare whole runs.
            console.print(f"memory on {CHECKPOINTS[0]:,} documents…", style="dim")
            small = _child("--memory-child", directory, str(CHECKPOINTS[0]))
        console.print(render_memory(memory, small, args.memory_documents))
        traced_count = min(
            args.memory_documents, QUICK_TRACED_DOCUMENTS if args.quick else TRACED_DOCUMENTS
        )
        if traced_count > 2 * TRACED_FROM:
            console.print(f"tracemalloc on {traced_count:,} documents…", style="dim")
            console.print(render_traced(_child("--traced-child", directory, str(traced_count))))

    console.print(machine.summary())
    console.print(goals(measured, memory, small, machine.load))


if __name__ == "__main__":
    main()
