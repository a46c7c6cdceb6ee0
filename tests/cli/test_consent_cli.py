"""`liaison consent grant|revoke|list`: the originator's signed permission to pass an object
on, as an officer gives and withdraws it."""

import json
from datetime import date, timedelta

import sqlalchemy as sa

from liaison.ledger.log import entries
from liaison.node import open_node
from liaison.settings import Settings
from liaison.stix.validate import validate_all
from liaison.store.schema import objects

REPORT = "report--4c6f9d77-9ad1-504d-ae68-a36d376a6ee8"


def consent_entries() -> list[dict]:
    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        return [e.content for e in entries(connection, kind="consent")]


def test_a_consent_is_granted_listed_and_revoked(demo):
    until = (date.today() + timedelta(days=30)).isoformat()
    granted = demo(
        "consent", "grant", REPORT, "--recipient", "usa", "--onward", "FRA,NATO",
        "--until", until, "--json",
    )  # fmt: skip
    assert granted.exit_code == 0, granted.stderr
    consent = json.loads(granted.stdout)
    assert consent["id"].startswith("liaison-consent--")
    assert (consent["originator"], consent["recipient"]) == ("CAN", "USA")
    assert consent["onward"] == ["FRA", "NATO"] and consent["objects"] == [REPORT]
    assert consent["until"].startswith(until) and consent["state"] == "active"
    (listed,) = json.loads(demo("consent", "list", "--json").stdout)
    assert listed == consent
    assert consent["id"] in demo("consent", "list").stdout

    # The stored object is valid STIX (the OASIS validator) under the consent extension.
    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        body = connection.execute(
            sa.select(objects.c.body).where(objects.c.id == consent["id"])
        ).scalar_one()
    assert validate_all([json.loads(body)]) == [[]]

    revoked = demo("consent", "revoke", consent["id"], "--json")
    assert revoked.exit_code == 0, revoked.stderr
    assert json.loads(revoked.stdout)["state"] == "revoked"
    (listed,) = json.loads(demo("consent", "list", "--json").stdout)
    assert listed["state"] == "revoked" and listed["version"] > consent["version"]
    assert [e["action"] for e in consent_entries()] == ["grant", "revoke"]
    again = demo("consent", "revoke", consent["id"])
    assert again.exit_code == 2 and "already revoked" in again.stderr


def test_grant_prints_the_consents_id_alone(demo):
    granted = demo("consent", "grant", REPORT, "--recipient", "USA", "--onward", "FRA")
    assert granted.exit_code == 0, granted.stderr
    assert granted.stdout.strip().startswith("liaison-consent--")
    assert len(granted.stdout.split()) == 1


def test_bad_grants_write_nothing_and_say_why(demo):
    past = (date.today() - timedelta(days=1)).isoformat()
    cases = [
        (["--recipient", "XYZ", "--onward", "FRA"], "XYZ is not a known partner"),
        (["--recipient", "USA", "--onward", "Atlantis"], "neither a known partner"),
        (["--recipient", "USA", "--onward", "FRA", "--until", past], "in the past"),
        (["--recipient", "USA", "--onward", "FRA", "--until", "soon"], "is not a date"),
    ]
    for options, message in cases:
        result = demo("consent", "grant", REPORT, *options)
        assert result.exit_code == 2, (options, result.stdout)
        assert message in result.stderr and "Traceback" not in result.stderr
    missing = demo("consent", "grant", "report--00000000-0000-4000-8000-000000000000",
                   "--recipient", "USA", "--onward", "FRA")  # fmt: skip
    assert missing.exit_code != 0 and "no object" in missing.stderr
    assert json.loads(demo("consent", "list", "--json").stdout) == []
    assert consent_entries() == []


def test_onward_shows_the_nodes_own_disclosures_of_its_object(demo, tmp_path):
    copy = demo("disclose", REPORT, "--partner", "USA", "-o", str(tmp_path / "copy.json"))
    assert copy.exit_code == 0, copy.stderr
    chain = json.loads(demo("onward", REPORT, "--json").stdout)
    usa = [r for r in chain if r["to"] == "USA"]
    assert usa and all(r["from"] == "CAN" and r["via"] == "ledger" for r in usa)
    assert all(r["covered"] and r["consent"] is None and r["verified"] for r in usa)
    assert "CAN → USA" in demo("onward", REPORT).stdout
    missing = demo("onward", "report--00000000-0000-4000-8000-000000000000")
    assert missing.exit_code == 2 and "no object" in missing.stderr


def test_requests_for_the_nodes_own_objects_and_bad_answers_are_refused(demo):
    own = demo("consent", "request", REPORT, "--onward", "FRA")
    assert own.exit_code == 2 and "this node's own" in own.stderr
    unknown = demo("consent", "request", "report--00000000-0000-4000-8000-000000000000",
                   "--onward", "FRA")  # fmt: skip
    assert unknown.exit_code == 2 and "name its --originator" in unknown.stderr
    asked = demo("consent", "request", "report--00000000-0000-4000-8000-000000000000",
                 "--onward", "FRA", "--originator", "USA", "--json")  # fmt: skip
    assert asked.exit_code == 0, asked.stderr
    made = json.loads(asked.stdout)
    (listed,) = json.loads(demo("consent", "requests", "--json").stdout)
    assert (listed["id"], listed["state"], listed["requester"]) == (made["id"], "open", "CAN")
    assert (listed["originator"], listed["recipient"]) == ("USA", "CAN")
    neither = demo("consent", "answer", made["id"])
    assert neither.exit_code == 2 and "exactly one of --grant and --refuse" in neither.stderr
    not_ours = demo("consent", "answer", made["id"], "--grant")
    assert not_ours.exit_code == 2 and "asks USA, not this node" in not_ours.stderr
    assert [e["action"] for e in consent_entries()] == ["request"]
