"""A MISP event through misp-stix into the store: originator, TLP and Admiralty kept, on real
MISP event JSON (tests/vectors/misp/README.md names each file's source)."""

import json
from pathlib import Path

import pytest

from liaison.errors import InputError, MalformedJSON
from liaison.ingest.misp import objects_from_misp
from liaison.markings.admiralty import Admiralty, grading_of
from liaison.markings.handling import LIAISON_EXTENSION, TLP_V1_LEVELS
from liaison.markings.tlp import TLP_AMBER, TLP_CLEAR, TLP_RED, tlp_definition
from liaison.settings import InputLimits
from liaison.stix.validate import validation_errors

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "misp"
CONVERTED = ["circl-xorist.json", "orgname-random-event.json", "circl-shadow-graded.json"]
NODE = "identity--8e5f5b5e-3c43-4a8e-9a4f-1b0d6c4a1e11"
CIRCL = "identity--55f6ea5e-2c60-40e5-964f-47a8950d210f"
ORGNAME = "identity--57586e9a-4a64-4f79-9009-4dc1c0a83866"
# circl-shadow-graded.json: the standalone attribute tagged tlp:red and A1 in the copy
GRADED_ATTRIBUTE = "5a4cb1c7-fa84-45fa-8d27-4822950d210f"


def convert(name_or_event, node=NODE):
    if isinstance(name_or_event, str):
        data = (VECTORS / name_or_event).read_bytes()
    else:
        data = json.dumps(name_or_event).encode()
    objects = objects_from_misp(data, InputLimits(), node)
    return {obj["id"]: obj for obj in objects}


def vector(name):
    return json.loads((VECTORS / name).read_text())


def with_tags(event, *tags, attribute=None):
    """A copy of ``event`` with these MISP tags on the event (or on its attribute number
    ``attribute``)."""
    event = json.loads(json.dumps(event))
    body = event.get("Event", event)
    target = body if attribute is None else body["Attribute"][attribute]
    target["Tag"] = [{"name": tag} for tag in tags]
    return event


def _unknown_type():
    event = vector("circl-xorist.json")
    event["Event"]["Attribute"][0]["type"] = "nonsense"
    return event


UNKNOWN_TYPE = _unknown_type()  # an attribute pymisp cannot load


def markable(objects):
    return [o for o in objects.values() if o["type"] != "marking-definition"]


# --- conversion ---


@pytest.mark.parametrize("name", CONVERTED)
def test_every_converted_object_validates_and_conversion_is_repeatable(name):
    objects = convert(name)
    assert {i: validation_errors(o) for i, o in objects.items() if validation_errors(o)} == {}
    assert convert(name) == objects


@pytest.mark.parametrize(
    ("name", "org", "org_name", "container"),
    [
        ("circl-xorist.json", CIRCL, "CIRCL", "report--57c4445b-c548-4654-af0b-4be3950d210f"),
        (
            "orgname-random-event.json",
            ORGNAME,
            "ORGNAME",
            "grouping--5758ebf5-c898-48e6-9fe9-5665c0a83866",
        ),
    ],
)
def test_the_events_orgc_is_the_originator_of_everything(name, org, org_name, container):
    objects = convert(name)
    assert objects[org]["type"] == "identity" and objects[org]["name"] == org_name
    assert objects[container]["created_by_ref"] == org
    for obj in markable(objects):
        if "created" in obj:  # SCOs have no originator in STIX 2.1
            assert obj["created_by_ref"] == org, obj["id"]


def test_tlp_white_becomes_tlp_clear_on_every_object():
    objects = convert("circl-xorist.json")
    assert objects["report--57c4445b-c548-4654-af0b-4be3950d210f"]["object_marking_refs"] == [
        TLP_CLEAR
    ]
    assert objects[TLP_CLEAR] == tlp_definition(TLP_CLEAR)
    assert not set(TLP_V1_LEVELS) & set(objects)
    for obj in markable(objects):
        assert obj["object_marking_refs"] == [TLP_CLEAR], obj["id"]
    assert all("tlp:" not in label for o in objects.values() for label in o.get("labels", []))


