"""Investigating a leak: its sources, the marks read from them, and who is accused; then
`liaison leak investigate` end to end on a node."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from liaison.cli import app
from liaison.errors import InputError
from liaison.fingerprint import tardos
from liaison.fingerprint.copies import SCHEME, fingerprint_secret, mark, mark_key
from liaison.fingerprint.investigate import (
    Candidate,
    Finding,
    _shingle_set,
    disclosed_texts,
    find_sources,
    investigate,
    leaked_text,
    read_marks,
    trace,
)
from liaison.fingerprint.slots import apply_bits, find_slots, text_fields
from liaison.ledger import log
from liaison.ledger.disclosures import Disclosure, record_disclosures
from liaison.markings.tlp import TLP_CLEAR
from liaison.node import load_signing_key, open_node
from liaison.settings import Settings
from liaison.store.engine import write_transaction
from liaison.store.objects import add_objects, version_of
from liaison.store.schema import disclosures
from tests.conftest import TEXTS

SECRET = bytes(range(100, 132))
PARTNERS = [f"P{i:02d}" for i in range(1, 31)]
AUTHOR = "identity--11111111-1111-4111-8111-111111111111"
MODIFIED = "2025-03-01T09:30:00.000Z"

# Sentences dense in slots (spellings, compounds, synonyms, contractions, "that", lists,
# introductory commas, dashes, apostrophes), their content words drawn at random so that no
# two paragraphs are the same.
TEMPLATES = (
    "Meanwhile the organisation said that the {a} {n} will co-operate with allies, partners "
    "and friends, although it is not clear how.",
    "Analysts do not expect three new programmes whilst the counter-terrorism review of the "
    "{a} {n} goes on.",
    "The defence staff {v} the {n} amongst colleagues and travelled towards the {a} {m} in "
    "order to analyse the centre of the network.",
    "Officials said that the {a} {n} cannot be {v} – although the labour ministry will not "
    "favour a delay.",
    "In spite of the rumours, the intelligence-sharing team {v} the {n}, the {m} and the {a} "
    "depot before the travellers left.",
    "It is likely that the {n} won't reopen; the organisation's defence advisers don't "
    "recognise the {a} programme.",
    "Moreover the counter-intelligence unit {v} four {a} sites whilst the colour of the {n} "
    "was re-evaluated.",
    "Investigators believe that the {a} {n} is a centre of co-ordination, and they will not "
    "stop the modelling towards it.",
)
NOUNS = (
    "harbour", "pipeline", "convoy", "ministry", "archive", "satellite", "corridor", "garrison",
    "railway", "checkpoint", "embassy", "warehouse", "bridge", "airfield", "reservoir",
    "laboratory", "border post", "data centre", "port authority", "substation",
)  # fmt: skip
ADJECTIVES = (
    "northern", "coastal", "eastern", "remote", "temporary", "disputed", "southern", "rural",
    "western", "inland",
)  # fmt: skip
VERBS = ("inspected", "monitored", "reviewed", "secured", "mapped", "surveyed", "audited")


def synthetic(paragraphs: int, seed: int) -> str:
    rng = random.Random(seed)
    out = []
    for _ in range(paragraphs):
        sentences = []
        for template in rng.sample(TEMPLATES, 4):
            n, m = rng.sample(NOUNS, 2)
            sentences.append(
                template.format(a=rng.choice(ADJECTIVES), n=n, m=m, v=rng.choice(VERBS))
            )
        out.append(" ".join(sentences))
    return "\n\n".join(out)


def report(number: int, description: str, name: str | None = None) -> dict[str, Any]:
    return {
        "type": "report",
        "spec_version": "2.1",
        "id": f"report--00000000-0000-4000-8000-{number:012d}",
        "created": "2025-03-01T09:00:00.000Z",
        "modified": MODIFIED,
        "created_by_ref": AUTHOR,
        "name": name or f"Field review number {number}",
        "published": "2025-03-01T09:00:00Z",
        "report_types": ["threat-report"],
        "object_refs": [AUTHOR],
        "description": description,
        "object_marking_refs": [TLP_CLEAR],
    }


def candidates_of(reports: list[dict[str, Any]]) -> list[Candidate]:
    return [
        Candidate(r["id"], r["modified"], field, r[field])
        for r in reports
        for field in text_fields(r)
    ]


def everyone(reports: list[dict[str, Any]]) -> dict[tuple[str, str], list[str]]:
    return {(r["id"], r["modified"]): PARTNERS for r in reports}


def text_of(copy: dict[str, Any]) -> str:
    """What a leaker pastes: the title, then the text."""
    return f"{copy['name']}\n\n{copy['description']}"


def copy_of(obj: dict[str, Any], partner: str) -> dict[str, Any]:
    return mark(obj, partner, SECRET).object


def paragraphs(text: str) -> list[str]:
    return re.split(r"\n\s*\n", text)


def interleaved(copies: list[str]) -> str:
    """The copies stitched paragraph by paragraph, each paragraph from the next copy in turn."""
    split = [paragraphs(c) for c in copies]
    return "\n\n".join(split[k % len(split)][k] for k in range(len(split[0])))


def with_noise(text: str, rate: float, rng: random.Random) -> str:
    """``text`` with each character replaced, at ``rate``, by a random letter or space."""
    letters = "abcdefghijklmnopqrstuvwxyz "
    return "".join(rng.choice(letters) if rng.random() < rate else c for c in text)


def excerpt(text: str, share: float, at: float) -> str:
    """A contiguous ``share`` of the words of ``text``, starting ``at`` of the way through."""
    words = list(re.finditer(r"\S+", text))
    count = int(share * len(words))
    first = int(at * (len(words) - count))
    return text[words[first].start() : words[first + count - 1].end()]


def assert_accused_among(finding: Finding, guilty: set[str]) -> None:
    assert finding.accused, f"nobody accused: {finding.suspects[:3]}, threshold {finding.threshold}"
    assert set(finding.accused) <= guilty, finding.accused


# --- the documents ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_reports() -> list[dict[str, Any]]:
    """Four long reports of about 250 slots each, and a shorter decoy on the same template."""
    return [report(n, synthetic(10, seed=n)) for n in range(1, 5)] + [
        report(9, synthetic(3, seed=9))
    ]


@pytest.fixture(scope="module")
def news_reports() -> list[dict[str, Any]]:
    """The five news reports written for the tests (tests/texts/), 700 to 1,000 words each."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(TEXTS.glob("*.txt"))]
    return [report(100 + n, text, name=text.split("\n", 1)[0]) for n, text in enumerate(texts)]


