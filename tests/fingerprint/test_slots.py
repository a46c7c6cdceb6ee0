"""Slots in released text: where they are, what they never touch, and reading them back."""

from __future__ import annotations

import random
import re
from collections import Counter
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liaison.fingerprint import slots as slots_module
from liaison.fingerprint.slots import (
    Slot,
    apply_bits,
    find_slots,
    protected_spans,
    read_bits,
    slot_density,
    text_fields,
)
from liaison.markings.tlp import TLP_CLEAR
from liaison.stix.validate import validation_errors
from tests.conftest import TEXTS, examples

AUTHOR = "identity--11111111-1111-4111-8111-111111111111"

# One slot of every kind, and one of everything that must never change.
SYNTHETIC = (
    "Meanwhile the organisation said that the defence ministry will co-operate with allies, "
    "partners and friends – although it is not clear how. Analysts do not expect three new "
    "programmes whilst the counter-terrorism review goes on; the ministry’s staff travelled "
    'amongst colleagues. "Our defence is strong," Jens Stoltenberg said in Brussels. See '
    "https://example.org/defence-report or write to analyst@example.org: the indicator "
    "indicator--0d8f1f2e-3b4c-4d5e-8f90-123456789abc matched 198.51.100.7 and "
    'd41d8cd98f00b204e9800998ecf8427e, while `co-operation` stays in code. "We will stay," '
    "Stoltenberg said. The allies met on May 25, 2017, and all of the ministers came, but they "
    "left early. They met on Friday."
)
SYNTHETIC_KINDS = {
    "intro-comma": 1,
    "spelling": 5,
    "that-omission": 1,
    "serial-comma": 1,
    "dash": 1,
    "synonym": 5,
    "contraction": 2,
    "number": 1,
    "compound": 1,
    "apostrophe": 1,
    "quote-style": 2,
    "attribution": 1,
    "date": 1,
    "clause-comma": 1,
    "day-on": 1,
}
NEVER_CHANGED = [
    "Our defence is strong,",
    "Jens Stoltenberg",
    "Brussels",
    "https://example.org/defence-report",
    "analyst@example.org",
    "indicator--0d8f1f2e-3b4c-4d5e-8f90-123456789abc",
    "198.51.100.7",
    "d41d8cd98f00b204e9800998ecf8427e",
    "`co-operation`",
    "We will stay,",
]
TYPOGRAPHIC = {"apostrophe", "quote-style", "dash"}


def news_texts() -> dict[str, str]:
    """The news reports written for the tests (tests/texts/), by file name."""
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(TEXTS.glob("*.txt"))}


def random_bits(slots: list[Slot], rng: random.Random) -> list[int]:
    return [rng.randint(0, 1) for _ in slots]


def shifted(slots: list[Slot], bits: list[int], position: int) -> int:
    """Where ``position`` of the original (outside every slot) lands in the copy."""
    return position + sum(
        len(s.variants[b]) - (s.end - s.start)
        for s, b in zip(slots, bits, strict=True)
        if s.end <= position
    )


def assert_only_slots_differ(original: str, slots: list[Slot], bits: list[int], copy: str):
    """Every stretch of ``original`` between slots is in ``copy`` unchanged, where it belongs,
    and each slot shows one of its variants."""
    at = 0
    for slot, bit in [*zip(slots, bits, strict=True), (None, None)]:
        end = len(original) if slot is None else slot.start
        assert copy[shifted(slots, bits, at) : shifted(slots, bits, end)] == original[at:end]
        if slot is not None:
            place = shifted(slots, bits, slot.start)
            assert copy[place : place + len(slot.variants[bit])] == slot.variants[bit]
            at = slot.end
    assert len(copy) == shifted(slots, bits, len(original))


def with_noise(text: str, rate: float, rng: random.Random) -> str:
    """``text`` with each character replaced, at ``rate``, by a random letter or space."""
    letters = "abcdefghijklmnopqrstuvwxyz "
    return "".join(rng.choice(letters) if rng.random() < rate else c for c in text)


# --- finding --------------------------------------------------------------------------------


def test_the_synthetic_paragraph_has_a_slot_of_every_kind():
    slots = find_slots(SYNTHETIC)
    assert Counter(s.kind for s in slots) == SYNTHETIC_KINDS
    assert [s.index for s in slots] == list(range(len(slots)))
    assert all(a.end <= b.start for a, b in pairwise(slots))
    for slot in slots:
        assert SYNTHETIC[slot.start : slot.end] in slot.variants
        assert slot.variants[0] != slot.variants[1]


def test_slots_keep_a_capital_at_the_start_of_a_sentence():
    slots = find_slots("Amongst the allies, trust grew. Do not wait.")
    assert [s.variants for s in slots] == [("Amongst", "Among"), ("Do not", "Don't")]


