"""`liaison disclose`: a partner's fingerprinted copy for hand delivery, recorded in the
ledger; refused when the policy withholds the object."""

import hashlib
import json

from typer.testing import CliRunner

from liaison.stix.signature import unsigned

runner = CliRunner()


def report_id(run, starts):
    reports = json.loads(run("list", "--type", "report", "--json").stdout)
    return next(r["id"] for r in reports if r["name"].startswith(starts))


def test_disclose_writes_each_partner_its_own_copy_and_records_it(demo, tmp_path):
    rid = report_id(demo, "Trudeau says Canada")
    copies = {}
    for partner in ("USA", "FRA"):
        out = tmp_path / f"{partner}.json"
        result = demo("disclose", rid, "--partner", partner, "-o", str(out), "--json")
        assert result.exit_code == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["marks"] > 0 and summary["fingerprint"]
        data = out.read_bytes().rstrip(b"\n")
        assert hashlib.sha256(data).hexdigest() == summary["sha256"]
        copies[partner] = json.loads(data)
        shown = json.loads(demo("ledger", "show", "--partner", partner, "--json").stdout)
        (entry,) = [e for e in shown if e["object_id"] == rid]
        assert entry["seq"] == summary["ledger_entry"]
        assert entry["sha256"] == summary["sha256"]
        assert entry["fingerprint"] == summary["fingerprint"]
    assert copies["USA"]["description"] != copies["FRA"]["description"]
    again = json.loads(demo("disclose", rid, "--partner", "USA", "--json").stdout)
    assert again["copy"] == copies["USA"]  # the same copy, the same ledger entry
    assert (
        again["sha256"]
        == hashlib.sha256(
            json.dumps(copies["USA"], ensure_ascii=False, separators=(",", ":")).encode()
        ).hexdigest()
    )


def test_disclose_marks_the_copy_the_tearline_leaves(demo):
    rid = report_id(demo, "NATO summit: counter")  # FRA: the description is cut
    explained = json.loads(demo("explain", rid, "--partner", "FRA", "--json").stdout)
    disclosed = json.loads(demo("disclose", rid, "--partner", "FRA", "--json").stdout)
    assert "description" not in disclosed["copy"]
    assert set(unsigned(disclosed["copy"])) == set(explained["copy"])


def test_disclose_refuses_what_the_partner_may_not_receive(demo):
    rid = report_id(demo, "Foreign fighter")  # SECRET REL TO FVEY
    result = demo("disclose", rid, "--partner", "TUR")
    assert result.exit_code == 1
    assert "withheld from TUR" in result.stderr
    assert demo("ledger", "show", "--partner", "TUR", "--json").stdout.strip() == "[]"
