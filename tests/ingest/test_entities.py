import json
import re
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liaison.ingest.entities import (
    KINDS,
    Entity,
    Relationship,
    entity_id,
    entity_objects,
    extract,
    names_by_kind,
    precision_recall,
    score,
)
from liaison.markings.tlp import TLP_CLEAR
from liaison.stix.validate import validation_errors
from tests.conftest import TEXTS, examples

AUTHOR = "identity--11111111-1111-4111-8111-111111111111"
CREATED = "2000-01-01T00:00:00.000Z"
GOLD = json.loads((Path(__file__).parent / "gold_texts.json").read_text(encoding="utf-8"))

# Floors for every text and every kind, a little under what extraction measures on the news
# texts written for the tests (tests/texts/, labelled in gold_texts.json): precision 1.0
# everywhere, recall 1.0 except the organisations of 002 (0.83) and 004 (0.89).
PRECISION_FLOOR = 0.9
RECALL_FLOOR = 0.85
# Measured misses under the floor, each named, so that no other miss hides behind them: an
# organisation whose head word comes first without "of", "de" or "for" after it ("Université
# Laval") is not read, nor is a possessive one ("Queen's University", 004, above the floor).
RECALL_EXCEPTIONS = {("002_latvia-brigade-extension.txt", "organization"): {"Université Laval"}}
# What each text must yield wherever the gold file says the text names it.
MUST_HAVE = {
    "person": {"Anne Leclerc", "Lars Holmberg"},
    "organization": {"NATO", "Five Eyes", "CSIS"},
    "location": {"Canada", "Latvia", "Afghanistan", "Brussels", "Ottawa"},
    "group": {"Islamic State", "Taliban", "APT29"},
}
# Every relationship the texts state that extraction reads, checked by hand against the text.
TEXT_RELATIONSHIPS = {
    "000_brussels-sharing-after-leak.txt": set(),
    "001_brussels-sharing-not-up-for-debate.txt": set(),
    "002_latvia-brigade-extension.txt": {
        ("Ilze Ozola", "located-at", "Latvia"),  # "Latvian Defence Minister Ilze Ozola"
    },
    "003_ally-passed-canadian-intelligence.txt": set(),
    "004_european-partners-open-sources.txt": {
        ("Sophie Martel", "located-at", "Canada"),  # "Canadian Foreign Affairs Minister ..."
    },
}


def named(entities: list[Entity], kind: str) -> list[str]:
    return [e.name for e in entities if e.kind == kind]


def only(entities: list[Entity], kind: str) -> Entity:
    [entity] = [e for e in entities if e.kind == kind]
    return entity


def triples(relationships: list[Relationship]) -> set[tuple[str, str, str]]:
    return {(r.source.name, r.relationship_type, r.target.name) for r in relationships}


# --- people -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "person", "place"),
    [
        ("U.S. President Donald Trump spoke.", "Donald Trump", "United States"),
        ("Russian Foreign Minister Sergey Lavrov met him.", "Sergey Lavrov", "Russia"),
        ("Canada's Foreign Affairs Minister Mélanie Joly said so.", "Mélanie Joly", "Canada"),
        ("Latvian Prime Minister Anna Ozola spoke.", "Anna Ozola", "Latvia"),
        ("Prime Minister of Canada Justin Trudeau spoke.", "Justin Trudeau", "Canada"),
        ("Justin Trudeau, Prime Minister of Canada, spoke.", "Justin Trudeau", "Canada"),
        ("Ottawa Mayor Jim Watson spoke.", "Jim Watson", "Ottawa"),
    ],
)
def test_a_title_after_a_place_makes_a_person_located_there(text, person, place):
    entities, relationships = extract(text)
    assert person in named(entities, "person")
    assert triples(relationships) == {(person, "located-at", place)}


def test_a_person_found_by_title_takes_the_titles_country():
    entities, _ = extract("Latvian Prime Minister Anna Ozola spoke.")
    assert only(entities, "person").country == "LV"


@pytest.mark.parametrize(
    "text",
    [
        "NATO Sec.-Gen. Jens Stoltenberg spoke.",
        "Prime Minister Justin Trudeau spoke in Brussels.",
        "He spoke in Canada, Prime Minister Justin Trudeau said.",
    ],
)
def test_no_place_is_read_into_a_title_without_one(text):
    _, relationships = extract(text)
    assert relationships == []


