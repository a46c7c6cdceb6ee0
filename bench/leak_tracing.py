"""Leak tracing: how often a leak names a guilty partner, and how often an innocent one.

Text-level trials of the whole investigation without a store: each document's slots are
found once; in each trial a fresh random node secret (from a fixed seed) gives the 30
partners their bits (``tardos.codeword`` under ``copies.mark_key``: what ``copies.mark``
writes), the colluders' copies are mixed and attacked, and the leak goes through
``investigate.trace``: sources found among every document of the pool (the seeds and the
generated documents), marks read with ``read_bits``, and ``tardos.accuse`` over the 30
partners (every one received every document) at ε = 10⁻³.

- **Documents**: the five seeds (``../shared/seeds``) and 40 generated news-like documents of
  seed size (``bench.ingest``'s generator, 600-1,200 words).
- **Colluders** (1, 2 or 3) mix their copies where they differ (the marking assumption: where
  their copies agree the leak shows that form): by majority, minority, at random, by
  interleaving (each paragraph from one colluder's copy, as a stitched leak), all-0 or all-1;
  trial i uses strategy i mod 6, and the 3-colluder headline is also shown per strategy.
- **Attacks** on the mixed text: the full copy; a 30 % excerpt (a contiguous run of 30 % of
  each document's words); retyped (quotes, apostrophes and dashes typed straight, then 2 % of
  the characters mistyped: a wrong letter, a dropped or an extra one).
- **Leaks** of 1, 5 and 20 documents (the seeds: 1 and 5), concatenated in random order.
- **Headlines**: a single leaker's 300-word excerpt of one document; 3 colluders' full copies
  of as many generated documents as it takes to carry at least 700 marks.
- **Excerpt lengths**: how many words of a single leaker's copy name it: 600 to 3,000 words,
  at most 600 from each document.

A trial *names a guilty partner* when a colluder is accused, and *names an innocent* when any
other partner is. The false-accusation rate is bounded by ε by construction (a Chernoff bound,
``tardos.leak_threshold``); 1,000 trials can only show that it is not far above it.

    python -m bench.leak_tracing [--quick] [--trials N] [--headline-trials N] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rich.table import Table

from bench.ingest import story_of, tell
from bench.options import positive
from bench.report import Machine, elapsed, verdict, wide_console
from liaison.fingerprint import tardos
from liaison.fingerprint.copies import mark_key
from liaison.fingerprint.investigate import Candidate, Finding, trace
from liaison.fingerprint.slots import Slot, apply_bits, find_slots, slot_density

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
SEED = 20250701
PARTNERS = tuple(f"P{i:02d}" for i in range(1, 31))
EPSILON = 1e-3
VERSION = "2025-01-01T00:00:00.000Z"
FIELD = "description"
GENERATED = 40
EXCERPT = 0.3
TYPOS = 0.02
HEADLINE_WORDS = 300
HEADLINE_MARKS = 700
EXCERPT_WORDS = 600  # the most words excerpted from one document (generated ones have 600+)
SWEEP_WORDS = (600, 1_000, 2_000, 3_000)  # a single leaker's excerpts: how many words name it
STRATEGIES = ("majority", "minority", "random", "interleaving", "all-0", "all-1")
ATTACKS = ("full copy", "30% excerpt", "retyped, 2% typos")
DEFAULT_TRIALS = 1_000
QUICK_TRIALS = 40
QUICK_HEADLINE_TRIALS = 100
# Goals of the issue: a guilty partner named in this share of trials, an innocent in at most ε.
NAMED_GOAL = 0.99

_WORD = re.compile(r"\S+")
_STRAIGHT = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


# --- the documents ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    object_id: str
    text: str
    slots: tuple[Slot, ...]
    paragraph_of: tuple[int, ...]  # each slot's paragraph, for interleaving
    words: int

    @property
    def candidate(self) -> Candidate:
        return Candidate(self.object_id, VERSION, FIELD, self.text)


def document(number: int, text: str) -> Document:
    slots = tuple(find_slots(text))
    breaks = [m.start() for m in re.finditer(r"\n\s*\n", text)]
    paragraph_of = tuple(sum(1 for b in breaks if b < s.start) for s in slots)
    object_id = f"report--00000000-0000-4000-8000-{number:012d}"
    return Document(object_id, text, slots, paragraph_of, len(text.split()))


def seed_documents() -> list[Document]:
    if not SEEDS.is_dir():
        return []
    paths = sorted(SEEDS.glob("*.txt"))
    return [document(n, p.read_text(encoding="utf-8")) for n, p in enumerate(paths)]


def generated_documents(count: int) -> list[Document]:
    documents = []
    for n in range(count):
        rng = random.Random(SEED * 1_000_003 + n)
        text, _ = tell(story_of(rng), rng)
        documents.append(document(1_000 + n, text))
    return documents


# --- one leak -----------------------------------------------------------------------------------


def mixed_bits(
    doc: Document, copies: npt.NDArray[np.uint8], strategy: str, rng: random.Random
) -> list[int]:
    """The form each slot shows in the colluders' mixed copy (rows of ``copies``: their bits)."""
    c, m = copies.shape
    ones = copies.sum(axis=0)
    if strategy == "interleaving":
        paragraphs = max(doc.paragraph_of, default=0) + 1
        source = [rng.randrange(c) for _ in range(paragraphs)]
        return [int(copies[source[doc.paragraph_of[k]], k]) for k in range(m)]
    mixed = []
    for k in range(m):
        if ones[k] in (0, c):
            mixed.append(int(copies[0, k]))  # the marking assumption
        elif strategy in ("majority", "minority"):
            if 2 * ones[k] == c:
                mixed.append(rng.randrange(2))
            else:
                majority = int(2 * ones[k] > c)
                mixed.append(majority if strategy == "majority" else 1 - majority)
        elif strategy == "random":
            mixed.append(rng.randrange(2))
        else:
            mixed.append(0 if strategy == "all-0" else 1)
    return mixed