def test_it_s_is_never_expanded():
    """ "It's" may stand for "it has"; only its apostrophe is a slot."""
    assert [s.kind for s in find_slots("It's been a long year.")] == ["apostrophe"]


def test_finding_is_deterministic():
    first = find_slots(SYNTHETIC)
    slots_module._find.cache_clear()
    assert find_slots("".join(list(SYNTHETIC))) == first


def test_protected_spans_cover_quotes_names_and_technical_strings():
    protected = [SYNTHETIC[a:b] for a, b in protected_spans(SYNTHETIC)]
    for needle in NEVER_CHANGED:
        assert any(needle in span for span in protected), needle


@pytest.mark.parametrize(
    ("text", "untouched"),
    [
        # An "and" inside a name is not the end of a list.
        ("He met leaders of Bosnia and Herzegovina, Serbia and Croatia.", "Bosnia and Herzegovina"),
        # Appositives: a comma would make two named things three.
        ("Trudeau met his two counterparts, Jens Stoltenberg and Charles Michel.", " and"),
        ("The report named the usual suspects, Russia and China.", " and"),
        ("Its goals, peace and prosperity, were set.", " and"),
        ("The administration, including new appointments and threats, spoke.", " and"),
        # "while" as a noun, "'s" as has or is, contractions before the end of a clause.
        ("She stayed for a while and left.", "while"),
        ("He was there all-the-while.", "while"),
        ("I know what it is. We know who we are.", "it is"),
        # Numbers that are labels, percentages, multipliers or idioms.
        ("Under Article 5 of the treaty, 2 per cent and 3 million troops.", "5"),
        ("Under Article 5 of the treaty, 2 per cent and 3 million troops.", "2"),
        ("Under Article 5 of the treaty, 2 per cent and 3 million troops.", "3"),
        ("One day the Five Eyes met at level 3 security.", "Five"),
        ("One day the Five Eyes met at level 3 security.", "3"),
        # Capitalised words mid-sentence are names; curated lists leave these alone.
        ("The Labour spokesman met the Defence Minister.", "Labour"),
        ("The Labour spokesman met the Defence Minister.", "Defence"),
        ("They advise us and comprise analyses of the program on a meter.", "advise"),
        ("They advise us and comprise analyses of the program on a meter.", "analyses"),
        ("They advise us and comprise analyses of the program on a meter.", "program"),
        ("They advise us and comprise analyses of the program on a meter.", "meter"),
        ("The U.S.-led coalition sent 13,000 troops, 1.4% of its force.", "13,000"),
        ("A hyphen inside Canada–US trade stays.", "–"),
        # "but" before a noun may mean "except"; a speaker followed by an appositive keeps
        # its place; pronouns do not follow the verb; "once upon a time" is an idiom.
        ("He thanked everyone, but the generals stayed away.", ","),
        ('"We will stay," said Sokolsky, a professor at the college.', "said Sokolsky"),
        ('"We will stay," he said.', "he said"),
        ("It began once upon a time.", "upon"),
        # A day's possessive, or a verb whose object could be the day, keeps its "on".
        ("They voted on Monday's bill and spent on Thursday.", "on Monday"),
        ("They voted on Monday's bill and spent on Thursday.", "on Thursday"),
    ],
)
def test_no_slot_where_a_change_could_alter_meaning(text: str, untouched: str):
    at = text.index(untouched)
    for slot in find_slots(text):
        assert slot.end <= at or slot.start >= at + len(untouched), (slot, untouched)


# --- writing: every variant differs from the original only in slots -------------------------


def test_synthetic_variants_change_nothing_outside_slots():
    slots = find_slots(SYNTHETIC)
    for bits in ([0] * len(slots), [1] * len(slots), random_bits(slots, random.Random(1))):
        copy = apply_bits(SYNTHETIC, slots, bits)
        assert_only_slots_differ(SYNTHETIC, slots, bits, copy)
        for needle in NEVER_CHANGED:
            assert copy.count(needle) == SYNTHETIC.count(needle), needle


def test_news_variants_change_nothing_outside_slots():
    rng = random.Random(2)
    for name, text in news_texts().items():
        slots = find_slots(text)
        protected = protected_spans(text)
        for slot in slots:
            if slot.kind == "attribution":  # the speaker's name moves round the verb, unchanged
                names = [text[a:b] for a, b in protected if slot.start <= a < b <= slot.end]
                assert all(n in v for n in names for v in slot.variants), (name, slot)
                continue
            changed = [(slot.start, slot.start + 1), (slot.end - 1, slot.end)]
            if slot.kind != "quote-style":
                changed = [(slot.start, slot.end)]
            assert not any(a < e and s < b for s, e in changed for a, b in protected), (name, slot)
        for bits in ([0] * len(slots), [1] * len(slots), random_bits(slots, rng)):
            copy = apply_bits(text, slots, bits)
            assert_only_slots_differ(text, slots, bits, copy)
            for needle in ("Justin Trudeau", "Jens Stoltenberg", "Manchester", "450 Canadian"):
                assert copy.count(needle) == text.count(needle), (name, needle)
            for number in re.findall(r"\d[\d,.]*\d|\d{2,}", text):
                assert number in copy, (name, number)
            # "two percent" may become "two per cent"; the number stays as it is.
            percents = re.findall(r"\b(\w+) (?:percent|per cent)\b", text)
            assert re.findall(r"\b(\w+) (?:percent|per cent)\b", copy) == percents, name


