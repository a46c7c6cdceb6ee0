"""The fast canonical checks of `liaison ledger verify` agree with RFC 8785 (the `rfc8785`
library) on everything Liaison writes into entries: the json encoding of any entry, and the
disclosure entries read without parsing them."""

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from liaison.errors import LedgerTampered
from liaison.ledger.log import _check_entry, _disclosure_said, _plain_canonical, _visiting
from tests.conftest import examples

KEYS = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=12)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=examples(500))
@given(st.dictionaries(KEYS, VALUES, max_size=8))
def test_plain_encoding_is_rfc8785_for_entry_shaped_json(content):
    assert _plain_canonical(content).encode() == rfc8785.dumps(content)


# Any text, including what JSON escapes; and mostly what Liaison writes.
TEXT = st.text(max_size=16) | st.from_regex(r"[a-z0-9:.\-]{1,40}", fullmatch=True)
EDITS = ' "\\,:{}[]0-9aZé\x01\x7f'


def needs_no_escape(text: str) -> bool:
    return not any(c in '"\\' or c < " " or "\ud800" <= c <= "\udfff" for c in text)


@st.composite
def disclosure_entries(draw):
    """A disclosure entry (seq, kind, partner, object_id, body) as its row holds it, written
    by disclosure_entry, sometimes with a fingerprint or the time a backfill recorded, then
    sometimes changed by a character or filed under other columns; and whether it is as
    Liaison writes it (unchanged, its strings in need of no escape)."""
    fields = {
        "at": draw(TEXT),
        "partner": draw(TEXT),
        "object_id": draw(TEXT),
        "version": draw(TEXT),
        "release_class": draw(TEXT),
        "sha256": draw(TEXT),
    }
    for optional in ("fingerprint", "recorded"):
        if draw(st.booleans()):
            fields[optional] = draw(TEXT)
    seq = draw(st.integers(0, 2**53 - 1))
    body = rfc8785.dumps({**fields, "kind": "disclosure", "seq": seq}).decode()
    row = (seq, "disclosure", fields["partner"], fields["object_id"], body)
    plain = all(needs_no_escape(value) for value in fields.values())
    if draw(st.booleans()):
        at = draw(st.integers(0, len(body)))
        edit = draw(st.sampled_from(EDITS))
        body = draw(st.sampled_from([body[:at] + edit + body[at:], body[:at] + body[at + 1 :]]))
        kind = draw(st.sampled_from(["disclosure", "policy"]))
        partner = draw(st.sampled_from([fields["partner"], "RUS"]))
        object_id = draw(st.sampled_from([fields["object_id"], None]))
        changed = (seq, kind, partner, object_id, body)
        plain = plain and changed == row
        row = changed
    return row, plain


@settings(max_examples=examples(1000))
@given(disclosure_entries())
def test_a_disclosure_read_without_parsing_is_one_that_passes_every_check(entry):
    row, plain = entry
    said = _disclosure_said(*row)
    if plain:
        assert said is not None  # what Liaison writes is read without parsing
    try:
        content = _check_entry(*row)
    except LedgerTampered:
        assert said is None
        return
    if said is not None:
        assert said == _visiting(row[0], row[1], content)[2]


def test_what_liaison_writes_takes_the_fast_path():
    content = {
        "at": "2025-01-01T00:00:00.000000Z",
        "fingerprint": "tardos:0123abcd",
        "kind": "disclosure",
        "object_id": "indicator--00000000-0000-4000-8000-000000000000",
        "partner": "USA",
        "recorded": "2024-01-01T00:00:00.000000Z",
        "release_class": "c" * 64,
        "seq": 1234,
        "sha256": "d" * 64,
        "version": "2024-12-31T23:59:59.999999Z",
    }
    for dropped in ((), ("fingerprint",), ("recorded",), ("fingerprint", "recorded")):
        body = rfc8785.dumps({k: v for k, v in content.items() if k not in dropped}).decode()
        row = (1234, "disclosure", "USA", content["object_id"], body)
        said = _disclosure_said(*row)
        assert said == ("USA", content["object_id"], "d" * 64, "c" * 64, content["version"])
        assert said == _visiting(1234, "disclosure", _check_entry(*row))[2]
    for wrong in (
        (1235, "disclosure", "USA", content["object_id"], body),  # out of place
        (1234, "policy", "USA", content["object_id"], body),  # filed under another kind
        (1234, "disclosure", "GBR", content["object_id"], body),  # ... another partner
        (1234, "disclosure", "USA", None, body),  # ... no object
        (1234, "disclosure", "USA", content["object_id"], body.replace(":", ": ", 1)),
        (1234, "disclosure", "USA", content["object_id"], body.encode()),  # not text
    ):
        assert _disclosure_said(*wrong) is None
        with pytest.raises(LedgerTampered):
            _check_entry(*wrong)