# --- sources ----------------------------------------------------------------------------------


def test_a_stitched_leak_finds_each_document_it_draws_from(synthetic_reports):
    first, second, third = (copy_of(r, "P05") for r in synthetic_reports[:3])
    part = excerpt(text_of(third), 0.3, 0.5)
    leak = "\n\n".join([text_of(second), part, text_of(first)])
    matches = find_sources(leak, candidates_of(synthetic_reports))
    ids = [r["id"] for r in synthetic_reports]
    assert {m.object_id for m in matches[:2]} == set(ids[:2])  # the whole copies first
    assert [m.object_id for m in matches[2:]] == [ids[2]]  # then the excerpt; not the decoy
    assert all(m.version == MODIFIED for m in matches)
    assert 0.05 < matches[2].containment < 0.2  # about 30 % of one of three documents
    # Its passage is most of the excerpt and little else: these reports share stock phrases,
    # so the words at an edge may go to the neighbouring copy.
    ((start, end),) = matches[2].passages
    at = leak.index(part)
    assert at - 80 < start and end < at + len(part) + 80
    assert min(end, at + len(part)) - max(start, at) > 0.85 * len(part)


def test_two_versions_with_the_same_text_are_both_sources(synthetic_reports):
    older = synthetic_reports[0]
    newer = {**older, "modified": "2025-04-01T00:00:00.000Z", "labels": ["reviewed"]}
    leak = text_of(copy_of(newer, "P01"))
    matches = find_sources(leak, candidates_of([older, newer, *synthetic_reports[1:]]))
    assert {(m.object_id, m.version) for m in matches} == {
        (older["id"], MODIFIED),
        (older["id"], "2025-04-01T00:00:00.000Z"),
    }