def test_apply_bits_refuses_what_does_not_fit():
    slots = find_slots(SYNTHETIC)
    with pytest.raises(ValueError, match="bits for"):
        apply_bits(SYNTHETIC, slots, [0])
    with pytest.raises(ValueError, match="neither 0 nor 1"):
        apply_bits(SYNTHETIC, slots, [2] * len(slots))
    with pytest.raises(ValueError, match="does not belong"):
        apply_bits("x" * len(SYNTHETIC), slots, [0] * len(slots))
    with pytest.raises(ValueError, match="out of order"):
        apply_bits(SYNTHETIC, list(reversed(slots)), [0] * len(slots))
    with pytest.raises(ValueError, match="does not belong"):
        read_bits("x" * len(SYNTHETIC), slots, SYNTHETIC)


def report_of(text: str) -> dict[str, Any]:
    name, _, body = text.strip().partition("\n")
    return {
        "type": "report",
        "spec_version": "2.1",
        "id": "report--5f0a4f9e-7c1b-4a4e-9d7e-2b8f0a4b1c11",
        "created": "2017-05-25T11:05:00.000Z",
        "modified": "2017-05-25T11:05:00.000Z",
        "created_by_ref": AUTHOR,
        "name": name,
        "description": body.strip(),
        "published": "2017-05-25T11:05:00Z",
        "report_types": ["threat-report"],
        "object_refs": [AUTHOR],
        "object_marking_refs": [TLP_CLEAR],
        "external_references": [{"source_name": "seed", "url": "https://example.org/seed"}],
    }