def excerpt(text: str, words: int, rng: random.Random) -> str:
    """A contiguous run of ``words`` words of ``text`` (all of it if it is shorter)."""
    spans = [m.span() for m in _WORD.finditer(text)]
    if words >= len(spans):
        return text
    first = rng.randrange(len(spans) - words + 1)
    return text[spans[first][0] : spans[first + words - 1][1]]


def retyped(text: str, rng: random.Random) -> str:
    """``text`` typed again: straight quotes and dashes, and TYPOS of the characters mistyped."""
    out = []
    for c in text.translate(_STRAIGHT):
        if rng.random() >= TYPOS:
            out.append(c)
            continue
        kind = rng.random()
        if kind < 0.5:
            out.append(rng.choice(_LETTERS))  # a wrong key
        elif kind < 0.75:
            out.append(c + rng.choice(_LETTERS))  # an extra key
        # else: a dropped key
    return "".join(out)


def leaked_copy(
    doc: Document,
    secret: bytes,
    colluders: Sequence[str],
    strategy: str,
    attack: str,
    rng: random.Random,
    words: int | None = None,
) -> str:
    keys = [mark_key(doc.object_id, VERSION, FIELD, s.index) for s in doc.slots]
    copies = np.stack([tardos.codeword(secret, partner, keys) for partner in colluders])
    text = apply_bits(doc.text, doc.slots, mixed_bits(doc, copies, strategy, rng))
    if words is not None:
        return excerpt(text, words, rng)
    if attack == "30% excerpt":
        return excerpt(text, max(1, round(EXCERPT * doc.words)), rng)
    if attack == "retyped, 2% typos":
        return retyped(text, rng)
    return text