def test_a_text_that_was_never_disclosed_matches_nothing(synthetic_reports):
    unrelated = (
        "The weather in the valley was mild this spring, and the harvest came in early. "
        "Farmers along the river said the rains had been kind to them for once. " * 5
    )
    assert find_sources(unrelated, candidates_of(synthetic_reports)) == []
    assert find_sources("", candidates_of(synthetic_reports)) == []
    finding = trace(
        SECRET, unrelated, candidates_of(synthetic_reports), everyone(synthetic_reports)
    )
    assert finding.sources == () and finding.suspects == () and finding.marks_read == 0


# --- marks ------------------------------------------------------------------------------------


def test_marks_read_are_the_leakers_bits_and_none_outside_the_excerpt(synthetic_reports):
    obj = synthetic_reports[0]
    copy = copy_of(obj, "P07")
    part = excerpt(copy["description"], 0.3, 0.0)
    observed = read_marks(part, find_sources(part, candidates_of([obj])))
    slots = find_slots(obj["description"])
    keys = [mark_key(obj["id"], MODIFIED, "description", s.index) for s in slots]
    assert set(keys) <= set(observed)
    read = {k: v for k, v in observed.items() if v is not None}
    assert 0.2 * len(slots) < len(read) < 0.45 * len(slots)
    assert all(v == tardos.bit(SECRET, "P07", k) for k, v in read.items())
    assert observed[keys[-1]] is None  # the end of the text is not in the excerpt


def test_find_sources_keeps_only_versions_sharing_a_shingle_with_the_leak(synthetic_reports):
    freed: list[str] = []

    class Text(str):
        def __del__(self) -> None:
            freed.append(str(self))

    count = 1000
    freed_during: list[int] = []

    def stream():
        yield from candidates_of(synthetic_reports[:1])
        for n in range(count):
            yield Candidate(f"note--{n}", MODIFIED, "content", Text(f"unrelated note {n} here"))
        freed_during.append(len(freed))

    leak = text_of(copy_of(synthetic_reports[0], "P01"))
    matches = find_sources(leak, stream())
    assert [m.object_id for m in matches] == [synthetic_reports[0]["id"]]
    assert matches == find_sources(leak, candidates_of(synthetic_reports[:1]))
    # Every unrelated text was let go as it went by, but those the shingle cache still holds.
    assert freed_during[0] >= count - (_shingle_set.cache_info().maxsize or 0) - 1


# --- accusation on the synthetic reports (always run) ------------------------------------------


def test_a_single_leakers_full_copy_accuses_it_and_nobody_else(synthetic_reports):
    leak = "\n\n".join(text_of(copy_of(r, "P11")) for r in synthetic_reports[:3])
    finding = trace(SECRET, leak, candidates_of(synthetic_reports), everyone(synthetic_reports))
    assert finding.accused == ("P11",)
    assert finding.suspects[0].partner == "P11"
    assert len(finding.suspects) == len(PARTNERS)
    assert finding.marks_read > 500
    assert {s.object_id for s in finding.sources} == {r["id"] for r in synthetic_reports[:3]}


def test_a_30_percent_excerpt_accuses_the_leaker(synthetic_reports):
    leak = "\n\n".join(
        excerpt(text_of(copy_of(r, "P23")), 0.3, at)
        for r, at in zip(synthetic_reports[:4], (0.0, 0.4, 0.9, 0.6), strict=True)
    )
    finding = trace(SECRET, leak, candidates_of(synthetic_reports), everyone(synthetic_reports))
    assert finding.accused == ("P23",)


def test_two_percent_character_noise_accuses_the_leaker(synthetic_reports):
    rng = random.Random(3)
    leak = "\n\n".join(
        with_noise(text_of(copy_of(r, "P02")), 0.02, rng) for r in synthetic_reports[:2]
    )
    finding = trace(SECRET, leak, candidates_of(synthetic_reports), everyone(synthetic_reports))
    assert finding.accused == ("P02",)


@pytest.mark.parametrize("colluders", [("P03", "P17"), ("P08", "P19", "P27")])
def test_colluders_interleaving_their_copies_are_caught_and_nobody_else(
    synthetic_reports, colluders
):
    leak = "\n\n".join(
        interleaved([text_of(copy_of(r, p)) for p in colluders]) for r in synthetic_reports[:4]
    )
    finding = trace(SECRET, leak, candidates_of(synthetic_reports), everyone(synthetic_reports))
    assert finding.marks_read >= 700
    assert_accused_among(finding, set(colluders))


