import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from liaison.markings import classification
from liaison.markings.classification import (
    SCALES,
    Level,
    compare,
    equivalent,
    level,
    levels,
    parse_level,
)

# Every scale, lowest first, as the brief and the source policies give them.
EXPECTED_ORDER: dict[str, list[str]] = {
    "CAN": [
        "UNCLASSIFIED",
        "PROTECTED A",
        "PROTECTED B",
        "PROTECTED C",
        "CONFIDENTIAL",
        "SECRET",
        "TOP SECRET",
    ],
    "USA": ["U", "C", "S", "TS"],
    "GBR": ["OFFICIAL", "OFFICIAL-SENSITIVE", "SECRET", "TOP SECRET"],
    "AUS": ["UNOFFICIAL", "OFFICIAL", "OFFICIAL: SENSITIVE", "PROTECTED", "SECRET", "TOP SECRET"],
    "NZL": [
        "UNCLASSIFIED",
        "IN-CONFIDENCE",
        "SENSITIVE",
        "RESTRICTED",
        "CONFIDENTIAL",
        "SECRET",
        "TOP SECRET",
    ],
    "NATO": ["NU", "NR", "NC", "NS", "CTS"],
    "EU": ["RESTREINT UE", "CONFIDENTIEL UE", "SECRET UE", "TRES SECRET UE"],
}

UNRANKED = {
    "CAN:PROTECTED A",
    "CAN:PROTECTED B",
    "CAN:PROTECTED C",
    "GBR:OFFICIAL-SENSITIVE",
    "AUS:UNOFFICIAL",
    "AUS:OFFICIAL: SENSITIVE",
    "AUS:PROTECTED",
    "NZL:IN-CONFIDENCE",
    "NZL:SENSITIVE",
}

ALL_LEVELS = [lvl for scale in SCALES for lvl in levels(scale)]
RANKED = [lvl for lvl in ALL_LEVELS if lvl.rank is not None]

all_levels = st.sampled_from(ALL_LEVELS)
ranked_levels = st.sampled_from(RANKED)
scales = st.sampled_from(SCALES)


def lv(text: str) -> Level:
    return parse_level(text)


# --- the data -------------------------------------------------------------------------------


def test_scales_are_the_seven_expected():
    assert SCALES == ("CAN", "USA", "GBR", "AUS", "NZL", "NATO", "EU")


@pytest.mark.parametrize("scale", list(EXPECTED_ORDER))
def test_every_scale_is_in_order(scale):
    assert [lvl.name for lvl in levels(scale)] == EXPECTED_ORDER[scale]
    assert [lvl.order for lvl in levels(scale)] == list(range(len(EXPECTED_ORDER[scale])))
    assert all(lvl.scale == scale for lvl in levels(scale))


def test_exactly_the_national_designations_have_no_rank():
    assert {str(lvl) for lvl in ALL_LEVELS if lvl.rank is None} == UNRANKED


@pytest.mark.parametrize(
    ("rank", "members"),
    [
        (
            0,
            [
                "CAN:UNCLASSIFIED",
                "USA:U",
                "GBR:OFFICIAL",
                "AUS:OFFICIAL",
                "NZL:UNCLASSIFIED",
                "NATO:NU",
            ],
        ),
        (1, ["NZL:RESTRICTED", "NATO:NR", "EU:RESTREINT UE"]),
        (2, ["CAN:CONFIDENTIAL", "USA:C", "NZL:CONFIDENTIAL", "NATO:NC", "EU:CONFIDENTIEL UE"]),
        (
            3,
            [
                "CAN:SECRET",
                "USA:S",
                "GBR:SECRET",
                "AUS:SECRET",
                "NZL:SECRET",
                "NATO:NS",
                "EU:SECRET UE",
            ],
        ),
        (
            4,
            [
                "CAN:TOP SECRET",
                "USA:TS",
                "GBR:TOP SECRET",
                "AUS:TOP SECRET",
                "NZL:TOP SECRET",
                "NATO:CTS",
                "EU:TRES SECRET UE",
            ],
        ),
    ],
)
def test_equivalence_classes(rank, members):
    assert sorted(str(lvl) for lvl in ALL_LEVELS if lvl.rank == rank) == sorted(members)
    for a in members:
        for b in members:
            assert equivalent(lv(a), lv(b).scale) == lv(b)


