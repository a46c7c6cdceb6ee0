"""Documents to the node's graded STIX: reports, entities, same-story groupings; idempotent;
`liaison ingest` and its JSON contract; bad input reported per file, nothing half-written."""

import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from liaison.cli import app
from liaison.ingest.pipeline import ingest
from liaison.ingest.read import read_paths
from liaison.ingest.run import definitions, run_ingest
from liaison.ingest.sources import SourceRatings
from liaison.markings.admiralty import grading_of
from liaison.markings.handling import extension_definition
from liaison.markings.tlp import TLP_CLEAR, tlp_definition
from liaison.node import open_node
from liaison.settings import Settings
from liaison.stix.validate import validation_errors
from liaison.store.objects import latest_versions
from tests.conftest import EXAMPLES, TEXTS

AUTHOR = "identity--11111111-1111-4111-8111-111111111111"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
runner = CliRunner()


def run(paths, ratings=None, source=None):
    return ingest(read_paths(paths, source), AUTHOR, ratings or SourceRatings(), now=NOW)


def by_type(objects, kind):
    return [o for o in objects if o["type"] == kind]


def test_every_object_is_valid_stix_owned_by_the_node_and_tlp_clear():
    result = run([EXAMPLES / "documents"])
    assert len(by_type(result.objects, "report")) == 6
    for obj in result.objects:
        assert validation_errors(obj) == [], obj["id"]
        assert obj["created_by_ref"] == AUTHOR
        assert obj["object_marking_refs"] == [TLP_CLEAR]
    ids = {o["id"] for o in result.objects}
    for report in by_type(result.objects, "report"):
        assert report["object_refs"] and report["description"]
        assert set(report["object_refs"]) <= ids | {AUTHOR}


def test_the_validator_finds_every_object_the_node_builds_valid(tmp_path):
    """What the node builds itself is stored without the validator (importer.built_here):
    this test is what makes that safe. It runs the real validator, as the public API comes,
    over everything the pipeline builds from every sample text, and what it refers to."""
    from stix2validator import ValidationOptions, validate_instance

    (tmp_path / "attacks.txt").write_text(
        "ISIS claimed responsibility for the attack in Manchester. The bombing by the Taliban "
        "in Kabul killed 12, Latvian Defence Minister Ilze Ozola said on May 25, 2017."
    )
    (tmp_path / "nothing.txt").write_text("Some quiet words about nothing in particular at all.")
    result = run([TEXTS, EXAMPLES / "documents", EXAMPLES / "news", tmp_path])
    built = [tlp_definition(TLP_CLEAR), extension_definition(AUTHOR), *result.objects]
    kinds = {o["type"] for o in built} | {o.get("relationship_type") for o in built}
    assert {"report", "identity", "location", "intrusion-set", "grouping"} <= kinds
    assert {"marking-definition", "relationship", "located-at", "targets"} <= kinds
    options = ValidationOptions(version="2.1")
    invalid = {
        o["id"]: [e.message for e in result.errors]
        for o in built
        if not (result := validate_instance(o, options)).is_valid
    }
    assert invalid == {}


def test_ingested_objects_skip_the_validator_and_are_stored(node, monkeypatch):
    def no_validator(*_):
        raise AssertionError("the validator ran on the node's own objects")

    monkeypatch.setattr("liaison.importer.validate_all", no_validator)
    run_ingest(node, [TEXTS])
    result = run([TEXTS])
    with node.engine.connect() as connection:
        stored = {v.object["id"] for v in latest_versions(connection)}
    assert {o["id"] for o in result.objects} <= stored
    assert {d["id"] for d in definitions(node)} <= stored


def test_the_same_documents_give_the_same_objects_byte_for_byte():
    first = run([EXAMPLES / "documents"])
    second = run([EXAMPLES / "documents"])
    assert json.dumps(first.objects, sort_keys=True) == json.dumps(second.objects, sort_keys=True)


def test_an_entity_named_in_two_documents_is_one_object():
    result = run([EXAMPLES / "documents"])
    people = {o["name"]: o["id"] for o in by_type(result.objects, "identity")}
    assert "Justin Trudeau" in people
    citing = [
        r["name"]
        for r in by_type(result.objects, "report")
        if people["Justin Trudeau"] in r["object_refs"]
    ]
    assert len(citing) >= 2
    assert len({o["id"] for o in result.objects}) == len(result.objects)


def test_reports_are_graded_by_source_and_corroboration():
    ratings = SourceRatings({"wire": "B"})
    result = run([TEXTS], ratings)
    reports = {r.origin.rsplit("/", 1)[-1][:3]: r for r in result.results}
    assert reports["000"].story == reports["001"].story is not None
    assert reports["000"].grade == reports["001"].grade == "F2"  # two independent sources
    assert {reports[k].story for k in ("002", "003", "004")} == {None}
    assert reports["002"].grade == "F6"
    (grouping,) = by_type(result.objects, "grouping")
    assert set(grouping["object_refs"]) == {reports["000"].report, reports["001"].report}
    # One named, rated source telling both: corroboration needs independent sources.
    same_source = run([TEXTS], ratings, source="wire")
    grades = {r.origin.rsplit("/", 1)[-1][:3]: r.grade for r in same_source.results}
    assert grades["000"] == grades["001"] == "B6"