def test_three_colluders_taking_the_majority_are_caught_and_nobody_else(synthetic_reports):
    colluders = ("P04", "P12", "P29")
    leaks = []
    for r in synthetic_reports[:4]:
        copies = [copy_of(r, p)["description"] for p in colluders]
        # At every slot two of the three copies agree: the mixed copy shows their form.
        slots = find_slots(r["description"])
        keys = [mark_key(r["id"], MODIFIED, "description", s.index) for s in slots]
        bits = [[tardos.bit(SECRET, p, k) for k in keys] for p in colluders]
        majority = [int(sum(b[i] for b in bits) >= 2) for i in range(len(keys))]
        leaks.append(apply_bits(r["description"], slots, majority))
        assert leaks[-1] not in copies
    finding = trace(
        SECRET, "\n\n".join(leaks), candidates_of(synthetic_reports), everyone(synthetic_reports)
    )
    assert_accused_among(finding, set(colluders))


def test_only_partners_that_received_a_source_are_candidates(synthetic_reports):
    first, second = synthetic_reports[:2]
    recipients = {
        (first["id"], MODIFIED): PARTNERS[:20],
        (second["id"], MODIFIED): PARTNERS[20:],
    }
    finding = trace(
        SECRET, text_of(copy_of(first, "P06")), candidates_of(synthetic_reports), recipients
    )
    assert {s.partner for s in finding.suspects} == set(PARTNERS[:20])
    assert finding.accused == ("P06",)


# --- accusation on the news texts ---------------------------------------------------------------


def test_news_a_single_leakers_full_copy_of_three_reports(news_reports):
    leak = "\n\n".join(text_of(copy_of(r, "P14")) for r in news_reports[:3])
    finding = trace(SECRET, leak, candidates_of(news_reports), everyone(news_reports))
    assert finding.accused == ("P14",)
    assert {s.object_id for s in finding.sources} == {r["id"] for r in news_reports[:3]}


def test_news_excerpts_of_all_five(news_reports):
    leak = "\n\n".join(excerpt(text_of(copy_of(r, "P09")), 0.5, 0.3) for r in news_reports)
    finding = trace(SECRET, leak, candidates_of(news_reports), everyone(news_reports))
    assert finding.accused == ("P09",)


def test_news_two_percent_noise(news_reports):
    rng = random.Random(8)
    leak = "\n\n".join(with_noise(text_of(copy_of(r, "P21")), 0.02, rng) for r in news_reports)
    finding = trace(SECRET, leak, candidates_of(news_reports), everyone(news_reports))
    assert finding.accused == ("P21",)


def test_news_two_colluders_stitched_frame_nobody(news_reports):
    colluders = ("P10", "P30")
    leak = "\n\n".join(
        interleaved([text_of(copy_of(r, p)) for p in colluders]) for r in news_reports
    )
    finding = trace(SECRET, leak, candidates_of(news_reports), everyone(news_reports))
    assert {s.object_id for s in finding.sources} == {r["id"] for r in news_reports}
    assert_accused_among(finding, set(colluders))


# --- the leaked file ----------------------------------------------------------------------------


def test_a_stix_leak_is_read_as_the_text_of_its_objects(tmp_path, synthetic_reports):
    copy = copy_of(synthetic_reports[0], "P01")
    bundle = {"type": "bundle", "id": "bundle--1", "objects": [copy]}
    path = tmp_path / "leak.json"
    path.write_text(json.dumps(bundle))
    assert leaked_text(path) == f"{copy['name']}\n\n{copy['description']}"
    path.write_text(json.dumps(copy))
    assert leaked_text(path) == f"{copy['name']}\n\n{copy['description']}"


def test_an_html_leak_is_read_as_its_main_text(tmp_path, synthetic_reports):
    text = copy_of(synthetic_reports[0], "P01")["description"]
    body = "".join(f"<p>{p}</p>" for p in paragraphs(text))
    path = tmp_path / "leak.html"
    path.write_text(f"<html><head><title>x</title></head><body><article>{body}</article></body>")
    got = leaked_text(path)
    assert paragraphs(text)[0] in got and paragraphs(text)[-1] in got