def test_ranks_rise_with_order_within_every_scale():
    for scale in SCALES:
        ranks = [lvl.rank for lvl in levels(scale) if lvl.rank is not None]
        assert ranks == sorted(set(ranks))


# --- str, describe -------------------------------------------------------------------------


def test_str_is_the_storage_form():
    assert str(level("CAN", "SECRET")) == "CAN:SECRET"
    assert str(level("NATO", "NATO SECRET")) == "NATO:NS"
    assert str(level("USA", "TOP SECRET")) == "USA:TS"


@pytest.mark.parametrize(
    ("text", "described"),
    [
        ("CAN:SECRET", "SECRET (CAN)"),
        ("CAN:PROTECTED B", "PROTECTED B (CAN)"),
        ("USA:TS", "TS (USA)"),
        ("GBR:OFFICIAL-SENSITIVE", "OFFICIAL-SENSITIVE (GBR)"),
        ("NATO:NC", "NATO CONFIDENTIAL"),
        ("NATO:CTS", "COSMIC TOP SECRET"),
        ("EU:RESTREINT UE", "RESTREINT UE/EU RESTRICTED"),
        ("EU:SECRET UE", "SECRET UE/EU SECRET"),
    ],
)
def test_describe(text, described):
    assert lv(text).describe() == described


def test_long_names():
    assert lv("NATO:NS").long_name == "NATO SECRET"
    assert lv("USA:TS").long_name == "TOP SECRET"
    assert lv("CAN:SECRET").long_name == "SECRET"


# --- parse_level ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CAN:SECRET", "CAN:SECRET"),
        ("can:secret", "CAN:SECRET"),
        ("  CAN :  Secret  ", "CAN:SECRET"),
        ("CAN:protected   b", "CAN:PROTECTED B"),
        ("CAN:PB", "CAN:PROTECTED B"),
        ("CAN:TS", "CAN:TOP SECRET"),
        ("NATO:NS", "NATO:NS"),
        ("NATO:NATO SECRET", "NATO:NS"),
        ("nato:nato  secret", "NATO:NS"),
        ("NATO:SECRET", "NATO:NS"),
        ("NATO:COSMIC TOP SECRET", "NATO:CTS"),
        ("USA:TOP SECRET", "USA:TS"),
        ("USA:UNCLASSIFIED", "USA:U"),
        ("US:S", "USA:S"),
        ("UK:OFFICIAL SENSITIVE", "GBR:OFFICIAL-SENSITIVE"),
        ("GBR:official-sensitive", "GBR:OFFICIAL-SENSITIVE"),
        ("AUS:OFFICIAL: SENSITIVE", "AUS:OFFICIAL: SENSITIVE"),
        ("AUS:OFFICIAL:SENSITIVE", "AUS:OFFICIAL: SENSITIVE"),
        ("aus:official sensitive", "AUS:OFFICIAL: SENSITIVE"),
        ("NZL:in-confidence", "NZL:IN-CONFIDENCE"),
        ("EU:RESTREINT UE/EU RESTRICTED", "EU:RESTREINT UE"),
        ("EU:EU RESTRICTED", "EU:RESTREINT UE"),
        ("EU:TRÈS SECRET UE", "EU:TRES SECRET UE"),
        ("eu:tres secret ue", "EU:TRES SECRET UE"),
    ],
)
def test_parse_level_accepts_aliases_and_long_names(text, expected):
    assert str(parse_level(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SECRET",  # no scale: ambiguous between partners
        "NATO SECRET",
        ":SECRET",
        "CAN:",
        "CAN:SEKRET",
        "CAN:NS",
        "XYZ:SECRET",
        "GBR:CONFIDENTIAL",  # abolished in 2014
        "GBR:RESTRICTED",
        "EU:UNCLASSIFIED",  # EUCI has no unclassified level
        "CAN:SECRET:EXTRA",
        "USA:CUI",
    ],
)
def test_parse_level_refuses(text):
    message = "unknown classification '" + text + "'"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        parse_level(text)