def fingerprinted(obj: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    copy = dict(obj)
    for prop in text_fields(obj):
        slots = find_slots(obj[prop])
        copy[prop] = apply_bits(obj[prop], slots, random_bits(slots, rng))
    return copy


def test_a_fingerprinted_report_stays_valid_stix_with_the_same_data():
    rng = random.Random(3)
    for name, text in [("synthetic", "Canada and NATO\n" + SYNTHETIC), *news_texts().items()]:
        report = report_of(text)
        assert validation_errors(report) == [], name
        copy = fingerprinted(report, rng)
        assert validation_errors(copy) == [], name
        assert copy["description"] != report["description"], name
        fields = set(text_fields(report))
        assert {k: v for k, v in copy.items() if k not in fields} == {
            k: v for k, v in report.items() if k not in fields
        }


def test_text_fields_are_prose_only():
    base = {"id": "x--1", "created": "t", "modified": "t", "external_references": [{}]}
    assert text_fields({**base, "type": "report", "name": "n", "description": "d"}) == [
        "name",
        "description",
    ]
    assert text_fields({**base, "type": "note", "abstract": "a", "content": "c"}) == [
        "abstract",
        "content",
    ]
    assert text_fields({**base, "type": "opinion", "explanation": "e", "opinion": "agree"}) == [
        "explanation"
    ]
    indicator = {**base, "type": "indicator", "name": "n", "pattern": "[x]", "description": "d"}
    assert text_fields(indicator) == ["description"]
    assert text_fields({**base, "type": "malware", "name": "Emotet", "description": "d"}) == [
        "description"
    ]
    assert text_fields({**base, "type": "grouping", "name": "g"}) == []
    assert text_fields({**base, "type": "file", "hashes": {"MD5": "0" * 32}, "name": "a"}) == []


# --- density --------------------------------------------------------------------------------


def test_slot_density_on_the_news_texts(capsys, record_property):
    """The issue aims at 100 slots per 1,000 words; the safe kinds give a little over half."""
    texts = news_texts()
    per_kind: Counter[str] = Counter()
    words = 0
    lines = []
    for name, text in texts.items():
        slots = find_slots(text)
        per_kind.update(s.kind for s in slots)
        words += len(text.split())
        density = slot_density(text)
        record_property(f"density {name}", round(density, 1))
        lines.append(f"{name}: {len(slots)} slots, {len(text.split())} words, {density:.1f}/1000")
        assert density >= 40, name
    overall = 1000 * sum(per_kind.values()) / words
    lines.append(f"all texts: {overall:.1f} slots per 1,000 words")
    lines += [f"  {kind}: {1000 * n / words:.1f}/1000" for kind, n in per_kind.most_common()]
    record_property("density", round(overall, 1))
    with capsys.disabled():
        print("\nslot density\n" + "\n".join(lines))
    assert overall >= 50


# --- reading --------------------------------------------------------------------------------


@settings(max_examples=examples(60), deadline=None)
@given(st.randoms(use_true_random=False))
def test_synthetic_round_trip(rng: random.Random):
    slots = find_slots(SYNTHETIC)
    bits = random_bits(slots, rng)
    assert read_bits(SYNTHETIC, slots, apply_bits(SYNTHETIC, slots, bits)) == bits


def test_news_round_trips():
    rng = random.Random(4)
    for name, text in news_texts().items():
        slots = find_slots(text)
        for _ in range(10):
            bits = random_bits(slots, rng)
            assert read_bits(text, slots, apply_bits(text, slots, bits)) == bits, name


def test_an_excerpt_reads_its_slots_and_nothing_outside():
    rng = random.Random(5)
    for name, text in news_texts().items():
        slots = find_slots(text)
        bits = random_bits(slots, rng)
        copy = apply_bits(text, slots, bits)
        start = text.index(" ", int(0.35 * len(text)))
        end = text.index(" ", int(0.65 * len(text)))
        got = read_bits(text, slots, copy[shifted(slots, bits, start) : shifted(slots, bits, end)])
        for slot, bit, read in zip(slots, bits, got, strict=True):
            if slot.end <= start or slot.start >= end:
                assert read is None, (name, slot)
            else:
                assert read == bit, (name, slot)


def test_two_percent_typos_still_read_most_slots(capsys):
    right = wrong = total = 0
    for text in news_texts().values():
        slots = find_slots(text)
        rng = random.Random(6)
        bits = random_bits(slots, rng)
        got = read_bits(text, slots, with_noise(apply_bits(text, slots, bits), 0.02, rng))
        right += sum(r == b for r, b in zip(got, bits, strict=True))
        wrong += sum(r is not None and r != b for r, b in zip(got, bits, strict=True))
        total += len(slots)
    with capsys.disabled():
        print(f"\n2% typos: {right}/{total} slots read right, {wrong} wrong")
    assert right >= 0.9 * total
    assert wrong <= 0.02 * total


def test_noise_on_the_synthetic_paragraph_reads_most_slots():
    slots = find_slots(SYNTHETIC)
    right = 0
    for trial in range(20):
        rng = random.Random(trial)
        bits = random_bits(slots, rng)
        got = read_bits(SYNTHETIC, slots, with_noise(apply_bits(SYNTHETIC, slots, bits), 0.02, rng))
        right += sum(r == b for r, b in zip(got, bits, strict=True))
        assert sum(r is not None and r != b for r, b in zip(got, bits, strict=True)) <= 1
    assert right >= 0.85 * 20 * len(slots)


def test_a_leak_stitched_from_two_copies_reads_each_copys_bits():
    rng = random.Random(7)
    for name, text in news_texts().items():
        slots = find_slots(text)
        first, second = random_bits(slots, rng), random_bits(slots, rng)
        one, two = apply_bits(text, slots, first), apply_bits(text, slots, second)
        breaks = [m.start() for m in re.finditer(r"\n\n", text)]
        seam = breaks[len(breaks) // 2]
        head, tail = one[: shifted(slots, first, seam)], two[shifted(slots, second, seam) :]
        expected = [a if s.end <= seam else b for s, a, b in zip(slots, first, second, strict=True)]
        assert read_bits(text, slots, head + tail) == expected, name
        # The same pieces, the second copy's first: paragraphs moved are aligned on their own.
        moved = read_bits(text, slots, tail + "\n\n" + head)
        assert all(r in (e, None) for r, e in zip(moved, expected, strict=True)), name
        assert sum(r == e for r, e in zip(moved, expected, strict=True)) >= 0.95 * len(slots)


def test_retyped_typography_reads_none_where_fixed_marks_show_it():
    """Text 000 keeps curly apostrophes and dashes inside quotations, where no slot changes
    them: a leak with none left was retyped, so its quote and apostrophe slots say nothing."""
    text = news_texts()["000_brussels-sharing-after-leak.txt"]
    slots = find_slots(text)
    bits = random_bits(slots, random.Random(8))
    straight = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})
    got = read_bits(text, slots, apply_bits(text, slots, bits).translate(straight))
    for slot, bit, read in zip(slots, bits, got, strict=True):
        assert read == (None if slot.kind in TYPOGRAPHIC else bit), slot


def test_unrelated_text_reads_nothing():
    slots = find_slots(SYNTHETIC)
    other = "The weather in the valley was mild, and the harvest came in early this year."
    assert read_bits(SYNTHETIC, slots, other) == [None] * len(slots)
    assert read_bits(SYNTHETIC, slots, "") == [None] * len(slots)
