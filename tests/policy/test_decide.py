"""Every rule of the release decision, with its reason code (docs/policy.md)."""

from datetime import date

import pytest

from liaison.markings.handling import Handling
from liaison.policy.classes import ConsentTerms
from liaison.policy.decide import Marking, ObjectMarkings, Originator, decide
from tests.policy.world import NODE, USA_ID, context

TODAY = date(2026, 11, 23)
OWN = Originator(NODE, "CAN", True)
FROM_USA = Originator(USA_ID, "USA", False)
REQUIRED = frozenset({"type", "id", "name", "published", "object_refs"})


def marked(*handlings: Handling, granular=(), kind="report") -> ObjectMarkings:
    return ObjectMarkings(
        type=kind,
        object_level=tuple(Marking(f"m{i}", h) for i, h in enumerate(handlings)),
        granular=tuple(granular),
        required=REQUIRED,
    )


def H(tlp=None, cls=None, rel=None, caveats=()):
    return Handling(
        tlp=tlp,
        classification=cls,
        releasable_to=frozenset(rel) if rel is not None else None,
        caveats=frozenset(caveats),
    )


def outcome(markings, partner, originator=OWN, consents=(), at=TODAY, **rules):
    return decide(markings, originator, consents, partner, context(**rules), at)


def codes(decision):
    return {r.code for r in decision.reasons}


SECRET_FVEY = marked(H(cls="CAN:SECRET", rel=["FVEY"]))


@pytest.mark.parametrize("partner", ["USA", "GBR", "AUS", "NZL"])
def test_secret_rel_to_fvey_goes_to_the_five_eyes(partner):
    decision = outcome(SECRET_FVEY, partner)
    assert decision.decision == "release"
    assert any(f"{partner} is a member of FVEY" in r.text for r in decision.reasons)


def test_secret_rel_to_fvey_not_to_france():
    decision = outcome(SECRET_FVEY, "FRA")
    assert decision.decision == "withhold"
    assert "REL TO FVEY: FRA is not a member of FVEY" in [r.text for r in decision.reasons]


def test_can_eyes_only_goes_to_no_one():
    markings = marked(H(cls="CAN:SECRET", rel=["FVEY"], caveats=["CAN EYES ONLY"]))
    for partner in ("USA", "GBR", "FRA"):
        decision = outcome(markings, partner)
        assert decision.decision == "withhold" and "eyes-only" in codes(decision)


def test_country_eyes_only_goes_to_that_country_only():
    markings = marked(H(tlp="clear", caveats=["USA EYES ONLY"]))
    assert outcome(markings, "USA").released
    assert not outcome(markings, "GBR").released


def test_efp_mission_report_goes_to_albania_only_while_it_is_a_member():
    markings = marked(H(cls="NATO:NC", rel=["eFP Latvia"]))
    assert not outcome(markings, "ALB", at=date(2017, 6, 18)).released
    assert outcome(markings, "ALB", at=date(2020, 1, 1)).released
    left = outcome(markings, "ALB", at=date(2024, 1, 1))
    assert left.decision == "withhold" and "rel-to" in codes(left)
    assert not outcome(markings, "FRA", at=date(2020, 1, 1)).released


def test_classification_above_clearance():
    decision = outcome(marked(H(cls="CAN:SECRET", rel=["NATO"])), "ALB")
    assert decision.decision == "withhold"
    assert "SECRET (CAN) exceeds ALB clearance NATO CONFIDENTIAL" in [
        r.text for r in decision.reasons
    ]


def test_level_with_no_equivalent_is_not_releasable():
    decision = outcome(marked(H(cls="CAN:PROTECTED B", rel=["FVEY"])), "USA")
    assert decision.decision == "withhold" and "clearance" in codes(decision)
    assert "no equivalent" in decision.reasons[0].text


def test_trust_ceiling_caps_a_low_trust_partner():
    markings = marked(H(cls="NATO:NS", rel=["NATO"]))
    assert outcome(markings, "FRA").released
    decision = outcome(markings, "TUR")  # cleared NATO SECRET, but trust is low
    assert decision.decision == "withhold" and "trust-ceiling" in codes(decision)
    assert outcome(markings, "TUR", trust_ceilings={}).released


