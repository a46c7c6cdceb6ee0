import pytest
from hypothesis import given
from hypothesis import strategies as st

from liaison.policy.tearline import SelectorError, apply_cuts, cut_references, references

NOTE = {
    "type": "note",
    "id": "note--1",
    "content": "c",
    "abstract": "a",
    "authors": ["x", "y", "z"],
    "external_references": [{"source_name": "s", "url": "u"}],
    "object_refs": ["report--1", "report--2"],
    "created_by_ref": "identity--me",
    "object_marking_refs": ["marking-definition--m"],
    "granular_markings": [
        {"marking_ref": "marking-definition--g", "selectors": ["abstract", "authors.[1]"]},
        {"marking_ref": "marking-definition--h", "selectors": ["content"]},
    ],
}


def test_cut_top_level_field_and_its_granular_marking():
    copy = apply_cuts(NOTE, ("content",))
    assert "content" not in copy
    assert copy["granular_markings"] == [NOTE["granular_markings"][0]]
    assert NOTE["content"] == "c"  # the original is untouched


def test_cut_list_items_from_the_end_first():
    copy = apply_cuts(NOTE, ("authors.[0]", "authors.[2]"))
    assert copy["authors"] == ["y"]


def test_cut_nested_property():
    copy = apply_cuts(NOTE, ("external_references.[0].url",))
    assert copy["external_references"] == [{"source_name": "s"}]


def test_surviving_selectors_are_kept():
    copy = apply_cuts(NOTE, ("abstract",))
    assert copy["granular_markings"][0]["selectors"] == ["authors.[1]"]


def test_all_granular_markings_cut_removes_the_property():
    copy = apply_cuts(NOTE, ("abstract", "authors", "content"))
    assert "granular_markings" not in copy


@pytest.mark.parametrize("selector", ["nope", "authors.[9]", "content.[0]"])
def test_bad_selectors_raise(selector):
    with pytest.raises(SelectorError):
        apply_cuts(NOTE, (selector,))


def test_references_skip_originator_and_markings():
    assert references(NOTE) == {"report--1", "report--2"}


def test_cut_references():
    copy, removed = cut_references(NOTE, {"report--2"}, frozenset({"object_refs"}))
    assert copy["object_refs"] == ["report--2"] and removed == ["report--1"]
    assert copy["created_by_ref"] == "identity--me"


def test_all_required_references_cut_withholds():
    copy, removed = cut_references(NOTE, set(), frozenset({"object_refs"}))
    assert copy is None and set(removed) == {"report--1", "report--2"}


def test_optional_reference_is_dropped():
    relationship = {
        "type": "sighting",
        "sighting_of_ref": "indicator--1",
        "observed_data_refs": ["o--1"],
    }
    copy, removed = cut_references(relationship, {"indicator--1"}, frozenset({"sighting_of_ref"}))
    assert copy == {"type": "sighting", "sighting_of_ref": "indicator--1"}
    assert removed == ["o--1"]


@given(st.sets(st.sampled_from(["content", "abstract", "authors", "authors.[0]", "authors.[2]"])))
def test_no_cut_selector_survives(cuts):
    copy = apply_cuts(NOTE, tuple(cuts))
    for selector in cuts:
        if "." not in selector:
            assert selector not in copy
    for entry in copy.get("granular_markings", []):
        assert not set(entry["selectors"]) & cuts
