"""The consent object: what it covers, and the reasons a malformed one is not read."""

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from liaison.stix import consent as module
from liaison.stix.consent import CONSENT_TYPE, read_consent

SCHEMA = json.loads((Path(module.__file__).parent / "schemas" / "liaison-consent.json").read_text())
CAN = "identity--0b3c0d6f-6e2c-4f6b-9b43-6c3d1f0a0001"
REPORT = "report--0b3c0d6f-6e2c-4f6b-9b43-6c3d1f0a0005"
SECRET = "marking-definition--0b3c0d6f-6e2c-4f6b-9b43-6c3d1f0a0003"


def consent(**changes):
    obj = {
        "type": CONSENT_TYPE,
        "spec_version": "2.1",
        "id": "liaison-consent--0b3c0d6f-6e2c-4f6b-9b43-6c3d1f0a0009",
        "created": "2026-12-07T00:00:00.000Z",
        "modified": "2026-12-07T00:00:00.000Z",
        "created_by_ref": CAN,
        "recipient": "USA",
        "onward": ["FRA"],
        "object_refs": [REPORT],
        "valid_until": "2027-01-31T23:59:59.999Z",
    }
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not None}


def test_a_consent_reads_and_matches_its_schema():
    jsonschema.validate(consent(), SCHEMA)
    read = read_consent(consent())
    assert (read.recipient, read.onward, read.objects) == ("USA", ("FRA",), (REPORT,))
    assert read.last_day.isoformat() == "2027-01-31"
    assert read.state(datetime(2027, 1, 31, 12, tzinfo=UTC)) == "active"
    assert read.state(datetime(2027, 2, 1, tzinfo=UTC)) == "expired"
    later = consent(revoked=True, modified="2026-12-08T00:00:00.000Z")
    assert read_consent(later).state(datetime(2026, 12, 8, tzinfo=UTC)) == "revoked"
    # Revoked from its first version: an answer that refused a request.
    refusal = read_consent(consent(revoked=True, answers_request="liaison-consent-request--1"))
    assert (refusal.state(datetime(2026, 12, 8, tzinfo=UTC)), refusal.request) == (
        "refused",
        "liaison-consent-request--1",
    )


def test_scope_by_id_or_by_every_marking():
    by_id = read_consent(consent())
    assert by_id.covers({"id": REPORT}) and not by_id.covers({"id": "report--other"})
    by_marking = read_consent(consent(object_refs=None, scope_marking_refs=[SECRET]))
    assert by_marking.covers({"id": "report--x", "object_marking_refs": [SECRET, "m2"]})
    assert not by_marking.covers({"id": "report--x", "object_marking_refs": ["m2"]})
    assert not by_marking.covers({"id": "report--x"})


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"recipient": None}, "names no recipient"),
        ({"created_by_ref": None}, "names no originator"),
        ({"onward": []}, "names no onward recipient"),
        ({"onward": "FRA"}, "onward is not a list"),
        ({"object_refs": None}, "has no scope"),
        ({"valid_until": "next spring"}, "is not a timestamp"),
        ({"type": "report"}, "not a liaison-consent"),
    ],
)
def test_a_malformed_consent_is_not_read(changes, reason):
    with pytest.raises(ValueError, match=reason):
        read_consent(consent(**changes))
