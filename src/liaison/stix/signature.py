"""Labels bound to the data: the originator's signature over an object and its markings.

As STANAG 4778 binds a confidentiality label to the data it labels, every copy of an object
a node originated carries, in a Liaison property extension, the originator's Ed25519
signature over the RFC 8785 canonical form of the copy as its recipient received it: the
tearline applied, references cut and the recipient's fingerprint written in, with the
``object_marking_refs`` and ``granular_markings`` it went out with. Only the extension's own
entry is left out of what is signed. Whoever relays the copy, a third node can check that
the originator wrote and marked it so; a changed word, a removed marking or a new
``created_by_ref`` breaks the signature.

The signer is named in the extension (its identity id); its public key comes from the
verifier's own pins (the alliance file's ``public_key`` of each partner, the node's own
key), never from the object. The originator of an object is its ``created_by_ref``, or the
signer where the object has none (observables): a signature by anyone else is refused.
Ed25519 signatures are deterministic, so one copy has one set of bytes, whichever path
delivers it. Schema: ``schemas/liaison-signature.json`` beside this module; docs/sync.md.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_EXTENSION = "extension-definition--0d3f6c8e-5a41-4a57-9a53-4b7b0d5e2c11"
ALGORITHM = "Ed25519"


@dataclass(frozen=True)
class Signer:
    """Who signs: an identity id and its private key (a node's own)."""

    identity: str
    key: Ed25519PrivateKey


@dataclass(frozen=True)
class Verdict:
    """Whether an object's signature verifies; ``reason`` says why not."""

    signer: str | None
    verified: bool
    reason: str | None = None


def unsigned(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` without the signature's extension entry (and without ``extensions`` if nothing
    else is in it)."""
    body = dict(obj)
    extensions = dict(body.get("extensions") or {})
    extensions.pop(SIGNATURE_EXTENSION, None)
    if extensions:
        body["extensions"] = extensions
    else:
        body.pop("extensions", None)
    return body


def signed_by_originator(obj: Mapping[str, Any]) -> bool:
    """Whether ``obj`` carries a signature entry (verified or not: :func:`verify`)."""
    return isinstance((obj.get("extensions") or {}).get(SIGNATURE_EXTENSION), Mapping)


def signed_form(obj: Mapping[str, Any]) -> bytes:
    """What the signature covers: the RFC 8785 canonical form of :func:`unsigned` ``obj``."""
    return rfc8785.dumps(unsigned(obj))


def sign(obj: Mapping[str, Any], signer: Signer) -> dict[str, Any]:
    """``obj`` with ``signer``'s signature in its extension (``obj`` is not changed); an
    earlier signature is replaced."""
    signature = signer.key.sign(signed_form(obj))
    extension = {
        "extension_type": "property-extension",
        "signer": signer.identity,
        "algorithm": ALGORITHM,
        "signature": base64.urlsafe_b64encode(signature).rstrip(b"=").decode("ascii"),
    }
    extensions = {**(obj.get("extensions") or {}), SIGNATURE_EXTENSION: extension}
    return {**obj, "extensions": extensions}


def verify(obj: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey]) -> Verdict:
    """Whether ``obj`` carries its originator's valid signature. ``keys`` maps identity ids
    to the public keys the verifier pinned."""
    extension = (obj.get("extensions") or {}).get(SIGNATURE_EXTENSION)
    if not isinstance(extension, Mapping):
        return Verdict(None, False, "it carries no originator's signature")
    signer = extension.get("signer")
    if not isinstance(signer, str):
        return Verdict(None, False, "its signature names no signer")
    originator = obj.get("created_by_ref", signer)
    if signer != originator:
        return Verdict(
            signer, False, f"it is signed by {signer}, not by its originator {originator}"
        )
    if extension.get("algorithm") != ALGORITHM:
        return Verdict(signer, False, f"its signature is not {ALGORITHM}")
    key = keys.get(signer)
    if key is None:
        return Verdict(signer, False, f"no public key is pinned for its signer {signer}")
    encoded = extension.get("signature")
    try:
        if not isinstance(encoded, str):
            raise ValueError(encoded)
        signature = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        key.verify(signature, signed_form(obj))
    except (ValueError, binascii.Error, InvalidSignature):
        return Verdict(
            signer,
            False,
            "its signature does not verify: the object or its markings changed after signing",
        )
    return Verdict(signer, True)


def pinned(hex_keys: Mapping[str, str]) -> dict[str, Ed25519PublicKey]:
    """Public keys by identity id, from their 64 hex digits."""
    return {
        identity: Ed25519PublicKey.from_public_bytes(bytes.fromhex(key))
        for identity, key in hex_keys.items()
    }


def extension_definition(created_by: str) -> dict[str, Any]:
    """The STIX extension-definition of the signature extension, for whoever receives it."""
    return {
        "type": "extension-definition",
        "spec_version": "2.1",
        "id": SIGNATURE_EXTENSION,
        "created_by_ref": created_by,
        "created": "2026-12-07T00:00:00.000Z",
        "modified": "2026-12-07T00:00:00.000Z",
        "name": "Liaison originator signature",
        "description": (
            "The originator's Ed25519 signature over the RFC 8785 canonical form of the "
            "object as its recipient received it, markings included, this entry left out. "
            "Schema: src/liaison/stix/schemas/liaison-signature.json in the Liaison repository."
        ),
        "schema": "https://liaison.invalid/schemas/liaison-signature-1.0.json",
        "version": "1.0.0",
        "extension_types": ["property-extension"],
    }
