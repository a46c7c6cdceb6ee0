"""A partner whose scale lacks a level protects it as its own rules say (``protects_foreign``):
the UK, which has had no CONFIDENTIAL since 2014, and a Canadian CONFIDENTIAL REL TO NATO
report (docs/markings.md, "Levels a partner's scale lacks")."""

from __future__ import annotations

import json
from datetime import date

import pytest
import sqlalchemy as sa

from liaison.alliance import Clearance, Partner, parse_alliance
from liaison.errors import ConfigError
from liaison.importer import import_objects
from liaison.markings.handling import Handling, marking_definition
from liaison.node import apply_alliance
from liaison.policy.decide import Marking, ObjectMarkings, Originator, PolicyContext, decide
from liaison.policy.grants import grant_of, read_changes
from liaison.policy.rules import NodeRules
from liaison.store.alliance import read_partners, save_alliance
from liaison.store.engine import write_transaction
from liaison.store.pages import granted_versions
from liaison.store.schema import objects, partners
from tests.conftest import EXAMPLES
from tests.policy.world import COMMUNITIES, NODE, PARTNERS

TODAY = date(2026, 11, 23)
OWN = Originator(NODE, "CAN", True)
UK_RULE = {"CONFIDENTIAL": "SECRET"}
RULE_LINE = 'protects_foreign = { CONFIDENTIAL = "SECRET" }\n'

WITH_RULE = (
    "CONFIDENTIAL (CAN) has no equivalent on the GBR scale; GBR protects it as SECRET (GBR) "
    "under its rule (protects_foreign CONFIDENTIAL = SECRET), within GBR clearance "
    "TOP SECRET (GBR)"
)
WITHOUT_RULE = "CONFIDENTIAL (CAN) has no equivalent on the GBR scale of GBR clearance"


def gbr(clearance: str = "GBR:TOP SECRET", trust: str = "high", **rules: str) -> Partner:
    return Partner(
        country="GBR",
        name="GBR",
        clearance=Clearance.parse(clearance),
        trust=trust,
        protects_foreign=rules,
    )


def context(uk: Partner, **node_rules) -> PolicyContext:
    return PolicyContext(
        node_country="CAN",
        partners={**PARTNERS, "GBR": uk},
        communities=COMMUNITIES,
        rules=NodeRules(**node_rules),
    )


def marked(cls: str, rel=("NATO",), caveats=()) -> ObjectMarkings:
    handling = Handling(
        tlp=None, classification=cls, releasable_to=frozenset(rel), caveats=frozenset(caveats)
    )
    return ObjectMarkings(type="report", object_level=(Marking("m0", handling),))


def decided(markings: ObjectMarkings, uk: Partner, **node_rules):
    return decide(markings, OWN, frozenset(), "GBR", context(uk, **node_rules), TODAY)


CONFIDENTIAL_NATO = marked("CAN:CONFIDENTIAL")


# --- the decision -----------------------------------------------------------------------------


def test_gbr_with_the_uk_rule_receives_can_confidential_rel_to_nato():
    decision = decided(CONFIDENTIAL_NATO, gbr(**UK_RULE))
    assert decision.decision == "release"
    clearance = [r for r in decision.reasons if r.code == "clearance"]
    assert [r.text for r in clearance] == [WITH_RULE]
    assert "REL TO NATO: GBR is a member of NATO" in [r.text for r in decision.reasons]


def test_gbr_without_a_rule_is_refused_as_before():
    decision = decided(CONFIDENTIAL_NATO, gbr())
    assert decision.decision == "withhold"
    assert [(r.code, r.text) for r in decision.reasons] == [("clearance", WITHOUT_RULE)]


def test_gbr_cleared_below_the_protecting_level_is_refused():
    decision = decided(CONFIDENTIAL_NATO, gbr("GBR:OFFICIAL-SENSITIVE", **UK_RULE))
    assert decision.decision == "withhold"
    assert [r.text for r in decision.reasons] == [
        "CONFIDENTIAL (CAN) has no equivalent on the GBR scale; GBR protects it as SECRET (GBR) "
        "under its rule (protects_foreign CONFIDENTIAL = SECRET), which exceeds GBR clearance "
        "OFFICIAL-SENSITIVE (GBR)"
    ]
    # Cleared exactly to the protecting level is enough.
    assert decided(CONFIDENTIAL_NATO, gbr("GBR:SECRET", **UK_RULE)).released


@pytest.mark.parametrize("level", ["NATO:NC", "USA:C", "NZL:CONFIDENTIAL", "EU:CONFIDENTIEL UE"])
def test_the_rule_covers_every_scales_confidential(level):
    assert not decided(marked(level), gbr()).released
    assert decided(marked(level), gbr(**UK_RULE)).released
    assert not decided(marked(level), gbr("GBR:OFFICIAL-SENSITIVE", **UK_RULE)).released