# --- scenarios ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    corpus: str  # "seeds" or "generated"
    colluders: int
    attack: str
    documents: int | None = None  # a leak of this many documents
    words: int | None = None  # or one excerpt of this many words
    marks: int | None = None  # or as many documents as carry this many marks
    trials: int = DEFAULT_TRIALS

    @property
    def excerpts(self) -> int:
        """The documents a leak of ``words`` words is excerpted from (at most EXCERPT_WORDS
        words from each)."""
        return -(-(self.words or 0) // EXCERPT_WORDS)

    @property
    def leak(self) -> str:
        if self.words is not None and self.excerpts == 1:
            return f"one {self.words}-word excerpt"
        if self.words is not None:
            return f"{self.words:,} words, {self.excerpts} excerpts"
        if self.marks is not None:
            return f"≥ {self.marks} marks"
        return f"{self.documents} document{'s' if self.documents != 1 else ''}"


@dataclass
class Outcome:
    trials: int = 0
    guilty: int = 0  # trials in which a colluder was accused
    innocent: int = 0  # trials in which any other partner was
    marks: int = 0  # readable marks, summed
    sources_right: int = 0  # trials whose sources were exactly the leaked documents
    documents: int = 0
    seconds: float = 0.0
    at_goal: Counter[str] = field(default_factory=Counter)  # trials with >= HEADLINE_MARKS read
    by_strategy: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, finding: Finding, colluders: Sequence[str], right: bool, strategy: str) -> None:
        guilty = any(p in colluders for p in finding.accused)
        innocent = any(p not in colluders for p in finding.accused)
        self.trials += 1
        self.guilty += guilty
        self.innocent += innocent
        self.marks += finding.marks_read
        self.sources_right += right
        tally = self.by_strategy.setdefault(strategy, Counter())
        tally.update(trials=1, guilty=guilty, innocent=innocent, marks=finding.marks_read)
        if finding.marks_read >= HEADLINE_MARKS:
            self.at_goal.update(trials=1, guilty=guilty, innocent=innocent)


def run(
    scenario: Scenario, pool: Sequence[Document], corpus: Sequence[Document], number: int
) -> Outcome:
    rng = random.Random(SEED * 7_919 + number)
    candidates = [d.candidate for d in pool]
    recipients = {(d.object_id, VERSION): PARTNERS for d in pool}
    outcome = Outcome()
    began = time.perf_counter()
    for i in range(scenario.trials):
        secret = rng.randbytes(32)
        colluders = rng.sample(PARTNERS, scenario.colluders)
        strategy = STRATEGIES[i % len(STRATEGIES)] if scenario.colluders > 1 else "alone"
        if scenario.words is not None:
            pieces = scenario.excerpts
            least = scenario.words if pieces == 1 else EXCERPT_WORDS
            chosen = rng.sample([d for d in corpus if d.words >= least], pieces)
            sizes = [
                scenario.words // pieces + (k < scenario.words % pieces) for k in range(pieces)
            ]
        elif scenario.marks is not None:
            order = rng.sample(list(corpus), len(corpus))
            chosen = []
            while sum(len(d.slots) for d in chosen) < scenario.marks:
                chosen.append(order[len(chosen)])
        else:
            chosen = rng.sample(list(corpus), scenario.documents or 1)
        if scenario.words is None:
            sizes = [None] * len(chosen)
        texts = [
            leaked_copy(d, secret, colluders, strategy, scenario.attack, rng, size)
            for d, size in zip(chosen, sizes, strict=True)
        ]
        finding = trace(secret, "\n\n".join(texts), candidates, recipients, EPSILON)
        found = {s.object_id for s in finding.sources}
        outcome.documents += len(chosen)
        outcome.add(finding, colluders, found == {d.object_id for d in chosen}, strategy)
    outcome.seconds = elapsed(began)
    return outcome