def test_level_refuses_unknown_names():
    with pytest.raises(ValueError, match=r"^unknown classification 'GBR:CONFIDENTIAL'$"):
        level("GBR", "CONFIDENTIAL")
    with pytest.raises(ValueError, match="unknown classification"):
        level("MARS", "SECRET")


def test_level_accepts_aliases():
    assert level("can", "secret") == lv("CAN:SECRET")
    assert level("NATO", "NATO SECRET") == lv("NATO:NS")


# --- equivalent ----------------------------------------------------------------------------


def test_equivalent_on_own_scale_is_itself():
    pb = lv("CAN:PROTECTED B")
    assert equivalent(pb, "CAN") is pb


def test_equivalent_examples():
    assert equivalent(lv("CAN:SECRET"), "NATO") == lv("NATO:NS")
    assert equivalent(lv("CAN:SECRET"), "EU") == lv("EU:SECRET UE")
    assert equivalent(lv("CAN:CONFIDENTIAL"), "USA") == lv("USA:C")
    assert equivalent(lv("NATO:NR"), "NZL") == lv("NZL:RESTRICTED")


def test_no_equivalent_where_a_scale_lacks_the_rank():
    assert equivalent(lv("CAN:CONFIDENTIAL"), "GBR") is None
    assert equivalent(lv("CAN:CONFIDENTIAL"), "AUS") is None
    assert equivalent(lv("NATO:NR"), "CAN") is None
    assert equivalent(lv("CAN:UNCLASSIFIED"), "EU") is None


@pytest.mark.parametrize("scale", [s for s in SCALES if s != "CAN"])
def test_protected_has_no_equivalent(scale):
    for name in ("PROTECTED A", "PROTECTED B", "PROTECTED C"):
        assert equivalent(level("CAN", name), scale) is None


def test_equivalent_refuses_unknown_scale():
    with pytest.raises(ValueError, match="unknown classification scale 'MARS'"):
        equivalent(lv("CAN:SECRET"), "MARS")


def test_equivalent_accepts_scale_spellings():
    assert equivalent(lv("CAN:SECRET"), "uk") == lv("GBR:SECRET")


# --- compare -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "clearance", "expected"),
    [
        ("CAN:SECRET", "USA:TS", "within"),
        ("CAN:SECRET", "USA:S", "within"),
        ("CAN:SECRET", "USA:C", "exceeds"),
        ("CAN:SECRET", "NATO:NC", "exceeds"),
        ("CAN:SECRET", "NATO:NS", "within"),
        ("CAN:TOP SECRET", "NATO:NS", "exceeds"),
        ("NATO:NR", "EU:RESTREINT UE", "within"),
        ("NATO:NR", "NZL:SENSITIVE", "exceeds"),  # NZL RESTRICTED sits above SENSITIVE
        ("CAN:SECRET", "GBR:OFFICIAL-SENSITIVE", "exceeds"),
        ("CAN:UNCLASSIFIED", "AUS:UNOFFICIAL", "exceeds"),  # AUS OFFICIAL > UNOFFICIAL
        ("GBR:OFFICIAL", "CAN:PROTECTED A", "within"),
        ("CAN:UNCLASSIFIED", "EU:RESTREINT UE", "no-equivalent"),
        ("CAN:PROTECTED B", "USA:TS", "no-equivalent"),
        ("AUS:PROTECTED", "CAN:TOP SECRET", "no-equivalent"),
        # same scale: order decides, ranks do not matter
        ("CAN:PROTECTED B", "CAN:PROTECTED C", "within"),
        ("CAN:PROTECTED B", "CAN:PROTECTED A", "exceeds"),
        ("CAN:PROTECTED C", "CAN:CONFIDENTIAL", "within"),
        ("CAN:SECRET", "CAN:SECRET", "within"),
        ("CAN:TOP SECRET", "CAN:SECRET", "exceeds"),
        ("GBR:OFFICIAL-SENSITIVE", "GBR:OFFICIAL", "exceeds"),
    ],
)
def test_compare(item, clearance, expected):
    assert compare(lv(item), lv(clearance)) == expected