@pytest.mark.parametrize(
    ("text", "person"),
    [
        ("Prime Minister Justin Trudeau spoke.", "Justin Trudeau"),
        ("NATO Sec.-Gen. Jens Stoltenberg spoke.", "Jens Stoltenberg"),
        ("Defence Minister Bartholomew Quill said so.", "Bartholomew Quill"),
        ("Dr. Amara Nwosu and Prof. Stephanie Carvin wrote.", "Amara Nwosu"),
        ("Chief of Defence Staff Jonathan Vance stood by.", "Jonathan Vance"),
        ("One of the authors, Joel Sokolsky, said that.", "Joel Sokolsky"),
    ],
)
def test_titles_and_given_names_find_people(text, person):
    entities, _ = extract(text)
    assert person in named(entities, "person")


def test_a_bare_surname_is_the_person_named_in_full_not_another():
    entities, _ = extract("Professor Jane Okafor spoke. Okafor said more, and Okafor left.")
    person = only(entities, "person")
    assert person.name == "Jane Okafor"
    assert "Okafor" in person.aliases


def test_a_bare_surname_is_the_nearest_person_of_that_name_before_it():
    text = "Pierre Trudeau governed. Justin Trudeau spoke. Trudeau said it."
    entities, _ = extract(text)
    assert named(entities, "person") == ["Pierre Trudeau", "Justin Trudeau"]


def test_a_surname_of_a_known_person_names_them_without_the_full_name():
    entities, _ = extract("The Trump administration and Stoltenberg disagreed.")
    assert named(entities, "person") == ["Donald Trump", "Jens Stoltenberg"]


@pytest.mark.parametrize(
    "text",
    ["Prime Minister Crest", "Chancellor Wiggles agreed.", "Main Content\nMain Container"],
)
def test_one_unknown_word_after_a_title_names_nobody(text):
    entities, _ = extract(text)
    assert named(entities, "person") == []


# --- groups -----------------------------------------------------------------------------------


def test_the_islamic_states_names_are_one_group():
    text = (
        "The Islamic State of Iraq and the Levant (ISIL), also called ISIS or Daesh, lost ground. "
        "IS fighters fled; the Islamic State said nothing."
    )
    entities, _ = extract(text)
    group = only(entities, "group")
    assert group.name == "Islamic State"
    assert {"ISIL", "ISIS", "Daesh", "Islamic State of Iraq and the Levant"} <= set(group.aliases)
    assert named(entities, "location") == []  # the Levant and Iraq inside the name are no places


@pytest.mark.parametrize(
    "text", ["This IS a test.", "THE REPORT IS CLEAR", "WHAT IS NEXT", "Who IS he?"]
)
def test_the_verb_is_not_the_islamic_state(text):
    entities, _ = extract(text)
    assert named(entities, "group") == []


@pytest.mark.parametrize(
    "text",
    ["IS fighters retreated.", "the IS-claimed attack", "the Islamic State (IS)", "so-called IS"],
)
def test_is_names_the_islamic_state_where_cued(text):
    entities, _ = extract(text)
    assert named(entities, "group") == ["Islamic State"]


def test_taliban_and_pakistani_taliban_are_two_groups():
    entities, _ = extract("The Pakistani Taliban and the Taliban; al-Qaeda and al-Qaida.")
    assert named(entities, "group") == ["Tehrik-i-Taliban Pakistan", "Taliban", "al-Qaeda"]


def test_a_group_attacking_a_place_targets_it():
    _, relationships = extract("ISIS claimed responsibility for the attack in Manchester.")
    assert triples(relationships) == {("Islamic State", "targets", "Manchester")}
    _, relationships = extract("The bombing by the Taliban in Kabul killed 12.")
    assert triples(relationships) == {("Taliban", "targets", "Kabul")}


@pytest.mark.parametrize(
    "text",
    [
        "ISIS did not attack Paris.",
        "ISIS fighters fled. The attack in Paris was by a lone man.",
        "Daesh lost ground in Syria.",
    ],
)
def test_no_target_without_a_stated_attack(text):
    _, relationships = extract(text)
    assert relationships == []


