"""The originator's signature binds an object to its markings: it verifies on exactly the
object that was signed (checked against a plain reference, canonical equality), names its
signer, and is refused with a reason otherwise."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

import liaison.stix.signature as signature
from liaison.stix.signature import (
    SIGNATURE_EXTENSION,
    Signer,
    extension_definition,
    sign,
    unsigned,
    verify,
)
from tests.conftest import examples

CAN = "identity--0b3c0d6f-6e2c-4f6b-9b43-6c3d1f0a0001"
USA = "identity--0b3c0d6f-6e2c-4f6b-9b43-6c3d1f0a0002"
SECRET_FVEY = "marking-definition--0b3c0d6f-6e2c-4f6b-9b43-6c3d1f0a0003"
NATO = "marking-definition--0b3c0d6f-6e2c-4f6b-9b43-6c3d1f0a0004"
CAN_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
USA_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
PINNED = {CAN: CAN_KEY.public_key(), USA: USA_KEY.public_key()}
SCHEMA = Path(signature.__file__).parent / "schemas" / "liaison-signature.json"


def report(**changes: Any) -> dict[str, Any]:
    obj = {
        "type": "report",
        "spec_version": "2.1",
        "id": "report--0b3c0d6f-6e2c-4f6b-9b43-6c3d1f0a0005",
        "created": "2026-12-01T00:00:00.000Z",
        "modified": "2026-12-01T00:00:00.000Z",
        "created_by_ref": CAN,
        "name": "Foreign fighters returning through Latvia",
        "description": "The defence ministry said on Tuesday that two cells were watched.",
        "published": "2026-12-01T00:00:00.000Z",
        "object_refs": [CAN],
        "object_marking_refs": [SECRET_FVEY],
    }
    obj.update(changes)
    return obj


def test_a_signed_copy_verifies_and_names_its_signer() -> None:
    signed = sign(report(), Signer(CAN, CAN_KEY))
    verdict = verify(signed, PINNED)
    assert verdict.verified and verdict.signer == CAN and verdict.reason is None
    assert unsigned(signed) == report()
    # Deterministic: one copy, one set of bytes, whichever path signs it.
    assert sign(report(), Signer(CAN, CAN_KEY)) == signed
    jsonschema.validate(signed["extensions"][SIGNATURE_EXTENSION], json.loads(SCHEMA.read_text()))


def test_other_extensions_are_signed_and_kept() -> None:
    grade = {"extension-definition--6b517315-e0d2-43be-8501-180baefd8042": {"a": 1}}
    signed = sign(report(extensions=grade), Signer(CAN, CAN_KEY))
    assert set(signed["extensions"]) == {*grade, SIGNATURE_EXTENSION}
    assert verify(signed, PINNED).verified
    changed = copy.deepcopy(signed)
    changed["extensions"]["extension-definition--6b517315-e0d2-43be-8501-180baefd8042"]["a"] = 2
    assert not verify(changed, PINNED).verified


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda o: o.update(object_marking_refs=[NATO]), "changed after signing"),
        (lambda o: o.pop("object_marking_refs"), "changed after signing"),
        (lambda o: o.update(description=o["description"] + " "), "changed after signing"),
        (lambda o: o.update(created_by_ref=USA), f"signed by {CAN}, not by its originator {USA}"),
        (lambda o: o.pop("extensions"), "carries no originator's signature"),
        (
            lambda o: o["extensions"][SIGNATURE_EXTENSION].update(signature="not base64!"),
            "changed after signing",
        ),
        (
            lambda o: o["extensions"][SIGNATURE_EXTENSION].update(algorithm="RS256"),
            "is not Ed25519",
        ),
        (
            lambda o: o["extensions"][SIGNATURE_EXTENSION].pop("signer"),
            "names no signer",
        ),
    ],
)
def test_a_changed_copy_is_refused_with_the_reason(change, reason) -> None:
    signed = sign(report(), Signer(CAN, CAN_KEY))
    change(signed)
    verdict = verify(signed, PINNED)
    assert not verdict.verified and reason in verdict.reason


def test_a_signature_by_a_key_not_pinned_or_not_the_originators_is_refused() -> None:
    signed = sign(report(), Signer(CAN, CAN_KEY))
    assert "no public key is pinned" in verify(signed, {USA: USA_KEY.public_key()}).reason
    # USA signs CAN's report as if it were CAN's: the key pinned for CAN refuses it.
    forged = sign(report(), Signer(CAN, USA_KEY))
    assert "does not verify" in verify(forged, PINNED).reason
    # Signed under its own name, USA is not the originator the report names.
    assert "not by its originator" in verify(sign(report(), Signer(USA, USA_KEY)), PINNED).reason


def test_an_object_without_created_by_ref_is_the_signers() -> None:
    observable = {"type": "domain-name", "id": "domain-name--1", "value": "example.org"}
    assert verify(sign(observable, Signer(USA, USA_KEY)), PINNED).verified


def test_the_extension_definition_is_valid_stix() -> None:
    from liaison.stix.validate import validation_errors

    definition = extension_definition(CAN)
    assert definition["id"] == SIGNATURE_EXTENSION
    assert validation_errors(definition) == []
    signed = sign(report(), Signer(CAN, CAN_KEY))
    assert validation_errors(signed) == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
FIELDS = ["name", "description", "object_marking_refs", "created", "labels", "granular_markings"]


@settings(max_examples=examples(400))
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(FIELDS), st.none() | json_values), min_size=0, max_size=3
    )
)
def test_verifies_exactly_when_the_content_is_what_was_signed(edits) -> None:
    """Reference: a copy verifies if and only if its canonical form, signature left out, is
    the signed object's."""
    original = report()
    signed = sign(original, Signer(CAN, CAN_KEY))
    edited = copy.deepcopy(signed)
    for field, value in edits:
        if value is None:
            edited.pop(field, None)
        else:
            edited[field] = value
    same = rfc8785.dumps(unsigned(edited)) == rfc8785.dumps(original)
    assert verify(edited, PINNED).verified == same
