"""The onward notice: the reasons a malformed one is not read."""

import pytest

from liaison.stix.notice import NOTICE_TYPE, read_notice

USA = "identity--0b3c0d6f-6e2c-4f6b-9b43-6c3d1f0a0002"


def notice(**changes):
    obj = {
        "type": NOTICE_TYPE,
        "id": "liaison-onward-notice--0b3c0d6f-6e2c-4f6b-9b43-6c3d1f0a0010",
        "created_by_ref": USA,
        "object_ref": "report--0b3c0d6f-6e2c-4f6b-9b43-6c3d1f0a0005",
        "object_modified": "2026-12-01T00:00:00.000000Z",
        "recipient": "FRA",
        "consent_refs": ["liaison-consent--0b3c0d6f-6e2c-4f6b-9b43-6c3d1f0a0009"],
        "disclosed": "2026-12-07T00:00:00.000000Z",
        "ledger_entry": 12,
        "receipt": {"checkpoint": "", "tree_size": 13, "entries": []},
    }
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not None}


def test_a_notice_reads():
    read = read_notice(notice())
    assert (read.sender, read.recipient, read.entry) == (USA, "FRA", 12)
    assert read_notice(notice(consent_refs=None)).consents == ()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"recipient": None}, "has no recipient"),
        ({"object_ref": ""}, "has no object_ref"),
        ({"ledger_entry": True}, "has no ledger_entry"),
        ({"ledger_entry": -1}, "has no ledger_entry"),
        ({"receipt": "proof"}, "has no receipt"),
        ({"consent_refs": "c"}, "consent_refs is not a list"),
        ({"type": "note"}, "not a liaison-onward-notice"),
    ],
)
def test_a_malformed_notice_is_not_read(changes, reason):
    with pytest.raises(ValueError, match=reason):
        read_notice(notice(**changes))
