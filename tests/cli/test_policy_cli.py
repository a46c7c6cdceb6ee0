"""`liaison explain`, `matrix`, `partner set` and `policy rebuild` on the demo's world."""

import json

import pytest
from typer.testing import CliRunner

from liaison.cli import app
from liaison.stix.validate import validation_errors

runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("policy-cli") / "home"


@pytest.fixture
def run(home, monkeypatch):
    monkeypatch.setenv("LIAISON_HOME", str(home))
    monkeypatch.delenv("LIAISON_DATABASE_URL", raising=False)

    def invoke(*args):
        return runner.invoke(app, list(args))

    if not home.exists():
        assert invoke("demo").exit_code == 0
    return invoke


def report_id(run, starts):
    reports = json.loads(run("list", "--type", "report", "--json").stdout)
    return next(r["id"] for r in reports if r["name"].startswith(starts))


def explained(run, object_id, partner, *extra):
    result = run("explain", object_id, "--partner", partner, "--json", *extra)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_explain_json_keys_are_the_contract(run):
    data = explained(run, report_id(run, "Foreign fighter"), "USA")
    assert {"decision", "reasons", "cuts", "copy"} <= set(data)
    assert data["decision"] == "release"
    assert all(set(r) == {"code", "text"} for r in data["reasons"])
    assert data["cuts"] == {"fields": [], "references": []}
    assert data["copy"]["id"] == report_id(run, "Foreign fighter")


def test_secret_rel_to_fvey_report_goes_to_the_five_eyes_not_france(run):
    rid = report_id(run, "Foreign fighter")
    for partner in ("USA", "GBR", "AUS", "NZL"):
        assert explained(run, rid, partner)["decision"] == "release"
    france = explained(run, rid, "FRA")
    assert france["decision"] == "withhold" and france["copy"] is None
    assert "REL TO FVEY: FRA is not a member of FVEY" in [r["text"] for r in france["reasons"]]


def test_can_eyes_only_goes_to_no_one(run):
    rows = json.loads(run("matrix", report_id(run, "Source protection"), "--json").stdout)
    assert len(rows) == 13 and {r["decision"] for r in rows} == {"withhold"}


def test_efp_report_goes_to_albania_only_while_a_member(run):
    rid = report_id(run, "eFP Latvia battlegroup")
    assert explained(run, rid, "ALB")["decision"] == "release"
    assert explained(run, rid, "ALB", "--at", "2017-06-18")["decision"] == "withhold"
    assert explained(run, rid, "FRA")["decision"] == "withhold"


def test_granular_tearline_for_a_nato_partner(run):
    data = explained(run, report_id(run, "NATO summit: counter"), "FRA")
    assert data["decision"] == "release-with-cuts"
    assert data["cuts"]["fields"] == ["description"]
    assert "description" not in data["copy"] and "name" in data["copy"]


def test_references_to_withheld_objects_are_cut(run):
    # Releasable to NATO, but it cites the CAN EYES ONLY note: that reference is cut.
    data = explained(run, report_id(run, "Counter-terrorism threat"), "FRA")
    assert data["decision"] == "release-with-cuts"
    assert data["cuts"]["references"] == [report_id(run, "Source protection")]
    assert report_id(run, "Source protection") not in data["copy"]["object_refs"]


def test_orcon_from_an_ally_is_not_passed_on(run):
    rid = report_id(run, "Manchester attack")
    gbr = explained(run, rid, "GBR")
    assert gbr["decision"] == "withhold" and "third-party" in {r["code"] for r in gbr["reasons"]}
    assert explained(run, rid, "USA")["decision"] == "release"


def test_matrix_table_and_bad_input(run):
    result = run("matrix", report_id(run, "Foreign fighter"))
    assert result.exit_code == 0 and "RUS" in result.stdout and "withhold" in result.stdout
    assert run("explain", "report--nope", "--partner", "USA").exit_code == 2
    unknown = run("explain", report_id(run, "Foreign fighter"), "--partner", "XYZ")
    assert unknown.exit_code == 2 and "not a known partner" in unknown.stderr
    bad_date = run("explain", report_id(run, "Foreign fighter"), "--partner", "USA", "--at", "x")
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.stderr


def test_partner_set_redecides_and_counts(run):
    rid = report_id(run, "Foreign fighter")
    result = run("partner", "set", "GBR", "--status", "suspended", "--json")
    assert result.exit_code == 0, result.stderr
    changed = json.loads(result.stdout)
    assert changed["partner"] == "GBR" and changed["changed"] == {"status": "suspended"}
    assert changed["classes_changed"] >= 5 and changed["objects_changed"] >= 10
    assert explained(run, rid, "GBR")["decision"] == "withhold"
    again = json.loads(run("partner", "set", "GBR", "--status", "active", "--json").stdout)
    assert again["classes_changed"] == changed["classes_changed"]
    assert explained(run, rid, "GBR")["decision"] == "release"
    bad = run("partner", "set", "GBR", "--clearance", "NATO:XX")
    assert bad.exit_code == 2 and "unknown classification" in bad.stderr
    assert run("partner", "set", "XYZ", "--trust", "low").exit_code == 2
    assert run("partner", "set", "GBR").exit_code == 2