# --- organisations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "organisation"),
    [
        ("the White House said", "White House"),
        ("the North Atlantic Treaty Organization met", "NATO"),
        ("the Five Eyes alliance", "Five Eyes"),
        ("FVEY partners", "Five Eyes"),
        ("the five-eyes intelligence alliance", "Five Eyes"),
        ("CSIS warned", "CSIS"),
        ("the CSE said", "Communications Security Establishment"),
        ("the NSA and", "NSA"),
        ("the CIA and", "CIA"),
        ("the FBI and", "FBI"),
        ("MI5 and", "MI5"),
        ("MI6 and", "MI6"),
        ("GCHQ and", "GCHQ"),
        ("Mossad and", "Mossad"),
        ("Global Affairs Canada said", "Global Affairs Canada"),
        ("the Department of Fisheries and Oceans said", "Department of Fisheries and Oceans"),
        ("the Macdonald-Laurier Institute report", "Macdonald-Laurier Institute"),
        ("a professor at Carleton University", "Carleton University"),
        ("Université du Québec à Montréal", "Université du Québec à Montréal"),
        ("the Center for Defense Policy said", "Center for Defense Policy"),
    ],
)
def test_organisations(text, organisation):
    entities, _ = extract(text)
    assert named(entities, "organization") == [organisation]


def test_a_place_inside_an_organisations_name_is_no_place():
    entities, _ = extract("She teaches at the University of Ottawa and The Canadian Press.")
    assert named(entities, "location") == []


# --- places -----------------------------------------------------------------------------------


def test_the_united_states_names_are_one_country():
    text = "U.S. officials, US troops, the United States, America, the USA and Americans."
    entities, _ = extract(text)
    place = only(entities, "location")
    assert (place.name, place.country, place.location_kind) == ("United States", "US", "country")


def test_us_inside_capitals_is_a_word():
    entities, _ = extract("JOIN US TODAY")
    assert entities == []


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("Israeli intelligence", "Israel"),
        ("the British government", "United Kingdom"),
        ("Eastern European partners", "Eastern Europe"),
        ("Iraqi forces", "Iraq"),
        ("Canadians agree", "Canada"),
    ],
)
def test_a_demonym_mentions_its_place(text, place):
    entities, _ = extract(text)
    assert named(entities, "location") == [place]


@pytest.mark.parametrize(
    "text", ["He said it in Russian.", "the Indian Ocean", "African American voters"]
)
def test_a_language_or_a_longer_name_mentions_no_place(text):
    entities, _ = extract(text)
    assert named(entities, "location") == []


@pytest.mark.parametrize(
    ("text", "name", "country", "kind"),
    [
        ("in Brussels", "Brussels", "BE", "city"),
        ("in Manchester", "Manchester", "GB", "city"),
        ("in Kiev", "Kyiv", "UA", "city"),
        ("in Washington", "Washington, D.C.", "US", "city"),
        ("in Great Falls, Montana", "Great Falls", "US", "city"),
        ("from Lethbridge, Alberta", "Lethbridge", "CA", "city"),
        ("in Quebec", "Quebec", "CA", "region"),
        ("in the Baltics", "Baltic states", None, "region"),
        ("in Latvia", "Latvia", "LV", "country"),
        ("in Türkiye", "Turkey", "TR", "country"),
    ],
)
def test_places(text, name, country, kind):
    entities, _ = extract(text)
    place = next(e for e in entities if e.kind == "location")
    assert (place.name, place.country, place.location_kind) == (name, country, kind)


def test_machine_translation_debris_makes_no_entities():
    text = "A message of solidarity [19659007] At the same time. ] Isfy President Trump llars . ["
    entities, _ = extract(text)
    assert [e.name for e in entities] == ["Donald Trump"]


def test_entities_come_once_in_order_of_first_mention():
    entities, _ = extract("Canada and NATO. NATO and Canada. Trudeau in Canada.")
    assert [e.name for e in entities] == ["Canada", "NATO", "Justin Trudeau"]


# --- ids and STIX objects ---------------------------------------------------------------------


def test_ids_are_fixed_by_name_and_kind():
    canada = Entity("location", "Canada", country="CA", location_kind="country")
    # A changed id would orphan every entity already stored: this value must not move.
    assert entity_id(canada) == "location--b8a36821-c593-5d3e-97cb-801ec998e2b9"
    assert entity_id(Entity("person", "Mélanie Joly")) == entity_id(
        Entity("person", "MELANIE JOLY")
    )
    georgia = Entity("location", "Georgia", country="GE", location_kind="country")
    assert entity_id(georgia) != entity_id(
        Entity("location", "Georgia", country="US", location_kind="region")
    )
    assert entity_id(Entity("person", "Jordan")) != entity_id(Entity("organization", "Jordan"))