@pytest.mark.parametrize("name", EXPECTED_ORDER["GBR"])
def test_can_confidential_has_no_gbr_equivalent(name):
    assert compare(lv("CAN:CONFIDENTIAL"), level("GBR", name)) == "no-equivalent"


@pytest.mark.parametrize("clearance", [lvl for lvl in ALL_LEVELS if lvl.scale != "CAN"], ids=str)
def test_protected_b_against_any_foreign_level(clearance):
    assert compare(lv("CAN:PROTECTED B"), clearance) == "no-equivalent"


# --- properties ----------------------------------------------------------------------------


@given(all_levels, st.data())
def test_compare_on_the_same_scale_agrees_with_order(item, data):
    clearance = data.draw(st.sampled_from(levels(item.scale)))
    expected = "within" if item.order <= clearance.order else "exceeds"
    assert compare(item, clearance) == expected


@given(ranked_levels, scales)
def test_equivalent_is_symmetric_where_defined(item, scale):
    there = equivalent(item, scale)
    if there is not None:
        assert there.rank == item.rank
        assert equivalent(there, item.scale) == item


@given(all_levels, all_levels)
def test_compare_across_scales_follows_the_equivalent(item, clearance):
    result = compare(item, clearance)
    counterpart = equivalent(item, clearance.scale)
    assert (result == "no-equivalent") == (counterpart is None)
    if item.scale != clearance.scale and item.rank is None:
        assert result == "no-equivalent"


@given(all_levels)
def test_round_trip_through_storage_form(item):
    assert parse_level(str(item)) == item
    assert parse_level(str(item).lower()) == item
    assert level(item.scale, item.long_name) == item


def test_round_trip_every_level():
    """Not left to sampling: every level of every scale survives str -> parse_level."""
    assert [parse_level(str(lvl)) for lvl in ALL_LEVELS] == ALL_LEVELS
    assert len(ALL_LEVELS) == sum(len(names) for names in EXPECTED_ORDER.values())


# --- the loader refuses inconsistent data --------------------------------------------------

LADDER = {"0": "u", "1": "r", "2": "c", "3": "s", "4": "ts"}


def load(levels_: list[dict[str, object]]):
    return classification._load({"ranks": LADDER, "scales": {"X": {"levels": levels_}}})


def test_loader_accepts_a_consistent_scale():
    scales, codes = load([{"name": "LOW", "rank": 0}, {"name": "MID"}, {"name": "HIGH", "rank": 3}])
    assert [str(lvl) for lvl in scales["X"].levels] == ["X:LOW", "X:MID", "X:HIGH"]
    assert codes == {"x": "X"}


@pytest.mark.parametrize(
    "bad",
    [
        [{"name": "A", "rank": 3}, {"name": "B", "rank": 3}],  # two levels of one rank
        [{"name": "A", "rank": 3}, {"name": "B", "rank": 2}],  # rank falls as order rises
        [{"name": "A", "rank": 9}],  # not on the ladder
        [{"name": "A", "rank": True}],
        [{"name": "A", "rank": 1.0}],
        [{"name": "A", "rnak": 1}],  # typo must not silently drop the rank
        [{"name": "A"}, {"name": "a"}],  # same name once case is ignored
        [{"name": "A", "aliases": ["B"]}, {"name": "B"}],
        [],
    ],
)
def test_loader_refuses_inconsistent_scales(bad):
    with pytest.raises(ValueError):
        load(bad)


def test_loader_refuses_a_scale_spelling_used_twice():
    document = {
        "ranks": LADDER,
        "scales": {
            "GBR": {"aliases": ["UK"], "levels": [{"name": "A"}]},
            "UK": {"levels": [{"name": "A"}]},
        },
    }
    with pytest.raises(ValueError, match="UK"):
        classification._load(document)