def test_an_unmarked_event_stays_unmarked():
    objects = convert("orgname-random-event.json")
    assert not any(o.get("object_marking_refs") for o in objects.values())
    assert not any(o["type"] == "marking-definition" for o in objects.values())


def test_admiralty_tags_grade_the_object_they_are_on():
    objects = convert("circl-shadow-graded.json")
    event = objects["grouping--5a4cb19a-f550-437f-bd29-48ed950d210f"]
    assert grading_of(event) == Admiralty("B", 2)
    assert event["extensions"][LIAISON_EXTENSION]["admiralty"] == "B2"
    assert event["confidence"] == 70
    attribute = objects[f"observed-data--{GRADED_ATTRIBUTE}"]
    assert grading_of(attribute) == Admiralty("A", 1) and attribute["confidence"] == 90
    ungraded = objects["indicator--5a4cb2b8-7958-4323-852c-4d2a950d210f"]
    assert grading_of(ungraded) is None


def test_an_attributes_tlp_reaches_its_observable_and_relationships():
    objects = convert("circl-shadow-graded.json")
    assert objects["grouping--5a4cb19a-f550-437f-bd29-48ed950d210f"]["object_marking_refs"] == [
        TLP_AMBER
    ]
    red = {f"observed-data--{GRADED_ATTRIBUTE}", f"file--{GRADED_ATTRIBUTE}"}
    for obj in markable(objects):
        expected = {TLP_AMBER, TLP_RED} if obj["id"] in red else {TLP_AMBER}
        assert set(obj["object_marking_refs"]) == expected, obj["id"]
    assert objects[TLP_RED] == tlp_definition(TLP_RED)


def test_a_relationship_carries_the_markings_of_both_ends():
    event = with_tags(vector("circl-xorist.json"), "tlp:red", attribute=4)  # a filename, to_ids
    objects = convert(event)
    uuid = "57c4448a-fb04-457d-87e7-4127950d210f"
    based_on = next(
        o
        for o in objects.values()
        if o["type"] == "relationship" and o["source_ref"] == f"indicator--{uuid}"
    )
    for obj in (objects[f"indicator--{uuid}"], objects[f"file--{uuid}"], based_on):
        assert set(obj["object_marking_refs"]) == {TLP_CLEAR, TLP_RED}, obj["id"]


@pytest.mark.parametrize(
    ("tag", "marking"),
    [
        ("TLP:RED", TLP_RED),
        ("tlp:amber+strict", "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"),
        ("Tlp:Clear", TLP_CLEAR),
    ],
)
def test_tlp_tags_in_any_spelling_become_tlp_2_0(tag, marking):
    objects = convert(with_tags(vector("orgname-random-event.json"), tag))
    grouping = objects["grouping--5758ebf5-c898-48e6-9fe9-5665c0a83866"]
    assert grouping["object_marking_refs"] == [marking]
    assert tag not in grouping["labels"]
    assert all(o["object_marking_refs"] == [marking] for o in markable(objects))


def test_a_tlp_tag_liaison_cannot_enforce_refuses_the_event():
    with pytest.raises(InputError, match="tlp:ex:chr"):
        convert(with_tags(vector("circl-xorist.json"), "tlp:amber", "tlp:ex:chr"))


@pytest.mark.parametrize(
    ("tags", "grading"),
    [
        (['admiralty-scale:source-reliability="c"'], Admiralty("C", 6)),
        (['admiralty-scale:information-credibility="3"'], Admiralty("F", 3)),
        (['admiralty-scale:source-reliability="g"'], Admiralty("E", 6)),
        (
            [
                'admiralty-scale:source-reliability="a"',
                'admiralty-scale:source-reliability="d"',
                'admiralty-scale:information-credibility="2"',
            ],
            Admiralty("F", 2),
        ),
    ],
)
def test_partial_or_conflicting_admiralty_tags(tags, grading):
    objects = convert(with_tags(vector("orgname-random-event.json"), *tags))
    grouping = objects["grouping--5758ebf5-c898-48e6-9fe9-5665c0a83866"]
    assert grading_of(grouping) == grading
    if grading.credibility == 6:
        assert "confidence" not in grouping