def test_the_other_rules_still_apply():
    uk = gbr(**UK_RULE)
    refused = decided(marked("CAN:CONFIDENTIAL", rel=("FRA",)), uk)
    assert refused.decision == "withhold" and {r.code for r in refused.reasons} == {"rel-to"}
    eyes = decided(marked("CAN:CONFIDENTIAL", rel=("FVEY",), caveats=("CAN EYES ONLY",)), uk)
    assert eyes.decision == "withhold" and "eyes-only" in {r.code for r in eyes.reasons}
    assert not decided(marked("CAN:CONFIDENTIAL", caveats=("NOFORN",)), uk).released
    assert decided(marked("CAN:CONFIDENTIAL", rel=("FVEY",)), uk).released


def test_the_rule_fills_only_the_gap_it_names():
    uk = gbr(**UK_RULE)
    # A level with no rung at all is still withheld; so is RESTRICTED, which the rule leaves.
    assert not decided(marked("CAN:PROTECTED B"), uk).released
    assert not decided(marked("NATO:NR"), uk).released
    assert decided(marked("NATO:NR"), gbr(RESTRICTED="OFFICIAL-SENSITIVE", **UK_RULE)).released
    # Levels with an equivalent are compared as ever.
    assert decided(marked("CAN:SECRET"), uk).released
    assert not decided(marked("CAN:TOP SECRET"), gbr("GBR:SECRET", **UK_RULE)).released


def test_a_trust_ceiling_on_the_partners_scale_meets_the_rule_too():
    ceiling = {"high": "GBR:SECRET"}
    assert not decided(CONFIDENTIAL_NATO, gbr(), trust_ceilings=ceiling).released
    decision = decided(CONFIDENTIAL_NATO, gbr(**UK_RULE), trust_ceilings=ceiling)
    assert decision.released
    assert (
        "CONFIDENTIAL (CAN) has no equivalent on the GBR scale; GBR protects it as SECRET (GBR) "
        "under its rule (protects_foreign CONFIDENTIAL = SECRET), within the ceiling for high "
        "trust SECRET (GBR)"
    ) in [r.text for r in decision.reasons]
    low = decided(CONFIDENTIAL_NATO, gbr(**UK_RULE), trust_ceilings={"high": "GBR:OFFICIAL"})
    assert low.decision == "withhold" and {r.code for r in low.reasons} == {"trust-ceiling"}
    # A ceiling on another scale is compared as ever: NATO has a CONFIDENTIAL.
    assert decided(CONFIDENTIAL_NATO, gbr(**UK_RULE), trust_ceilings={"high": "NATO:NC"}).released


# --- the alliance file --------------------------------------------------------------------------


def alliance_text(rule: str, clearance: str = "GBR:TOP SECRET", status: str = "active") -> str:
    return (
        '[node]\ncountry = "CAN"\nname = "node"\n\n'
        f'[[partners]]\ncountry = "GBR"\nname = "GBR"\nclearance = "{clearance}"\n'
        f'status = "{status}"\nprotects_foreign = {rule}\n'
    )


def test_the_rule_is_read_in_one_form():
    alliance = parse_alliance(alliance_text('{ confidential = "gbr:secret" }'))
    (uk,) = alliance.partners
    assert uk.protects_foreign == {"confidential": "SECRET"}
    assert uk == gbr(trust="medium", **UK_RULE)
    assert Partner.model_validate(uk.model_dump()) == uk  # what `partner set` does
    aus = Partner(
        country="AUS",
        name="AUS",
        clearance=Clearance.parse("AUS:TOP SECRET"),
        protects_foreign={"RESTRICTED": "official: sensitive"},
    )
    assert aus.protects_foreign == {"restricted": "OFFICIAL: SENSITIVE"}


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            '{ CONFIDENTAIL = "SECRET" }',
            "partner GBR: protects_foreign: 'CONFIDENTAIL' is not a rung of the classification "
            "ladder (unclassified, restricted, confidential, secret, top secret)",
        ),
        (
            '{ CONFIDENTIAL = "SECRT" }',
            "partner GBR: protects_foreign: CONFIDENTIAL = 'SECRT' is not a level of the GBR scale",
        ),
        (
            '{ CONFIDENTIAL = "NATO:NS" }',
            "partner GBR: protects_foreign: CONFIDENTIAL = 'NATO:NS' is not a level of the GBR "
            "scale",
        ),
        (
            '{ SECRET = "TOP SECRET" }',
            "partner GBR: protects_foreign: the GBR scale has its own SECRET level (SECRET); a "
            "rule is only for ranks it lacks",
        ),
        (
            '{ CONFIDENTIAL = "OFFICIAL" }',
            "partner GBR: protects_foreign: CONFIDENTIAL = 'OFFICIAL' would protect it no "
            "better than OFFICIAL, the GBR level of a lower rank",
        ),
        (
            '{ CONFIDENTIAL = "SECRET", confidential = "SECRET" }',
            "partner GBR: protects_foreign: CONFIDENTIAL is named twice",
        ),
        ("{ CONFIDENTIAL = 3 }", "Input should be a valid string"),
    ],
)
def test_a_bad_rule_is_a_one_line_config_error(rule, message):
    with pytest.raises(ConfigError) as raised:
        parse_alliance(alliance_text(rule), source="alliance.toml")
    text = str(raised.value)
    assert text.startswith("alliance.toml: partners.0") and message in text
    assert "\n" not in text


