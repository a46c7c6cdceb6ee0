from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from liaison.stix.timestamps import from_micros, to_micros


def test_precision_does_not_change_the_instant():
    assert to_micros("2017-05-25T11:05:00Z") == to_micros("2017-05-25T11:05:00.000Z")
    assert to_micros("2017-05-25T11:05:00.1Z") == to_micros("2017-05-25T11:05:00.100000Z")


def test_known_instant():
    assert to_micros("1970-01-01T00:00:01.5Z") == 1_500_000
    assert from_micros(1_500_000) == "1970-01-01T00:00:01.500000Z"


@pytest.mark.parametrize("text", ["2017-05-25", "2017-05-25T11:05:00", "yesterday", ""])
def test_not_a_timestamp(text):
    with pytest.raises(ValueError, match="not a STIX timestamp"):
        to_micros(text)


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
)
def test_round_trip(moment):
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert from_micros(to_micros(text)) == text
