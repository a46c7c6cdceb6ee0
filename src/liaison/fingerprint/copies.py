"""A partner's own copy of an object: its codeword written into the slots of its text.

Each slot of each text field of an object version is one mark, named
``"{object id}|{version}|{field}|{slot index}"``; the partner's bit for it comes from the
symmetric Tardos code (``fingerprint/tardos.py``) under the node's fingerprint secret. The
copy is therefore the same every time it goes to the same partner, and an investigation can
recompute every partner's copy from the stored original and the secret alone.

Structured content (patterns, hashes, addresses, ids, timestamps, names) is never altered and
carries no fingerprint: an object without prose (an indicator without a description, an
observable) goes out as it is.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from liaison.fingerprint import tardos
from liaison.fingerprint.slots import Slot, apply_bits, find_slots, text_fields

SCHEME = tardos.SCHEME
_INFO = b"liaison fingerprint secret v1"


@dataclass(frozen=True)
class Marked:
    object: dict[str, Any]
    code: str | None  # the codeword's id, for the ledger; None when the object has no slots
    marks: int

    @property
    def fingerprint(self) -> str | None:
        """What the ledger records of the copy: ``"<scheme>:<code id>"``, None if unmarked."""
        return f"{SCHEME}:{self.code}" if self.code else None


def fingerprint_secret(key: Ed25519PrivateKey) -> bytes:
    """The node's fingerprint secret, derived from its signing key (HKDF-SHA256): nothing
    more to keep or back up, and nothing a partner can compute."""
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(raw)


def marked_version(obj: dict[str, Any]) -> str:
    """The version in ``obj``'s mark keys: its ``modified`` (else ``created``) as written,
    not the store's integer key (``liaison.store.objects.version_of``)."""
    stamp = obj.get("modified") or obj.get("created") or ""
    return stamp if isinstance(stamp, str) else ""


def mark_key(object_id: str, version: str, field: str, index: int) -> str:
    return f"{object_id}|{version}|{field}|{index}"


def code_id(secret: bytes, partner: str, object_id: str, version: str) -> str:
    """Names the codeword a partner's copy of a version carries (not the bits themselves)."""
    message = f"code|{partner}|{object_id}|{version}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:16]


def mark(
    obj: dict[str, Any],
    partner: str,
    secret: bytes,
    slots_of: Callable[[str], Sequence[Slot]] = find_slots,
) -> Marked:
    """``partner``'s copy of ``obj`` (already cut by its tearline): every slot of every text
    field set to the partner's bit. ``obj`` itself is never changed. ``slots_of`` finds the
    slots of a text (``fingerprint.prepared.SlotBook`` reads them from the store)."""
    object_id, version = obj.get("id", ""), marked_version(obj)
    copy = dict(obj)
    marks = 0
    for field in text_fields(obj):
        slots = slots_of(obj[field])
        if not slots:
            continue
        keys = [mark_key(object_id, version, field, s.index) for s in slots]
        bits = tardos.codeword(secret, partner, keys).tolist()
        copy[field] = apply_bits(obj[field], slots, bits)
        marks += len(slots)
    if not marks:
        return Marked(obj, None, 0)
    return Marked(copy, code_id(secret, partner, object_id, version), marks)