def test_a_rule_needs_a_clearance_on_the_scale_it_speaks_of():
    with pytest.raises(ConfigError, match="a rule is only for ranks it lacks"):
        parse_alliance(alliance_text('{ CONFIDENTIAL = "SECRET" }', clearance="NATO:CTS"))
    no_clearance = (
        '[node]\ncountry = "CAN"\nname = "node"\n\n[[partners]]\ncountry = "RUS"\nname = "R"\n'
        'status = "non-partner"\nprotects_foreign = { CONFIDENTIAL = "SECRET" }\n'
    )
    with pytest.raises(ConfigError, match="protects_foreign needs a clearance"):
        parse_alliance(no_clearance)


# --- stored, and re-decided when it changes ---------------------------------------------------


def test_the_rule_is_stored_with_the_agreement(node):
    looks_like_json = json.dumps({"agreement": "x", "protects_foreign": {}})
    wanted = (
        gbr(**UK_RULE).model_copy(update={"agreement": "UKUSA agreement"}),
        Partner(country="USA", name="USA", clearance=Clearance.parse("USA:TS")),
        Partner(
            country="FRA",
            name="FRA",
            clearance=Clearance.parse("NATO:NS"),
            agreement=looks_like_json,
        ),
    )
    with write_transaction(node.engine) as connection:
        save_alliance(connection, wanted, ())
        assert {p.country: p for p in read_partners(connection)} == {p.country: p for p in wanted}
        stored = dict(connection.execute(sa.select(partners.c.code, partners.c.agreement)).all())
        # Without rules the column is the plain text, as before the rules existed.
        assert stored["USA"] == ""
        assert json.loads(stored["GBR"]) == {
            "agreement": "UKUSA agreement",
            "protects_foreign": {"confidential": "SECRET"},
        }
        assert json.loads(stored["FRA"])["agreement"] == looks_like_json
        assert save_alliance(connection, wanted, ()).updated == []


def confidential_note(node) -> tuple[dict, dict]:
    marking = marking_definition(node.identity_id, "CAN:CONFIDENTIAL", ["NATO"])
    note = {
        "type": "note",
        "spec_version": "2.1",
        "id": "note--00000000-0000-4000-8000-000000000001",
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "created_by_ref": node.identity_id,
        "content": "Counter-terrorism threat picture for NATO partners",
        "object_refs": [node.identity_id],
        "object_marking_refs": [marking["id"]],
    }
    return marking, note


def visible(node, partner: str) -> set[str]:
    with node.engine.connect() as connection:
        return {v.object["id"] for v in granted_versions(connection, partner)}


def test_changing_the_rule_in_the_alliance_file_redecides_gbr(node, tmp_path):
    text = (EXAMPLES / "alliance.toml").read_text()
    assert text.count(RULE_LINE) == 1  # the demo's GBR has the UK's rule
    without = tmp_path / "without.toml"
    without.write_text(text.replace(RULE_LINE, ""))
    apply_alliance(node, without)
    marking, note = confidential_note(node)
    assert import_objects(node.engine, [marking, note]).count("added") == 2
    assert note["id"] in visible(node, "USA")  # USA C is CONFIDENTIAL's equivalent
    assert note["id"] not in visible(node, "GBR")

    changes = apply_alliance(node, EXAMPLES / "alliance.toml")
    assert changes.updated == ["GBR"] and not changes.added and not changes.removed
    assert note["id"] in visible(node, "GBR")
    with node.engine.connect() as connection:
        class_id = connection.execute(
            sa.select(objects.c.release_class).where(objects.c.id == note["id"])
        ).scalar_one()
        grant = grant_of(connection, "GBR", class_id)
        log = read_changes(connection)
    assert grant is not None and grant.decision == "release"
    assert WITH_RULE in [r.text for r in grant.reasons]
    assert log[-1]["kind"] == "alliance" and log[-1]["detail"]["updated"] == ["GBR"]

    assert not apply_alliance(node, EXAMPLES / "alliance.toml").any  # the same file: nothing
    assert apply_alliance(node, without).updated == ["GBR"]
    assert note["id"] not in visible(node, "GBR")