def test_unmarked_is_withheld_unless_a_node_rule_gives_a_default():
    assert codes(outcome(marked(), "USA")) == {"unmarked"}
    assert outcome(marked(), "USA", unmarked="green").released
    assert not outcome(marked(), "GBR", originator=FROM_USA, unmarked="green").released


def test_an_originator_always_receives_its_own_objects():
    unknown = ObjectMarkings("report", (Marking("marking-definition--x", None),), required=REQUIRED)
    for markings in (marked(), unknown):
        decision = outcome(markings, "USA", originator=FROM_USA)
        assert decision.released and codes(decision) == {"owner"}
    assert not outcome(unknown, "GBR", originator=FROM_USA).released


def test_statement_only_counts_as_unmarked():
    assert codes(outcome(marked(Handling()), "USA")) == {"unmarked"}


def test_unknown_marking_withholds():
    markings = ObjectMarkings(
        "report", (Marking("marking-definition--x", None),), required=REQUIRED
    )
    decision = outcome(markings, "USA")
    assert decision.decision == "withhold"
    assert decision.reasons[0].text == "unknown marking marking-definition--x"


@pytest.mark.parametrize(
    ("partner", "code"),
    [("XYZ", "partner-unknown"), ("DEU", "partner-suspended"), ("RUS", "not-a-partner")],
)
def test_partner_status(partner, code):
    decision = outcome(marked(H(tlp="clear")), partner)
    assert decision.decision == "withhold" and codes(decision) == {code}


def test_noforn_and_unknown_caveats():
    assert "noforn" in codes(outcome(marked(H(tlp="clear", caveats=["NOFORN"])), "USA"))
    assert "unknown-caveat" in codes(outcome(marked(H(tlp="clear", caveats=["PROPIN"])), "USA"))


def test_no_releasability_marking():
    decision = outcome(marked(H(cls="CAN:UNCLASSIFIED")), "USA")
    assert codes(decision) == {"no-releasability"}


def test_tlp_levels():
    assert outcome(marked(H(tlp="clear")), "TUR").released
    assert outcome(marked(H(tlp="green")), "ALB").released  # NATO, shared with CAN
    amber = marked(H(tlp="amber"))
    assert not outcome(amber, "USA").released
    assert outcome(amber, "USA", amber_scope=frozenset({"FVEY"})).released
    assert outcome(amber, "FRA", amber_scope=frozenset({"FRA"})).released
    for level in ("amber+strict", "red"):
        assert not outcome(marked(H(tlp=level)), "USA").released
        assert not outcome(marked(H(tlp=level, rel=["FVEY"])), "USA").released
        assert outcome(marked(H(tlp=level, rel=["USA"])), "USA").released


def test_most_restrictive_tlp_wins():
    assert not outcome(marked(H(tlp="clear"), H(tlp="red")), "USA").released


def test_every_rel_to_must_name_the_partner():
    markings = marked(H(rel=["FVEY"]), H(rel=["NATO"]))
    assert outcome(markings, "GBR").released
    assert not outcome(markings, "AUS").released


def test_third_party_rule():
    # USA's object, REL TO FVEY: CAN may pass it on inside FVEY only.
    rel_fvey = marked(H(cls="USA:S", rel=["FVEY"]))
    assert outcome(rel_fvey, "GBR", originator=FROM_USA).released
    assert not outcome(rel_fvey, "FRA", originator=FROM_USA).released
    # TLP:GREEN from USA: only within a community USA shares with the partner.
    green = marked(H(tlp="green"))
    assert outcome(green, "FRA", originator=FROM_USA).released  # NATO
    # ORCON: never without consent, with consent yes.
    orcon = marked(H(cls="USA:S", rel=["FVEY"], caveats=["ORCON"]))
    refused = outcome(orcon, "GBR", originator=FROM_USA)
    assert refused.decision == "withhold" and "third-party" in codes(refused)
    to_gbr = (ConsentTerms("liaison-consent--1", ("GBR",)),)
    assert outcome(orcon, "GBR", originator=FROM_USA, consents=to_gbr).released
    # Our own ORCON object: we are the originator.
    assert outcome(orcon, "GBR").released


