"""Rules for levels a scale lacks: which rules can be applied, and what they give."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from liaison.markings.classification import (
    RUNGS,
    SCALES,
    equivalent,
    levels,
    parse_level,
    protected_as,
    protection,
    rung,
)

ALL_LEVELS = [lvl for scale in SCALES for lvl in levels(scale)]


def test_the_ladder_names_its_rungs():
    assert dict(RUNGS) == {
        0: "unclassified",
        1: "restricted",
        2: "confidential",
        3: "secret",
        4: "top secret",
    }
    assert rung("CONFIDENTIAL") == rung("confidential") == 2
    assert rung("Top-Secret") == rung("TOP SECRET") == 4
    with pytest.raises(ValueError, match="not a rung of the classification ladder"):
        rung("COSMIC")


def test_the_uk_rule():
    assert protection("GBR", 2, "SECRET") == parse_level("GBR:SECRET")
    assert protection("UK", 2, "gbr:secret") == parse_level("GBR:SECRET")
    assert protection("GBR", 1, "official sensitive") == parse_level("GBR:OFFICIAL-SENSITIVE")
    assert protection("AUS", 1, "OFFICIAL: SENSITIVE") == parse_level("AUS:OFFICIAL: SENSITIVE")
    assert protection("EU", 0, "RESTREINT UE") == parse_level("EU:RESTREINT UE")


@pytest.mark.parametrize(
    ("scale", "rank", "name", "message"),
    [
        ("GBR", 3, "TOP SECRET", "the GBR scale has its own SECRET level (SECRET)"),
        ("NATO", 2, "NS", "the NATO scale has its own CONFIDENTIAL level (NC)"),
        ("GBR", 2, "SECRT", "CONFIDENTIAL = 'SECRT' is not a level of the GBR scale"),
        ("GBR", 2, "NATO:NS", "CONFIDENTIAL = 'NATO:NS' is not a level of the GBR scale"),
        ("GBR", 2, "OFFICIAL", "no better than OFFICIAL, the GBR level of a lower rank"),
        ("AUS", 2, "UNOFFICIAL", "no better than OFFICIAL, the AUS level of a lower rank"),
    ],
)
def test_rules_this_node_cannot_apply(scale, rank, name, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        protection(scale, rank, name)


def test_protected_as_fills_only_the_named_gap():
    uk = {"confidential": "SECRET"}
    assert protected_as(parse_level("CAN:CONFIDENTIAL"), "GBR", uk) == parse_level("GBR:SECRET")
    assert protected_as(parse_level("NATO:NC"), "GBR", uk) == parse_level("GBR:SECRET")
    assert protected_as(parse_level("NATO:NR"), "GBR", uk) is None  # no rule for RESTRICTED
    assert protected_as(parse_level("CAN:PROTECTED B"), "GBR", uk) is None  # no rung
    assert protected_as(parse_level("CAN:SECRET"), "GBR", uk) is None  # has an equivalent
    assert protected_as(parse_level("CAN:CONFIDENTIAL"), "GBR", {}) is None


@given(level=st.sampled_from(ALL_LEVELS), scale=st.sampled_from(SCALES), data=st.data())
def test_a_valid_rule_never_protects_below_a_lower_rung(level, scale, data):
    """Whatever valid rule a scale has for a rung it lacks, the stand-in ranks above every
    level of a lower rung on that scale, and a level with an equivalent keeps it."""
    name = data.draw(st.sampled_from([lvl.name for lvl in levels(scale)]))
    try:
        protection(scale, level.rank if level.rank is not None else 0, name)
    except ValueError:
        return
    rules = {RUNGS[level.rank if level.rank is not None else 0]: name}
    stand_in = protected_as(level, scale, rules)
    if level.rank is None or equivalent(level, scale) is not None:
        assert stand_in is None
        return
    assert stand_in is not None and stand_in.scale == scale
    lower = [lvl for lvl in levels(scale) if lvl.rank is not None and lvl.rank < level.rank]
    assert all(stand_in.order > lvl.order for lvl in lower)