def test_an_event_speaking_for_this_node_is_refused():
    with pytest.raises(InputError, match="this node's identity"):
        convert("circl-xorist.json", node=CIRCL)


def test_an_event_without_orgc_is_refused():
    event = vector("circl-xorist.json")
    del event["Event"]["Orgc"]
    with pytest.raises(InputError, match="Orgc"):
        convert(event)


def test_an_event_that_converts_differently_each_time_is_refused():
    event = vector("circl-xorist.json")
    del event["Event"]["Attribute"][0]["timestamp"]
    with pytest.raises(InputError, match="differently each time"):
        convert(event)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"{not json", MalformedJSON, "not JSON"),
        (b"[1, 2]", InputError, "not a MISP event"),
        (
            json.dumps({"type": "bundle", "id": "bundle--1", "objects": []}).encode(),
            InputError,
            "not a MISP event",
        ),
        ((VECTORS / "synovus-ursnif.json").read_bytes(), InputError, "misp-stix cannot convert"),
    ],
)
def test_bad_input_is_refused(data, error, message):
    with pytest.raises(error, match=message):
        objects_from_misp(data, InputLimits(), NODE)


# --- the command ---


@pytest.fixture
def run(cli):
    assert cli("init").exit_code == 0
    return cli


def stored(run):
    result = run("list", "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", CONVERTED)
def test_import_from_misp_into_a_fresh_node_then_again(run, name):
    expected = convert(name)
    first = run("import", VECTORS / name, "--from", "misp", "--json")
    assert first.exit_code == 0, first.stderr
    status = json.loads(first.stdout)
    assert status["failure_count"] == 0
    assert {s["id"] for s in status["successes"]} == set(expected)
    again = run("import", VECTORS / name, "--from", "misp")
    assert again.exit_code == 0, again.stderr
    assert f"{len(expected)} objects: 0 added, {len(expected)} already present" in again.stdout


def test_the_stored_report_keeps_its_originator_and_tlp(run):
    assert run("import", VECTORS / "circl-xorist.json", "--from", "misp").exit_code == 0
    shown = run("show", "report--57c4445b-c548-4654-af0b-4be3950d210f", "--json")
    report = json.loads(shown.stdout)
    assert report["created_by_ref"] == CIRCL and report["object_marking_refs"] == [TLP_CLEAR]
    assert json.loads(run("show", CIRCL, "--json").stdout)["name"] == "CIRCL"


def test_the_policy_reads_the_converted_markings(run):
    alliance = Path(__file__).resolve().parents[2] / "examples" / "alliance.toml"
    assert run("alliance", "load", alliance).exit_code == 0
    for name in ("circl-xorist.json", "circl-shadow-graded.json"):
        assert run("import", VECTORS / name, "--from", "misp").exit_code == 0

    def decision(object_id):
        result = run("explain", object_id, "--partner", "USA", "--json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    clear = decision("file--57c4448a-fb04-457d-87e7-4127950d210f")
    assert clear["decision"] == "release"
    assert any("TLP:CLEAR" in reason["text"] for reason in clear["reasons"])
    red = decision(f"file--{GRADED_ATTRIBUTE}")
    assert red["decision"] == "withhold"
    assert any("TLP:RED" in reason["text"] for reason in red["reasons"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ('{"type": "bundle", "id": "bundle--1", "objects": []}', "not a MISP event"),
        ((VECTORS / "synovus-ursnif.json").read_text(), "misp-stix cannot convert"),
        (json.dumps(UNKNOWN_TYPE), "misp-stix cannot convert part of the MISP event"),
    ],
)
def test_bad_misp_input_is_one_line_exit_2_and_nothing_written(run, tmp_path, content, message):
    before = stored(run)
    path = tmp_path / "event.json"
    path.write_text(content)
    result = run("import", path, "--from", "misp")
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.strip().count("\n") == 0
    assert stored(run) == before


def test_from_takes_only_stix_or_misp(run):
    result = run("import", VECTORS / "circl-xorist.json", "--from", "openioc")
    assert result.exit_code == 2