def test_consent_lifts_the_originators_limits_for_whom_it_names():
    # USA's SECRET REL TO FVEY: FRA is outside FVEY, yet USA consented to FRA.
    rel_fvey = marked(H(cls="USA:S", rel=["FVEY"]))
    to_fra = ConsentTerms("liaison-consent--1", ("FRA",), date(2026, 12, 31))
    decision = outcome(rel_fvey, "FRA", originator=FROM_USA, consents=(to_fra,))
    assert decision.released
    assert "consent" in codes(decision)
    assert any("liaison-consent--1" in r.text for r in decision.reasons)
    # A consent to NATO names FRA through its community.
    to_nato = ConsentTerms("liaison-consent--2", ("NATO",))
    assert outcome(rel_fvey, "FRA", originator=FROM_USA, consents=(to_nato,)).released
    # Not to whom it does not name.
    to_deu = ConsentTerms("liaison-consent--3", ("DEU",))
    assert not outcome(rel_fvey, "FRA", originator=FROM_USA, consents=(to_deu,)).released
    # Not after its last day: the reason names the consent and the day it ended.
    later = outcome(rel_fvey, "FRA", originator=FROM_USA, consents=(to_fra,), at=date(2027, 1, 1))
    assert later.decision == "withhold"
    assert "consent-expired" in codes(later)
    assert any("liaison-consent--1" in r.text and "2026-12-31" in r.text for r in later.reasons)
    # The partner's clearance still holds, and NOFORN too.
    top = marked(H(cls="USA:TS", rel=["FVEY"]))
    assert not outcome(top, "FRA", originator=FROM_USA, consents=(to_fra,)).released
    noforn = marked(H(cls="USA:S", rel=["FVEY"], caveats=["NOFORN"]))
    assert not outcome(noforn, "FRA", originator=FROM_USA, consents=(to_fra,)).released
    # A consent says nothing of the node's own objects.
    assert not outcome(rel_fvey, "FRA", consents=(to_fra,)).released


def test_third_party_rule_names_originator_and_partner():
    amber = marked(H(tlp="amber"))
    decision = outcome(amber, "FRA", originator=FROM_USA, amber_scope=frozenset({"FRA"}))
    assert "third-party rule: originator USA has not consented to release to FRA" in [
        r.text for r in decision.reasons
    ]


def test_unknown_originator_is_third_party():
    stranger = Originator("identity--99999999-9999-4999-8999-999999999999", None, False)
    assert not outcome(marked(H(tlp="green")), "USA", originator=stranger).released
    assert outcome(marked(H(tlp="clear")), "USA", originator=stranger).released


def test_granular_marking_cuts_a_field():
    secret_field = Marking("g", H(cls="CAN:SECRET", rel=["FVEY"]), ("description",))
    markings = marked(H(tlp="green"), granular=[secret_field])
    assert outcome(markings, "USA").decision == "release"
    cut = outcome(markings, "FRA")
    assert cut.decision == "release-with-cuts" and cut.cuts == ("description",)
    assert "field-cut" in codes(cut)


def test_cutting_a_required_field_withholds_the_object():
    secret_name = Marking("g", H(cls="CAN:SECRET", rel=["FVEY"]), ("name",))
    decision = outcome(marked(H(tlp="green"), granular=[secret_name]), "FRA")
    assert decision.decision == "withhold" and "required-field-cut" in codes(decision)


def test_unknown_granular_marking_cuts_its_field():
    unknown = Marking("marking-definition--x", None, ("description",))
    decision = outcome(marked(H(tlp="clear"), granular=[unknown]), "USA")
    assert decision.cuts == ("description",)


def test_definitions_are_released_to_partners():
    definition = ObjectMarkings("marking-definition", ())
    assert outcome(definition, "FRA").released
    assert not outcome(definition, "RUS").released


def test_every_decision_has_reasons():
    for markings in (SECRET_FVEY, marked(), marked(H(tlp="clear"))):
        for partner in ("USA", "FRA", "ALB", "RUS", "XYZ"):
            assert outcome(markings, partner).reasons


def test_the_originator_may_receive_its_own_object():
    orcon = marked(H(cls="USA:S", rel=["FVEY"], caveats=["ORCON"]))
    assert outcome(orcon, "USA", originator=FROM_USA).released
