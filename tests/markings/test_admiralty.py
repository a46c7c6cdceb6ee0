import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from liaison.markings.admiralty import (
    CREDIBILITY,
    RELIABILITY,
    Admiralty,
    confidence_of,
    credibility_of,
    grade,
    grading_of,
    parse_admiralty,
)
from liaison.stix.validate import validation_errors
from tests.stix_factory import indicator

VECTORS = json.loads(
    (Path(__file__).parents[1] / "vectors" / "stix21_confidence_admiralty.json").read_text()
)
ROWS = VECTORS["rows"]
ALL_CODES = [f"{r}{c}" for r in "ABCDEF" for c in range(1, 7)]


# --- the scales ----------------------------------------------------------------------------


def test_reliability_scale():
    assert RELIABILITY == {
        "A": "completely reliable",
        "B": "usually reliable",
        "C": "fairly reliable",
        "D": "not usually reliable",
        "E": "unreliable",
        "F": "reliability cannot be judged",
    }


def test_credibility_scale():
    assert CREDIBILITY == {
        1: "confirmed by other sources",
        2: "probably true",
        3: "possibly true",
        4: "doubtful",
        5: "improbable",
        6: "truth cannot be judged",
    }


# --- codes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ALL_CODES)
def test_round_trip_every_code(code):
    grade = parse_admiralty(code)
    assert grade.code == code
    assert grade == Admiralty(code[0], int(code[1]))
    assert parse_admiralty(code.lower()) == grade
    assert parse_admiralty(f" {code[0]}-{code[1]} ") == grade


def test_all_36_codes_are_distinct():
    assert len({parse_admiralty(code) for code in ALL_CODES}) == 36


@pytest.mark.parametrize("text", ["B2", "b2", " B-2 ", "B - 2", "\tb2\n", "B 2"])
def test_parse_spellings(text):
    assert parse_admiralty(text) == Admiralty("B", 2)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "B",
        "2",
        "2B",
        "BB2",
        "B22",
        "G1",
        "B0",
        "B7",
        "B--2",
        "B2-",
        "-B2",
        "B.2",
        "Б2",
        "B٢",
    ],
)
def test_parse_refuses(text):
    with pytest.raises(ValueError, match="not an Admiralty grade"):
        parse_admiralty(text)


@pytest.mark.parametrize(
    ("reliability", "credibility"),
    [("G", 1), ("b", 2), ("", 1), ("AB", 1), ("A", 0), ("A", 7), ("A", True), ("A", 2.0)],
)
def test_constructor_refuses_out_of_scale(reliability, credibility):
    with pytest.raises(ValueError):
        Admiralty(reliability, credibility)


@pytest.mark.parametrize(
    ("code", "described"),
    [
        ("B2", "B2: usually reliable source, probably true"),
        ("A1", "A1: completely reliable source, confirmed by other sources"),
        ("E5", "E5: unreliable source, improbable"),
        ("F6", "F6: source reliability cannot be judged, truth cannot be judged"),
    ],
)
def test_describe(code, described):
    assert parse_admiralty(code).describe() == described


# --- STIX 2.1 Appendix A vectors -----------------------------------------------------------


def test_vectors_name_their_source():
    assert "STIX Version 2.1" in VECTORS["source"]
    assert "Appendix A" in VECTORS["source"]
    assert [row["credibility"] for row in ROWS] == [6, 5, 4, 3, 2, 1]


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row["admiralty_credibility"])
def test_confidence_of_matches_the_appendix(row):
    assert confidence_of(row["credibility"]) == row["stix_confidence"]


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row["admiralty_credibility"])
def test_credibility_of_matches_the_appendix_ranges(row):
    if row["range"] is None:
        assert row["credibility"] not in {credibility_of(v) for v in range(101)}
        return
    low, high = row["range"]
    assert {credibility_of(v) for v in range(low, high + 1)} == {row["credibility"]}


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row["admiralty_credibility"])
def test_labels_match_the_appendix(row):
    number, label = row["admiralty_credibility"].split(" - ", 1)
    assert int(number) == row["credibility"]
    assert CREDIBILITY[row["credibility"]] == label.lower()


def test_appendix_ranges_cover_0_to_100_exactly_once():
    covered = sorted(
        v for row in ROWS if row["range"] for v in range(row["range"][0], row["range"][1] + 1)
    )
    assert covered == list(range(101))


@pytest.mark.parametrize("bad", [-1, 101, 1000, True, 50.0, "50", None])
def test_credibility_of_refuses_invalid_confidence(bad):
    with pytest.raises(ValueError, match="0-100"):
        credibility_of(bad)


@pytest.mark.parametrize("bad", [0, 7, -1, True, 1.0, "1", None])
def test_confidence_of_refuses_invalid_credibility(bad):
    with pytest.raises(ValueError):
        confidence_of(bad)


@given(st.integers(min_value=1, max_value=5))
def test_confidence_reads_back_as_the_same_credibility(credibility):
    value = confidence_of(credibility)
    assert value is not None
    assert credibility_of(value) == credibility


@given(st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=100))
def test_higher_confidence_never_reads_as_worse_credibility(a, b):
    low, high = sorted((a, b))
    assert credibility_of(high) <= credibility_of(low)


def test_grade_keeps_the_code_exactly_and_sets_confidence():

    for code in ("A1", "B2", "C3", "F6", "E5"):
        graded = grade(indicator(1), parse_admiralty(code))
        assert grading_of(graded).code == code
        assert validation_errors(graded) == []
    assert grade(indicator(1), parse_admiralty("B2"))["confidence"] == 70
    assert "confidence" not in grade(dict(indicator(1), confidence=5), parse_admiralty("C6"))


def test_grading_from_confidence_alone_has_unknown_reliability():
    from liaison.markings.admiralty import grading_of

    assert grading_of(dict(indicator(1), confidence=85)).code == "F1"
    assert grading_of(indicator(1)) is None