def scenarios(
    seeds: bool, trials: int, headline_trials: int
) -> tuple[list[Scenario], list[Scenario], list[Scenario]]:
    """The headline scenarios, the single leaker's excerpts, and the grid."""
    headlines = [
        Scenario("generated", 1, "excerpt", words=HEADLINE_WORDS, trials=headline_trials),
        Scenario("generated", 3, "full copy", marks=HEADLINE_MARKS, trials=headline_trials),
    ]
    if seeds:
        headlines.insert(
            0, Scenario("seeds", 1, "excerpt", words=HEADLINE_WORDS, trials=headline_trials)
        )
    sweep = [
        Scenario("generated", 1, "excerpts", words=words, trials=trials) for words in SWEEP_WORDS
    ]
    grid = [
        Scenario(corpus, colluders, attack, documents=count, trials=trials)
        for corpus, counts in (("seeds", (1, 5)), ("generated", (1, 5, 20)))
        if corpus == "generated" or seeds
        for colluders in (1, 2, 3)
        for attack in ATTACKS
        for count in counts
    ]
    return headlines, sweep, grid


# --- the report ---------------------------------------------------------------------------------


def _rate(count: int, trials: int) -> str:
    return f"{count / trials:.1%} ({count}/{trials})" if trials else "-"


def render(title: str, rows: Sequence[tuple[Scenario, Outcome]]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in (
        "corpus",
        "colluders",
        "attack",
        "leak",
        "trials",
        "marks read (mean)",
        "sources right",
        "guilty named",
        "innocent named",
        "s/trial",
    ):
        table.add_column(column, justify="left" if column in ("corpus", "attack") else "right")
    for scenario, outcome in rows:
        table.add_row(
            scenario.corpus,
            str(scenario.colluders),
            scenario.attack,
            scenario.leak,
            f"{outcome.trials:,}",
            f"{outcome.marks / outcome.trials:.0f}",
            f"{outcome.sources_right / outcome.trials:.1%}",
            _rate(outcome.guilty, outcome.trials),
            _rate(outcome.innocent, outcome.trials),
            f"{outcome.seconds / outcome.trials:.2f}",
        )
    return table


def render_strategies(outcome: Outcome) -> Table:
    table = Table(
        title=f"3 colluders, full copies, ≥ {HEADLINE_MARKS} marks: by strategy",
        title_justify="left",
        header_style="bold",
    )
    for column in ("strategy", "trials", "marks read (mean)", "guilty named", "innocent named"):
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for strategy in STRATEGIES:
        tally = outcome.by_strategy.get(strategy, Counter())
        trials = tally["trials"]
        table.add_row(
            strategy,
            f"{trials:,}",
            f"{tally['marks'] / trials:.0f}" if trials else "-",
            _rate(tally["guilty"], trials),
            _rate(tally["innocent"], trials),
        )
    return table


def render_density(seeds: Sequence[Document], generated: Sequence[Document]) -> Table:
    table = Table(title="Slot density", title_justify="left", header_style="bold")
    for column in ("document", "words", "slots", "slots per 1,000 words"):
        table.add_column(column, justify="left" if column == "document" else "right")
    for name, doc in zip(sorted(p.name for p in SEEDS.glob("*.txt")), seeds, strict=False):
        table.add_row(name, f"{doc.words:,}", str(len(doc.slots)), f"{slot_density(doc.text):.1f}")
    for name, docs in (("all seeds", seeds), (f"{len(generated)} generated", generated)):
        if docs:
            words = sum(d.words for d in docs)
            slots = sum(len(d.slots) for d in docs)
            table.add_row(name, f"{words:,}", f"{slots:,}", f"{1000 * slots / words:.1f}")
    return table


def goals(headlines: Sequence[tuple[Scenario, Outcome]]) -> list[str]:
    lines = []
    for scenario, outcome in headlines:
        if scenario.words is not None:
            named, framed = outcome.guilty, outcome.innocent
            trials = outcome.trials
            what = f"single leaker from one {scenario.words}-word excerpt ({scenario.corpus})"
        else:
            named, framed = outcome.at_goal["guilty"], outcome.at_goal["innocent"]
            trials = outcome.at_goal["trials"]
            what = (
                f"3 colluders at ≥ {HEADLINE_MARKS} readable marks "
                f"({trials} of {outcome.trials} trials)"
            )
        met = trials > 0 and named >= NAMED_GOAL * trials and framed <= EPSILON * trials
        lines.append(
            f"{what}: guilty named {_rate(named, trials)}, innocent named "
            f"{_rate(framed, trials)} (goal: named in ≥ {NAMED_GOAL:.0%}, innocent ≤ {EPSILON:g}): "
            f"{verdict(met)}"
        )
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.leak_tracing", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--trials",
        type=positive,
        default=None,
        help=f"trials per grid scenario; default {DEFAULT_TRIALS:,} ({QUICK_TRIALS} with --quick)",
    )
    parser.add_argument(
        "--headline-trials",
        type=positive,
        default=None,
        help=f"trials per headline scenario; default {DEFAULT_TRIALS:,} "
        f"({QUICK_HEADLINE_TRIALS} with --quick)",
    )
    parser.add_argument(
        "--workers",
        type=positive,
        default=os.cpu_count() or 1,
        help="processes running scenarios side by side; default: the CPU count",
    )
    parser.add_argument("--quick", action="store_true", help="fewer trials, for a smoke run")
    args = parser.parse_args(argv)
    if args.trials is None:
        args.trials = QUICK_TRIALS if args.quick else DEFAULT_TRIALS
    if args.headline_trials is None:
        args.headline_trials = QUICK_HEADLINE_TRIALS if args.quick else DEFAULT_TRIALS
    return args


