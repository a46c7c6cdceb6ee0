"""The fast canonical check of `liaison ledger verify` agrees with RFC 8785 (the `rfc8785`
library) on everything Liaison writes into entries."""

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from liaison.ledger.log import _plain_canonical
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