def test_the_same_entity_in_two_documents_has_one_id():
    first, _ = extract("Prime Minister Justin Trudeau said Canada would stay in NATO.")
    second, _ = extract("Trudeau met NATO's secretary general in Ottawa, Canada.")
    ids_first = {e.name: entity_id(e) for e in first}
    ids_second = {e.name: entity_id(e) for e in second}
    for name in ("Justin Trudeau", "Canada", "NATO"):
        assert ids_first[name] == ids_second[name]


def objects_for(text: str) -> list[dict]:
    entities, relationships = extract(text)
    return entity_objects(entities, relationships, AUTHOR, CREATED, [TLP_CLEAR])


SAMPLE = (
    "Russian Foreign Minister Sergey Lavrov met the White House. ISIS claimed the attack in "
    "Manchester. The Middle East, the Arctic, Jerusalem and Quebec. Dr. Amara Nwosu spoke."
)


def test_objects_validate_and_carry_author_markings_and_the_given_time():
    objects = objects_for(SAMPLE)
    assert {o["type"] for o in objects} == {"identity", "location", "intrusion-set", "relationship"}
    for obj in objects:
        assert validation_errors(obj) == [], obj
        assert obj["created_by_ref"] == AUTHOR
        assert obj["object_marking_refs"] == [TLP_CLEAR]
        assert obj["created"] == obj["modified"] == CREATED
    ids = {o["id"] for o in objects}
    for rel in (o for o in objects if o["type"] == "relationship"):
        assert {rel["source_ref"], rel["target_ref"]} <= ids


def test_objects_are_byte_identical_when_made_again():
    assert json.dumps(objects_for(SAMPLE)) == json.dumps(objects_for(SAMPLE))


def test_an_entitys_object_does_not_depend_on_the_document():
    one = {o["id"]: o for o in objects_for("ISIL fighters and Brussels.")}
    other = {o["id"]: o for o in objects_for("Daesh in Brussels, Belgium.")}
    assert one == {key: other[key] for key in one}


def test_a_group_is_an_intrusion_set_with_all_its_names():
    [group] = [o for o in objects_for("Daesh fighters") if o["type"] == "intrusion-set"]
    assert group["name"] == "Islamic State"
    assert {"ISIL", "ISIS", "Daesh"} <= set(group["aliases"])


def test_relationship_ends_get_objects_once():
    lavrov = Entity("person", "Sergey Lavrov")
    russia = Entity("location", "Russia", country="RU", location_kind="country")
    relationships = [Relationship(lavrov, "located-at", russia)] * 2
    objects = entity_objects([lavrov], relationships, AUTHOR, CREATED, [])
    assert [o["type"] for o in objects] == ["identity", "location", "relationship"]
    assert "object_marking_refs" not in objects[0]


def test_a_place_stix_cannot_locate_is_refused():
    nowhere = Entity("location", "Atlantis", location_kind="region")
    with pytest.raises(ValueError, match="Atlantis"):
        entity_objects([nowhere], [], AUTHOR, CREATED, [])


# --- scoring and speed ------------------------------------------------------------------------


def test_precision_recall():
    assert precision_recall({"Canada", "NATO"}, {"canada", "Latvia"}) == (0.5, 0.5)
    assert precision_recall(set(), set()) == (1.0, 1.0)
    assert precision_recall({"Mélanie Joly"}, {"Melanie Joly"}) == (1.0, 1.0)
    assert precision_recall({"A"}, set()) == (1.0, 0.0)


def test_score_by_kind():
    gold = {"person": ["Justin Trudeau"], "location": ["Canada", "Latvia"]}
    found = names_by_kind(extract("Justin Trudeau visited Canada.")[0])
    assert score(gold, found) == {
        "person": (1.0, 1.0),
        "organization": (1.0, 1.0),
        "location": (1.0, 0.5),
        "group": (1.0, 1.0),
    }


def test_extraction_of_a_seed_sized_document_is_fast():
    text = " ".join([SAMPLE, "Trudeau said Canada and its allies would keep sharing."] * 25)
    assert 4000 < len(text) < 9000
    extract(text)  # builds the matcher
    per_document = []
    for _ in range(20):
        started = time.perf_counter()
        extract(text)
        per_document.append(time.perf_counter() - started)
    # Measured at 1-3 ms on two cores; the bound, on the fastest run and far above what a busy
    # machine takes, only catches accidental quadratic work.
    assert min(per_document) < 0.25