_CORPORA: dict[str, list[Document]] = {}


def corpora() -> dict[str, list[Document]]:
    """The seeds and the generated documents, with their slots (once per process)."""
    if not _CORPORA:
        _CORPORA["seeds"] = seed_documents()
        _CORPORA["generated"] = generated_documents(GENERATED)
    return _CORPORA


def run_numbered(job: tuple[int, Scenario]) -> Outcome:
    """Scenario ``number``'s trials: its random draws depend on its number alone, so the
    results are the same whatever the number of workers."""
    number, scenario = job
    found = corpora()
    pool = [*found["seeds"], *found["generated"]]
    return run(scenario, pool, found[scenario.corpus], number)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = wide_console(170)
    machine = Machine()
    found = corpora()  # before the workers start, which then inherit them
    seeds, generated = found["seeds"], found["generated"]
    if not seeds:
        console.print(f"[yellow]{SEEDS} is absent: the seed scenarios are skipped[/yellow]")
    console.print(render_density(seeds, generated))
    headlines, sweep, grid = scenarios(bool(seeds), args.trials, args.headline_trials)
    jobs = list(enumerate([*headlines, *sweep, *grid]))
    console.print(
        f"{len(jobs)} scenarios, {sum(s.trials for _, s in jobs):,} trials, "
        f"{args.workers} worker(s)…",
        style="dim",
    )
    results: list[tuple[Scenario, Outcome]] = []
    with ProcessPoolExecutor(args.workers) as workers:
        for (_, scenario), outcome in zip(jobs, workers.map(run_numbered, jobs), strict=True):
            console.print(
                f"{scenario.corpus}, {scenario.colluders} colluder(s), {scenario.attack}, "
                f"{scenario.leak}: {outcome.trials:,} trials in {outcome.seconds:.0f} s",
                style="dim",
            )
            results.append((scenario, outcome))
    pool = len(seeds) + len(generated)
    console.print(
        machine.summary(f"{len(PARTNERS)} partners, ε = {EPSILON:g}, pool of {pool} documents")
    )
    first, then = len(headlines), len(headlines) + len(sweep)
    console.print(render("Headline scenarios", results[:first]))
    strategies = next(o for s, o in results[:first] if s.marks is not None)
    console.print(render_strategies(strategies))
    console.print(render("A single leaker's excerpts (generated documents)", results[first:then]))
    console.print(render("Every scenario", results[then:]))
    for line in goals(results[:first]):
        console.print(line)


if __name__ == "__main__":
    main()