def test_lowering_trust_cuts_what_a_partner_sees(run):
    rid = report_id(run, "Counter-terrorism threat")  # CAN CONFIDENTIAL REL TO NATO
    assert explained(run, rid, "FRA")["decision"] != "withhold"
    lowered = json.loads(run("partner", "set", "FRA", "--trust", "low", "--json").stdout)
    # Low trust caps FRA at NATO CONFIDENTIAL: the CAN SECRET field of the summit report and
    # nothing else changes, as FRA saw no SECRET object whole.
    assert lowered["changed"] == {"trust": "low"}
    assert explained(run, rid, "FRA")["decision"] != "withhold"  # NC is within the low ceiling
    run("partner", "set", "FRA", "--clearance", "NATO:NR")
    assert explained(run, rid, "FRA")["decision"] == "withhold"
    run("partner", "set", "FRA", "--clearance", "NATO:NS", "--trust", "medium")


def test_policy_rebuild(run):
    result = run("policy", "rebuild", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["classes"] >= 10


def test_released_copies_validate(run):
    for starts, partner in (("NATO summit: counter", "FRA"), ("Counter-terrorism threat", "FRA")):
        copy = explained(run, report_id(run, starts), partner)["copy"]
        assert validation_errors(copy) == []


def test_policy_log_records_changes(run):
    run("partner", "set", "NZL", "--trust", "medium")
    log = json.loads(run("policy", "log", "--json").stdout)
    assert log[0]["kind"] == "alliance"
    assert log[-1]["kind"] == "partner" and log[-1]["detail"]["partner"] == "NZL"
    assert [entry["version"] for entry in log] == sorted(entry["version"] for entry in log)
    run("partner", "set", "NZL", "--trust", "high")


def test_withdraw_earlier_versions_from_partners(run, home, tmp_path):
    """v1 TLP:CLEAR, v2 CAN EYES ONLY: FRA keeps getting v1 until an officer withdraws it;
    the decision is in the policy log and the ledger, and USA, the owner of nothing here,
    is withdrawn only what it could no longer see either."""
    from liaison.node import open_node
    from liaison.settings import Settings
    from liaison.stix.timestamps import to_micros
    from liaison.store.pages import PageQuery, page

    summit = json.loads(run("show", report_id(run, "NATO summit"), "--json").stdout)
    v1 = dict(
        summit,
        id="report--5e5e5e5e-5e5e-4e5e-8e5e-5e5e5e5e5e5e",
        created="2026-01-01T00:00:00.000Z",
        modified="2026-01-01T00:00:00.000Z",
        object_marking_refs=["marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"],
    )
    v2 = dict(
        v1,
        modified="2026-02-01T00:00:00.000Z",
        object_marking_refs=["marking-definition--afee7285-1cdf-5058-bb58-8099e134ca83"],
    )
    bundle = tmp_path / "versions.json"
    bundle.write_text(json.dumps({"type": "bundle", "id": f"bundle--{v1['id'][8:]}",
                                  "objects": [v1, v2]}))
    imported = run("import", str(bundle))
    assert imported.exit_code == 0, imported.stdout + imported.stderr

    def versions_seen(partner):
        node = open_node(Settings.from_env())
        with node.engine.connect() as connection:
            got = page(connection, partner, PageQuery(ids=(v1["id"],)))
        node.engine.dispose()
        return [g.object["modified"] for g in got.versions]

    assert versions_seen("FRA") == [v1["modified"]]
    assert run("withdraw", v1["id"], "--json").exit_code == 2  # a reason is required
    result = run("withdraw", v1["id"], "--reason", "v2 is CAN EYES ONLY", "--json")
    assert result.exit_code == 0, result.stderr
    done = json.loads(result.stdout)
    assert done["versions"] == [v1["modified"]]
    assert "FRA" in done["partners"] and "USA" in done["partners"]
    assert versions_seen("FRA") == []
    assert versions_seen("USA") == []
    log = json.loads(run("policy", "log", "--json").stdout)
    assert log[-1]["kind"] == "withdraw" and log[-1]["detail"]["reason"] == "v2 is CAN EYES ONLY"
    entries = json.loads(run("ledger", "show", "--kind", "policy", "--json").stdout)
    assert any("withdraw" in json.dumps(e) for e in entries)
    assert to_micros(done["versions"][0]) == to_micros(v1["modified"])
    # A policy rebuild keeps the withdrawal: it is a stored decision, not a derived one.
    assert run("policy", "rebuild").exit_code == 0
    assert versions_seen("FRA") == []
    again = run("withdraw", v1["id"], "--reason", "again", "--json")
    assert again.exit_code == 2  # nothing left to withdraw by default