def test_a_report_carries_its_grade_as_stix_confidence_too():
    result = run([TEXTS])
    report = next(
        r for r in by_type(result.objects, "report") if "Sharing Intelligence" in r["name"]
    )
    assert grading_of(report).code == "F2"
    assert report["confidence"] == 70  # STIX 2.1 appendix A: credibility 2 is 70


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LIAISON_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LIAISON_DATABASE_URL", raising=False)
    assert runner.invoke(app, ["init"]).exit_code == 0
    return tmp_path


def test_ingest_json_contract_and_idempotent_store(home):
    first = runner.invoke(app, ["ingest", str(EXAMPLES / "documents"), "--json"])
    assert first.exit_code == 0, first.stderr
    entries = json.loads(first.stdout)
    assert len(entries) == 6
    for entry in entries:
        assert set(entry) == {"document", "report", "entities", "story", "admiralty", "error"}
        assert entry["error"] is None and entry["report"].startswith("report--")
    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        before = sum(1 for _ in latest_versions(connection))
    again = runner.invoke(app, ["ingest", str(EXAMPLES / "documents"), "--json"])
    assert json.loads(again.stdout) == entries
    with node.engine.connect() as connection:
        assert sum(1 for _ in latest_versions(connection)) == before


def test_bad_files_get_a_line_each_and_exit_1_only_if_nothing_was_ingested(home):
    mixed = home / "mixed"
    mixed.mkdir()
    (mixed / "note.txt").write_text("NATO allies met in Brussels on May 25, 2017 with Canada.")
    (mixed / "empty.txt").write_text("")
    (mixed / "blob.bin").write_bytes(b"\x00\x01\x02")
    result = runner.invoke(app, ["ingest", str(mixed)])
    assert result.exit_code == 0
    assert "empty.txt: empty" in result.stderr and "blob.bin" in result.stderr
    assert "1 of 3 documents ingested" in result.stdout
    bad = home / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_text("")
    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        before = sum(1 for _ in latest_versions(connection))
    failed = runner.invoke(app, ["ingest", str(bad), "--json"])
    assert failed.exit_code == 1
    assert json.loads(failed.stdout)[0]["error"] == "empty"
    with node.engine.connect() as connection:
        assert sum(1 for _ in latest_versions(connection)) == before


def test_a_copy_of_a_document_is_reported_under_its_own_name(tmp_path):
    text = "NATO allies met in Brussels on May 25, 2017 with Canada and the United States."
    (tmp_path / "a.txt").write_text(text)
    (tmp_path / "b.txt").write_text(text)
    result = run([tmp_path])
    assert [r.origin.rsplit("/", 1)[-1] for r in result.results] == ["a.txt", "b.txt"]
    assert result.results[0].report == result.results[1].report
    assert len(by_type(result.objects, "report")) == 1


def test_a_document_naming_nothing_refers_to_the_node_and_lists_no_entity(tmp_path):
    (tmp_path / "note.txt").write_text("Some quiet words about nothing in particular at all.")
    result = run([tmp_path])
    (report,) = by_type(result.objects, "report")
    assert report["object_refs"] == [AUTHOR]
    assert result.results[0].entities == ()


def test_a_grouping_has_its_best_sources_reliability_and_the_storys_credibility(tmp_path):
    text = (
        "NATO allies met in Brussels on May 25, 2017 with Canada and the United States to "
        "review how intelligence is shared after the Manchester leak, officials said."
    )
    (tmp_path / "first.txt").write_text(text)
    (tmp_path / "second.txt").write_text(text.replace("officials said", "a diplomat said"))
    result = run([tmp_path], SourceRatings({"first": "C", "second": "A"}))
    assert [r.grade for r in result.results] == ["C2", "A2"]
    (grouping,) = by_type(result.objects, "grouping")
    assert grading_of(grouping).code == "A2"


def test_batches_bring_every_object_after_what_it_refers_to():
    result = run([EXAMPLES / "documents"])
    batches = list(result.batches(size=4))
    assert all(len(batch) <= 4 for batch in batches)
    seen = {AUTHOR, TLP_CLEAR}  # the node and TLP:CLEAR are in the store before any batch
    for obj in (obj for batch in batches for obj in batch):
        refs = [*obj.get("object_refs", []), obj.get("source_ref"), obj.get("target_ref")]
        assert {ref for ref in refs if ref} <= seen, obj["id"]
        seen.add(obj["id"])
    assert len(seen) == len(result.objects) + 2
