"""Same-story grouping (near-duplicate text, or shared entities on the same days) and the
credibility that corroboration earns."""

from datetime import UTC, datetime, timedelta

import pytest

from liaison.ingest.stories import StoryInput, credibility, signature_of, stories

DAY = datetime(2017, 5, 25, tzinfo=UTC)
STORY = (
    "Prime Minister Justin Trudeau said Canada will continue to share intelligence with its "
    "allies at the NATO summit in Brussels, even as the White House faced criticism over "
    "how it handled classified material from Israel and the Manchester investigation."
)


def item(key, text, entities=(), published=DAY, source=None):
    return StoryInput(key, signature_of(text), frozenset(entities), published, source or key)


def test_near_duplicate_texts_are_one_story_whatever_their_entities():
    copy = STORY.replace("said", "says").replace("even as", "while")
    other = "Latvia hosts a NATO battlegroup led by Canada, with troops from Albania and Poland."
    found = stories([item("a", STORY), item("b", copy, published=None), item("c", other)])
    assert found == [["a", "b"]]


def test_different_words_same_people_places_and_day_are_one_story():
    entities = {"trudeau", "nato", "brussels", "canada", "white-house"}
    a = item("a", STORY, entities)
    b = item("b", "Mr Trudeau spoke at the alliance meeting in Belgium.", entities - {"canada"})
    assert stories([a, b]) == [["a", "b"]]
    later = item("c", "Mr Trudeau spoke again.", entities, DAY + timedelta(days=10))
    assert stories([a, later]) == []
    undated = item("d", "Mr Trudeau spoke again.", entities, None)
    assert stories([a, undated]) == []
    few = item("e", "Canada and NATO.", {"canada", "nato"})
    assert stories([a, few]) == []


def test_stories_are_connected_groups_in_input_order():
    entities = {"trudeau", "nato", "brussels", "canada"}
    items = [
        item("x", "Unrelated note about fisheries in the Atlantic and quotas for cod."),
        item("b", STORY, entities),
        item("a", "Trudeau in Brussels at NATO, for Canada.", entities),
        item("c", STORY + " More to follow."),
    ]
    assert stories(items) == [["b", "a", "c"]]


@pytest.mark.parametrize(("sources", "expected"), [(1, 6), (2, 2), (3, 1), (7, 1)])
def test_credibility_rises_with_independent_sources(sources, expected):
    assert credibility(sources) == expected