def test_an_unreadable_leak_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        leaked_text(tmp_path / "missing.txt")
    binary = tmp_path / "leak.pdf"
    binary.write_bytes(b"%PDF-1.7\x00\x01\x02")
    with pytest.raises(InputError, match="pdftotext"):
        leaked_text(binary)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(InputError, match="empty"):
        leaked_text(empty)


# --- the investigation on a store ---------------------------------------------------------------


def revised(obj: dict[str, Any]) -> dict[str, Any]:
    """A newer version of ``obj`` with another text."""
    return {**obj, "modified": "2025-04-01T00:00:00.000Z", "description": synthetic(10, seed=50)}


def fingerprinted(obj: dict[str, Any], partners: list[str]) -> list[Disclosure]:
    copies = {p: mark(obj, p, SECRET) for p in partners}
    return [
        Disclosure(
            p,
            obj["id"],
            version_of(obj),
            "c" * 64,
            json.dumps(c.object).encode(),
            f"{SCHEME}:{c.code}",
        )
        for p, c in copies.items()
    ]


@pytest.fixture
def store(node, synthetic_reports):
    """A node (SQLite, PostgreSQL) that stored the reports and a revised first one, and
    disclosed: the first to P01-P10, its revision to P30, the second to P11-P20, each copy
    fingerprinted; the third to TUR without a fingerprint; the fourth to NOR before the ledger
    (a row, no entry); the decoy to nobody."""
    first, second, third, fourth, decoy = synthetic_reports
    with write_transaction(node.engine) as connection:
        add_objects(connection, [first, revised(first), second, third, fourth, decoy])
        record_disclosures(
            connection,
            [
                *fingerprinted(first, PARTNERS[:10]),
                *fingerprinted(revised(first), ["P30"]),
                *fingerprinted(second, PARTNERS[10:20]),
                Disclosure("TUR", third["id"], version_of(third), "c" * 64, b"{}"),
            ],
        )
        connection.execute(
            sa.insert(disclosures),
            {
                "partner": "NOR",
                "object_id": fourth["id"],
                "version": version_of(fourth),
                "digest": "d" * 64,
                "release_class": "c" * 64,
                "at": 0,
                "entry": None,
            },
        )
    return node


def test_the_texts_searched_are_those_of_the_disclosed_versions(store, synthetic_reports):
    first, second, third, fourth, decoy = synthetic_reports
    with store.engine.connect() as connection:
        texts = list(disclosed_texts(connection, batch=2))
        finding = investigate(connection, SECRET, text_of(decoy))
    assert texts == candidates_of([first, revised(first), second, third, fourth])
    assert decoy["id"] not in {s.object_id for s in finding.sources}  # stored, not disclosed


def test_the_ledger_is_read_only_for_the_sources(store, synthetic_reports, monkeypatch):
    first = synthetic_reports[0]
    calls: list[dict[str, Any]] = []
    entries = log.entries

    def spy(connection, **filters):
        calls.append(filters)
        return entries(connection, **filters)

    monkeypatch.setattr(log, "entries", spy)
    with store.engine.connect() as connection:
        finding = investigate(connection, SECRET, text_of(copy_of(first, "P03")))
    assert calls == [{"object_id": first["id"], "kind": "disclosure"}]
    assert [(s.object_id, s.version) for s in finding.sources] == [(first["id"], MODIFIED)]
    # Not P30: it received another version of the object.
    assert {s.partner for s in finding.suspects} == set(PARTNERS[:10])
    assert finding.accused == ("P03",)


def test_a_copy_without_a_fingerprint_makes_a_source_but_no_candidate(store, synthetic_reports):
    second, third, fourth = synthetic_reports[1:4]
    with store.engine.connect() as connection:
        unmarked = investigate(connection, SECRET, text_of(third))
        before_the_ledger = investigate(connection, SECRET, text_of(fourth))
        stitched = investigate(
            connection, SECRET, "\n\n".join([text_of(copy_of(second, "P12")), text_of(third)])
        )
    assert [s.object_id for s in unmarked.sources] == [third["id"]]
    assert unmarked.suspects == () and unmarked.marks_read > 0
    assert [s.object_id for s in before_the_ledger.sources] == [fourth["id"]]
    assert before_the_ledger.suspects == ()
    assert {s.object_id for s in stitched.sources} == {second["id"], third["id"]}
    assert {s.partner for s in stitched.suspects} == set(PARTNERS[10:20])
    assert stitched.accused == ("P12",)