WORDS = [
    "President", "Prime", "Minister", "of", "the", "Canada", "Canadian", "'s", ",", ".", "(",
    ")", "-", "IS", "US", "ISIS", "attack", "in", "by", "not", "Trudeau", "Justin", "Jane",
    "Okafor", "Department", "Institute", "for", "Montana", "Great", "Falls", "Sec.-Gen.",
    "Dr.", "J.", "NATO", "\n", "said", "Daesh", "University", "Brussels", "[19659007]",
]  # fmt: skip


@settings(max_examples=examples(300), deadline=None)
@given(st.one_of(st.text(), st.lists(st.sampled_from(WORDS)).map(" ".join)))
def test_any_text_extracts_without_error_into_valid_entities(text):
    entities, relationships = extract(text)
    assert len({(e.kind, e.name) for e in entities}) == len(entities)
    assert all(e.name.strip() and e.kind in KINDS for e in entities)
    for relationship in relationships:
        assert relationship.source in entities and relationship.target in entities


# --- the news texts written for the tests (tests/texts/) --------------------------------------


def test_the_gold_file_names_each_kind_for_each_text():
    assert set(GOLD["documents"]) == {p.name for p in TEXTS.glob("*.txt")}
    for labels in GOLD["documents"].values():
        assert set(labels) == set(KINDS)
    for story in GOLD["same_story"]:
        assert set(story) <= set(GOLD["documents"])


def text_results() -> dict[str, tuple[list[Entity], list[Relationship]]]:
    return {name: extract((TEXTS / name).read_text(encoding="utf-8")) for name in GOLD["documents"]}


@pytest.mark.parametrize("name", sorted(GOLD["documents"]))
def test_each_text_meets_the_precision_and_recall_floors(name):
    entities, _ = extract((TEXTS / name).read_text(encoding="utf-8"))
    gold = GOLD["documents"][name]
    found = names_by_kind(entities)
    for kind, (precision, recall) in score(gold, found).items():
        assert precision >= PRECISION_FLOOR, (kind, found[kind], gold[kind])
        known = RECALL_EXCEPTIONS.get((name, kind), set())
        if known:  # below the floor only by the misses named, and still missing them
            assert not known & set(found[kind]), (kind, "now found: drop the exception")
            expected = {g for g in gold[kind] if g not in known}
            assert score({kind: sorted(expected)}, found)[kind][1] >= RECALL_FLOOR, kind
        else:
            assert recall >= RECALL_FLOOR, (kind, found[kind], gold[kind])
    for kind, names in MUST_HAVE.items():
        assert names & set(gold[kind]) <= set(found[kind])


def test_the_same_entity_in_two_texts_has_one_id():
    results = text_results()
    ids: dict[str, set[str]] = {}
    seen_in: dict[str, int] = {}
    for entities, _ in results.values():
        for entity in entities:
            ids.setdefault(entity.name, set()).add(entity_id(entity))
            seen_in[entity.name] = seen_in.get(entity.name, 0) + 1
    assert all(len(found) == 1 for found in ids.values())
    assert seen_in["NATO"] == seen_in["Canada"] == seen_in["Ottawa"] == 5
    assert seen_in["Anne Leclerc"] == 3  # 000, 001 and 002


def test_text_000_merges_the_islamic_states_names():
    text = (TEXTS / "000_brussels-sharing-after-leak.txt").read_text(encoding="utf-8")
    assert "ISIS" in text and "Daesh" in text
    entities, _ = extract(text)
    assert named(entities, "group") == ["Islamic State", "Taliban"]


def test_texts_yield_people_only_by_full_name():
    for entities, _ in text_results().values():
        assert all(" " in name for name in named(entities, "person"))


def test_texts_yield_no_entity_from_debris():
    for entities, _ in text_results().values():
        for entity in entities:
            assert not re.search(r"[\[\]]|\d{3}", entity.name), entity


def test_texts_yield_the_relationships_they_state():
    for name, (_, relationships) in text_results().items():
        assert triples(relationships) == TEXT_RELATIONSHIPS[name]


def test_text_objects_validate():
    for entities, relationships in text_results().values():
        for obj in entity_objects(entities, relationships, AUTHOR, CREATED, [TLP_CLEAR]):
            assert validation_errors(obj) == [], obj
