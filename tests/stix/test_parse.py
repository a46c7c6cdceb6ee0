import json

import pytest

from liaison.errors import HostileStructure, MalformedJSON, NotStix, PayloadTooLarge
from liaison.settings import InputLimits
from liaison.stix.parse import parse_payload
from tests.stix_factory import bundle, indicator

LIMITS = InputLimits(max_bytes=64 * 1024, max_nesting=32, max_string_bytes=4096)


def encode(document: object) -> bytes:
    return json.dumps(document).encode()


def test_bundle_gives_its_objects():
    objects = parse_payload(encode(bundle(indicator(1), indicator(2))), LIMITS)
    assert [o["name"] for o in objects] == ["indicator 1", "indicator 2"]


def test_single_object_is_accepted():
    assert parse_payload(encode(indicator(1)), LIMITS) == [indicator(1)]


def test_empty_bundle_gives_no_objects():
    assert parse_payload(encode(bundle()), LIMITS) == []


@pytest.mark.parametrize(
    ("payload", "error", "words"),
    [
        (b"this is not json", MalformedJSON, "not JSON"),
        (b'{"type": "bundle",', MalformedJSON, "not JSON"),
        (b"", MalformedJSON, "empty"),
        (b"\xff\xfe\x00garbage", MalformedJSON, "not UTF-8"),
        (b"[1, 2, 3]", NotStix, "expected a JSON object"),
        (b"42", NotStix, "expected a JSON object"),
        (b'{"hello": "world"}', NotStix, "no 'type'"),
        (b'{"type": "indicator", "id": "nope"}', NotStix, "no valid STIX 'id'"),
        (
            b'{"type": "indicator", "id": "report--11111111-1111-4111-8111-111111111111"}',
            NotStix,
            "does not match type",
        ),
        (
            b'{"type": "bundle", "id": "bundle--11111111-1111-4111-8111-111111111111",'
            b' "objects": {}}',
            NotStix,
            "not a list",
        ),
        (b'{"type": "bundle", "objects": []}', NotStix, "no valid 'id'"),
    ],
)
def test_bad_payloads_are_refused_with_a_reason(payload, error, words):
    with pytest.raises(error) as caught:
        parse_payload(payload, LIMITS)
    assert words in str(caught.value)


def test_object_that_is_not_a_json_object_is_refused():
    document = bundle(indicator(1))
    document["objects"].append("a string")
    with pytest.raises(NotStix, match="object 1 of the bundle is not a JSON object"):
        parse_payload(encode(document), LIMITS)


def test_bundle_inside_bundle_is_refused():
    with pytest.raises(NotStix, match="bundle inside a bundle"):
        parse_payload(encode(bundle(bundle())), LIMITS)


def test_oversized_payload_is_refused_before_decoding():
    payload = b"x" * (LIMITS.max_bytes + 1)  # not even JSON: size is checked first
    with pytest.raises(PayloadTooLarge, match="exceeds the limit"):
        parse_payload(payload, LIMITS)


def test_deep_nesting_is_refused():
    obj = indicator(1)
    nested: object = "leaf"
    for _ in range(LIMITS.max_nesting + 1):
        nested = {"x": nested}
    obj["x_deep"] = nested
    with pytest.raises(HostileStructure, match="nested deeper"):
        parse_payload(encode(obj), LIMITS)


def test_nesting_beyond_the_json_decoders_recursion_is_refused():
    payload = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises((HostileStructure, MalformedJSON)):
        parse_payload(payload, InputLimits(max_bytes=1_000_000))


def test_huge_string_is_refused():
    obj = indicator(1)
    obj["description"] = "A" * (LIMITS.max_string_bytes + 1)
    with pytest.raises(HostileStructure, match="string of"):
        parse_payload(encode(obj), LIMITS)


def test_huge_key_is_refused():
    obj = indicator(1)
    obj["x_" + "k" * LIMITS.max_string_bytes] = 1
    with pytest.raises(HostileStructure, match="string of"):
        parse_payload(encode(obj), LIMITS)


def test_string_at_the_limit_is_accepted():
    obj = indicator(1)
    obj["description"] = "A" * LIMITS.max_string_bytes
    assert parse_payload(encode(obj), LIMITS)[0]["description"] == obj["description"]