# --- liaison leak investigate ---------------------------------------------------------------------

runner = CliRunner()
ALLIES = ("USA", "GBR", "AUS", "NZL", "FRA", "DEU", "LVA", "EST", "LTU", "POL")


@pytest.fixture
def node_with_disclosures(tmp_path, monkeypatch, synthetic_reports):
    """A demo node that stored two long reports and gave every ally its own copy of each
    (Turkey got copies that carry no fingerprint, as before fingerprinting): GBR's copies."""
    monkeypatch.setenv("LIAISON_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LIAISON_DATABASE_URL", raising=False)
    assert runner.invoke(app, ["demo"]).exit_code == 0
    node = open_node(Settings.from_env())
    secret = fingerprint_secret(load_signing_key(node.settings.home))
    reports = synthetic_reports[:2]
    copies = {}
    with write_transaction(node.engine) as connection:
        add_objects(connection, reports)
        delivered = []
        for obj in reports:
            for partner in ALLIES:
                marked = mark(obj, partner, secret)
                copies[partner, obj["id"]] = marked.object
                data = json.dumps(marked.object).encode()
                fingerprint = f"{SCHEME}:{marked.code}"
                delivered.append(
                    Disclosure(partner, obj["id"], version_of(obj), "c" * 64, data, fingerprint)
                )
            delivered.append(
                Disclosure("TUR", obj["id"], version_of(obj), "c" * 64, json.dumps(obj).encode())
            )
        record_disclosures(connection, delivered)
    node.engine.dispose()
    return [copies["GBR", obj["id"]] for obj in reports]


def investigate_cli(*args: str):
    return runner.invoke(app, ["leak", "investigate", *args])


def test_cli_names_the_partner_whose_copy_leaked(tmp_path, node_with_disclosures):
    leak = tmp_path / "leak.txt"
    leak.write_text("\n\n".join(text_of(c) for c in node_with_disclosures), encoding="utf-8")
    result = investigate_cli(str(leak), "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"sources", "marks_read", "threshold", "epsilon", "suspects"}
    assert {s["object_id"] for s in data["sources"]} == {c["id"] for c in node_with_disclosures}
    assert all(s["version"] == MODIFIED for s in data["sources"])
    assert data["epsilon"] == 1e-3 and data["marks_read"] > 300
    suspects = data["suspects"]
    assert set(suspects[0]) == {"partner", "score", "accused"}
    assert suspects[0]["partner"] == "GBR" and suspects[0]["accused"] is True
    assert [s["partner"] for s in suspects if s["accused"]] == ["GBR"]
    assert {s["partner"] for s in suspects} == set(ALLIES)  # not TUR: its copies carry no bits
    assert [s["score"] for s in suspects] == sorted((s["score"] for s in suspects), reverse=True)
    assert data["threshold"] <= suspects[0]["score"]

    plain = investigate_cli(str(leak))
    assert plain.exit_code == 0, plain.stderr
    assert "GBR" in plain.stdout and "accused" in plain.stdout and "threshold" in plain.stdout

    bundle = tmp_path / "leak.json"
    bundle.write_text(json.dumps({"type": "bundle", "objects": node_with_disclosures}))
    again = json.loads(investigate_cli(str(bundle), "--json").stdout)
    assert again["suspects"][0]["partner"] == "GBR" and again["suspects"][0]["accused"]


def test_cli_says_when_a_leak_matches_nothing(tmp_path, node_with_disclosures):
    leak = tmp_path / "other.txt"
    leak.write_text("Nothing this node ever wrote, about the weather and the harvest. " * 10)
    result = investigate_cli(str(leak), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "sources": [],
        "marks_read": 0,
        "threshold": None,
        "epsilon": 1e-3,
        "suspects": [],
    }
    plain = investigate_cli(str(leak))
    assert plain.exit_code == 1 and "matches nothing this node disclosed" in plain.stderr
    missing = investigate_cli(str(tmp_path / "missing.txt"))
    assert missing.exit_code == 2 and "cannot read" in missing.stderr
    assert investigate_cli(str(leak), "--epsilon", "0").exit_code == 2
