import json
from pathlib import Path

import pytest

from liaison.markings.handling import (
    ACS_EXTENSION,
    LIAISON_EXTENSION,
    Handling,
    UnknownMarking,
    eyes_only_country,
    marking_definition,
)
from liaison.markings.read import read_marking
from liaison.markings.tlp import TLP_AMBER, TLP_CLEAR, TLP_RED
from liaison.stix.validate import validation_errors

AUTHOR = "identity--11111111-1111-4111-8111-111111111111"
VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "acs_markings.json").read_text())


def test_tlp_ids_need_no_definition():
    assert read_marking(TLP_CLEAR, None) == Handling(tlp="clear")
    assert read_marking(TLP_AMBER, None) == Handling(tlp="amber")
    assert read_marking(TLP_RED, {"anything": 1}) == Handling(tlp="red")


def test_tlp_v1_white_reads_as_clear():
    white = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"
    assert read_marking(white, None) == Handling(tlp="clear")


def test_liaison_marking_round_trip():
    definition = marking_definition(AUTHOR, "CAN:SECRET", ["FVEY", "FRA"], ["ORCON"])
    assert validation_errors(definition) == []
    assert read_marking(definition["id"], definition) == Handling(
        classification="CAN:SECRET",
        releasable_to=frozenset({"FVEY", "FRA"}),
        caveats=frozenset({"ORCON"}),
    )
    # The same rules give the same marking-definition id.
    assert (
        marking_definition(AUTHOR, "CAN:SECRET", ["FVEY", "FRA"], ["ORCON"])["id"]
        == (definition["id"])
    )


def test_statement_says_nothing():
    statement = {
        "type": "marking-definition",
        "id": "marking-definition--s",
        "definition_type": "statement",
        "definition": {"statement": "Copyright 2026"},
    }
    assert read_marking("marking-definition--s", statement).is_empty


@pytest.mark.parametrize(
    "definition",
    [
        None,
        {"type": "marking-definition", "definition_type": "tlp", "definition": {"tlp": "x"}},
        {"type": "marking-definition", "extensions": {"extension-definition--other": {}}},
        {"extensions": {LIAISON_EXTENSION: {"classification": 5}}},
        {"extensions": {LIAISON_EXTENSION: {"releasable_to": "FVEY"}}},
        {"extensions": {LIAISON_EXTENSION: {"caveats": "NOFORN"}}},
    ],
)
def test_anything_else_is_unknown(definition):
    with pytest.raises(UnknownMarking, match="unknown marking marking-definition--x"):
        read_marking("marking-definition--x", definition)


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_acs_vectors(case):
    definition = {"type": "marking-definition", "extensions": {ACS_EXTENSION: case["extension"]}}
    expected = case["handling"]
    if expected is None:
        with pytest.raises(UnknownMarking, match="ACS"):
            read_marking("marking-definition--acs", definition)
        return
    handling = read_marking("marking-definition--acs", definition)
    assert handling == Handling(
        tlp=expected["tlp"],
        classification=expected["classification"],
        releasable_to=(
            frozenset(expected["releasable_to"]) if expected["releasable_to"] is not None else None
        ),
        caveats=frozenset(expected["caveats"]),
    )


def test_eyes_only_country():
    assert eyes_only_country("CAN EYES ONLY") == "CAN"
    assert eyes_only_country("NOFORN") is None
    assert eyes_only_country("EYES ONLY") is None
