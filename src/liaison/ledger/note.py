"""Signed notes, checkpoints and cosignatures as C2SP specifies them, with Ed25519 only.

A *signed note* (c2sp.org/signed-note) is a text ending in a newline, a blank line, and one
line per signature: ``— <key name> <base64(key ID || signature)>``. A *checkpoint*
(c2sp.org/tlog-checkpoint) is a note whose text is a log's tree head: origin, tree size and
base64 root hash, one per line. A *cosignature* (c2sp.org/tlog-cosignature, cosignature/v1) is
one more signature line on a checkpoint, by a witness that checked the log only grew: it signs
``cosignature/v1``, a ``time`` line and the checkpoint text, and carries its timestamp.

Keys are exchanged as verifier keys (*vkeys*): ``<name>+<hex key ID>+<base64(type || key)>``,
type 0x01 for note signatures and 0x04 for cosignatures.

Everything here is strict: a note that does not parse exactly, a signature from a trusted key
that does not verify, or a note no trusted key signed raises
:class:`~liaison.errors.InvalidProof`. Signatures by keys nobody trusted are skipped, as the
spec requires, so witnesses can add theirs to a checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from liaison.errors import InvalidProof

ED25519 = 0x01
"""Signature type of Ed25519 note signatures (c2sp.org/signed-note)."""
COSIGNATURE_V1 = 0x04
"""Signature type of timestamped Ed25519 cosignatures (c2sp.org/tlog-cosignature)."""

MAX_NOTE_SIZE = 256 * 1024
"""Largest note accepted, in UTF-8 bytes: room for the 16 post-quantum signatures the spec
requires verifiers to accept, far beyond what Liaison's notes need."""
MAX_SIGNATURES = 100
"""Most signature lines accepted in one note (as golang.org/x/mod/sumdb/note)."""
MAX_TIMESTAMP = 2**63 - 1
"""Largest cosignature timestamp the spec allows."""

_KEY_SIZE = 32
_SIGNATURE_SIZE = 64
_TIMESTAMP_SIZE = 8
_SIGNATURE_PREFIX = "— "  # em dash U+2014, space
_SIZE_LINE = re.compile(r"0|[1-9][0-9]*")
_KEY_ID_HEX = re.compile(r"[0-9a-f]{8}")


def key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || type || public key)[:4]: names a key in signature lines."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key).digest()[:4]


@dataclass(frozen=True)
class Verifier:
    """A trusted Ed25519 public key: what it is called, and whether it signs notes
    (:data:`ED25519`) or cosigns checkpoints (:data:`COSIGNATURE_V1`)."""

    name: str
    public_key: bytes
    signature_type: int = ED25519

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.signature_type not in (ED25519, COSIGNATURE_V1):
            raise ValueError(f"unsupported signature type {self.signature_type:#04x}")
        if not isinstance(self.public_key, bytes) or len(self.public_key) != _KEY_SIZE:
            raise ValueError("an Ed25519 public key is 32 bytes")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.signature_type, self.public_key)

    @property
    def vkey(self) -> str:
        """The verifier key string, ``<name>+<hex key ID>+<base64(type || key)>``."""
        encoded = base64.b64encode(bytes([self.signature_type]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def _verify(self, text: str, signature: bytes) -> None:
        """Check ``signature`` (the bytes after the key ID) over the note ``text``."""
        if self.signature_type == COSIGNATURE_V1:
            self._verify_cosignature(text, signature)
            return
        if len(signature) != _SIGNATURE_SIZE:
            raise InvalidProof(f"signature by {self.name} is not 64 bytes")
        self._check(signature, text.encode())

    def _verify_cosignature(self, text: str, signature: bytes) -> int:
        """Check a timestamped cosignature over checkpoint ``text``; return its timestamp."""
        if len(signature) != _TIMESTAMP_SIZE + _SIGNATURE_SIZE:
            raise InvalidProof(f"cosignature by {self.name} is not 72 bytes")
        timestamp = int.from_bytes(signature[:_TIMESTAMP_SIZE], "big")
        if timestamp > MAX_TIMESTAMP:
            raise InvalidProof(f"cosignature by {self.name} has a timestamp beyond 2^63 - 1")
        parse_checkpoint(text)
        self._check(signature[_TIMESTAMP_SIZE:], _cosigned_message(timestamp, text))
        return timestamp

    def _check(self, signature: bytes, message: bytes) -> None:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            raise InvalidProof(f"signature by {self.name}+{self.key_id.hex()} is invalid") from None


def verifier_key(name: str, public_key: Ed25519PublicKey | bytes) -> str:
    """The vkey of a note-signing key (type 0x01), to hand to those who will verify."""
    return Verifier(name, _raw_public_key(public_key), ED25519).vkey


def cosigner_key(name: str, public_key: Ed25519PublicKey | bytes) -> str:
    """The vkey of a witness's cosigning key (type 0x04)."""
    return Verifier(name, _raw_public_key(public_key), COSIGNATURE_V1).vkey


def parse_verifier_key(vkey: str) -> Verifier:
    """Read a vkey of type 0x01 or 0x04; ValueError unless it is exact and self-consistent."""
    name, plus, rest = vkey.partition("+")
    hex_id, plus_again, encoded = rest.partition("+")
    if not plus or not plus_again or not _valid_name(name):
        raise ValueError("a verifier key is <name>+<hex key ID>+<base64 key>")
    if not _KEY_ID_HEX.fullmatch(hex_id):
        raise ValueError("a verifier key's ID is 8 lowercase hex digits")
    raw = _b64decode(encoded)
    if raw is None or len(raw) != 1 + _KEY_SIZE:
        raise ValueError("a verifier key's key is base64 of a type byte and 32 key bytes")
    if raw[0] not in (ED25519, COSIGNATURE_V1):
        raise ValueError(f"unsupported signature type {raw[0]:#04x} in verifier key")
    verifier = Verifier(name, raw[1:], raw[0])
    if verifier.key_id.hex() != hex_id:
        raise ValueError("verifier key ID does not match its name and key")
    return verifier


# --- notes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Signature:
    name: str
    key_id: bytes
    signature: bytes  # after the key ID


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """The signed note of ``text`` (which must end in a newline) by the key called ``name``."""
    _check_text(text)
    _check_name(name)
    public_key = private_key.public_key().public_bytes_raw()
    identity = key_id(name, ED25519, public_key)
    return text + "\n" + _signature_line(name, identity + private_key.sign(text.encode()))


def open_note(note: str | bytes, verifiers: Iterable[Verifier]) -> tuple[str, list[str]]:
    """The text of ``note`` and the names of the known keys whose signatures verified.

    Signatures from keys not in ``verifiers`` are skipped. Raises :class:`InvalidProof` when
    the note is malformed, when any signature by a known key fails (or one key signed twice,
    differently), or when no known key signed; ValueError when two different verifiers share
    a name and key ID.
    """
    text, signatures = _split_note(note)
    known = _index(verifiers)
    verified: list[str] = []
    seen: dict[tuple[str, bytes], bytes] = {}
    for line in signatures:
        key = (line.name, line.key_id)
        verifier = known.get(key)
        if verifier is None:
            continue
        if key in seen:
            if seen[key] == line.signature:
                continue  # the same line twice
            raise InvalidProof(f"two different signatures by {line.name}+{line.key_id.hex()}")
        verifier._verify(text, line.signature)
        seen[key] = line.signature
        if line.name not in verified:
            verified.append(line.name)
    if not verified:
        raise InvalidProof("note has no signature by a known key")
    return text, verified


def _split_note(note: str | bytes) -> tuple[str, list[_Signature]]:
    """Text and signature lines of a note, checked against the signed-note grammar."""
    if len(note) > MAX_NOTE_SIZE:
        raise InvalidProof(f"note is larger than {MAX_NOTE_SIZE} bytes")
    try:
        if isinstance(note, bytes):
            note = note.decode()
        elif len(note.encode()) > MAX_NOTE_SIZE:
            raise InvalidProof(f"note is larger than {MAX_NOTE_SIZE} bytes")
    except UnicodeError:
        raise InvalidProof("note is not valid UTF-8") from None
    if _has_control_character(note):
        raise InvalidProof("note contains a control character other than newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise InvalidProof("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise InvalidProof("note has no signature lines, or they do not end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise InvalidProof(f"note has more than {MAX_SIGNATURES} signatures")
    signatures = []
    for line in lines:
        if not line.startswith(_SIGNATURE_PREFIX):
            raise InvalidProof(f"not a signature line: {line[:80]!r}")
        name, space, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
        raw = _b64decode(encoded) if space else None
        if not _valid_name(name) or raw is None or len(raw) < 5:
            raise InvalidProof(f"malformed signature line: {line[:80]!r}")
        signatures.append(_Signature(name, raw[:4], raw[4:]))
    return text, signatures


def _index(verifiers: Iterable[Verifier]) -> dict[tuple[str, bytes], Verifier]:
    known: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        key = (verifier.name, verifier.key_id)
        if known.setdefault(key, verifier) != verifier:
            raise ValueError(f"two different verifiers for {verifier.name}+{key[1].hex()}")
    return known


# --- checkpoints -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: who the log is (``origin``), its size and its root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for line in (self.origin, *self.extensions):
            if not line or "\n" in line or _has_control_character(line):
                raise ValueError(f"checkpoint line {line!r} is empty or has a control character")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise ValueError("checkpoint size must be an integer")
        if not 0 <= self.size < 2**64:
            raise ValueError(f"checkpoint size {self.size} is out of range")
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            raise ValueError("checkpoint root must be a 32-byte SHA-256 hash")

    def text(self) -> str:
        """The note text: origin, size, base64 root, extension lines, each ending in newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """Read checkpoint text exactly (no leading zeros, canonical base64, a 32-byte root)."""
    if not text.endswith("\n"):
        raise InvalidProof("checkpoint text does not end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or not all(lines):
        raise InvalidProof("checkpoint text needs at least three lines, none of them empty")
    origin, size, encoded, *extensions = lines
    if not _SIZE_LINE.fullmatch(size) or int(size) >= 2**64:
        raise InvalidProof(f"checkpoint size {size[:40]!r} is not a decimal tree size")
    root = _b64decode(encoded)
    if root is None or len(root) != 32:
        raise InvalidProof("checkpoint root is not the base64 of a 32-byte hash")
    try:
        return Checkpoint(origin, int(size), root, tuple(extensions))
    except ValueError as error:
        raise InvalidProof(str(error)) from None


def sign_checkpoint(checkpoint: Checkpoint, name: str, private_key: Ed25519PrivateKey) -> str:
    """The checkpoint as a note signed by the log's key (whose name should be the origin)."""
    return sign_note(checkpoint.text(), name, private_key)


def open_checkpoint(
    note: str | bytes, verifiers: Iterable[Verifier], *, origin: str | None = None
) -> Checkpoint:
    """The checkpoint in ``note``, once a log key in ``verifiers`` is found to have signed it.

    ``verifiers`` are the log's keys (type 0x01): cosignatures are checked with
    :func:`verify_cosignature`, so a witness alone can never vouch for a tree head. Give
    ``origin`` to also require the checkpoint to come from that log.
    """
    log_keys = list(verifiers)
    if any(v.signature_type != ED25519 for v in log_keys):
        raise ValueError("checkpoint verifiers are log keys; check cosignatures separately")
    text, _ = open_note(note, log_keys)
    checkpoint = parse_checkpoint(text)
    if origin is not None and checkpoint.origin != origin:
        raise InvalidProof(f"checkpoint is from {checkpoint.origin!r}, not {origin!r}")
    return checkpoint


# --- cosignatures ----------------------------------------------------------------------------


def cosign(
    checkpoint_note: str | bytes,
    witness_name: str,
    witness_private_key: Ed25519PrivateKey,
    time: int,
) -> str:
    """The cosignature/v1 line (ending in a newline) to append to ``checkpoint_note``.

    It signs ``cosignature/v1``, ``time <time>`` and the checkpoint text, extension lines
    included. It does not check the log's signature, nor consistency with what the witness
    saw before: the witness does both before it calls this.
    """
    if isinstance(time, bool) or not isinstance(time, int) or not 0 <= time <= MAX_TIMESTAMP:
        raise ValueError("a cosignature time is POSIX seconds from 0 to 2^63 - 1")
    _check_name(witness_name)
    text, _ = _split_note(checkpoint_note)
    parse_checkpoint(text)
    public_key = witness_private_key.public_key().public_bytes_raw()
    identity = key_id(witness_name, COSIGNATURE_V1, public_key)
    signature = witness_private_key.sign(_cosigned_message(time, text))
    return _signature_line(witness_name, identity + time.to_bytes(8, "big") + signature)


def verify_cosignature(checkpoint_note: str | bytes, witness: Verifier) -> int:
    """Check the witness's cosignature on the checkpoint; return its timestamp.

    Raises :class:`InvalidProof` when the witness's line is missing or does not verify. The
    log's own signature is :func:`open_checkpoint`'s business; how old a cosignature may be is
    the caller's policy (the spec lets verifiers refuse timestamps in the future).
    """
    if witness.signature_type != COSIGNATURE_V1:
        raise ValueError("a witness verifier has signature type 0x04 (cosignature/v1)")
    text, signatures = _split_note(checkpoint_note)
    mine = {
        line.signature
        for line in signatures
        if (line.name, line.key_id) == (witness.name, witness.key_id)
    }
    if not mine:
        raise InvalidProof(f"checkpoint has no cosignature by {witness.name}")
    if len(mine) > 1:
        raise InvalidProof(f"checkpoint has two different cosignatures by {witness.name}")
    return witness._verify_cosignature(text, mine.pop())


def cosignature_line(checkpoint_note: str | bytes, witness: Verifier) -> str:
    """The witness's signature line on the checkpoint (without its newline), once
    :func:`verify_cosignature` accepts it: what a log stores to show the cosignature later."""
    verify_cosignature(checkpoint_note, witness)
    _, signatures = _split_note(checkpoint_note)
    (mine,) = {
        line.signature
        for line in signatures
        if (line.name, line.key_id) == (witness.name, witness.key_id)
    }
    return _signature_line(witness.name, witness.key_id + mine).rstrip("\n")


def note_text(note: str | bytes) -> str:
    """The signed text of a note (checked against the signed-note grammar, not verified)."""
    return _split_note(note)[0]


def _cosigned_message(time: int, text: str) -> bytes:
    return f"cosignature/v1\ntime {time}\n{text}".encode()


# --- small checks ----------------------------------------------------------------------------


def _signature_line(name: str, raw: bytes) -> str:
    return f"{_SIGNATURE_PREFIX}{name} {base64.b64encode(raw).decode()}\n"


def _raw_public_key(public_key: Ed25519PublicKey | bytes) -> bytes:
    if isinstance(public_key, Ed25519PublicKey):
        return public_key.public_bytes_raw()
    return public_key


def _b64decode(text: str) -> bytes | None:
    """Standard base64, canonical only (one encoding per value), or None."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode() == text else None


def _has_control_character(text: str) -> bool:
    return any(char < " " and char != "\n" for char in text)


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _valid_name(name) or _has_control_character(name):
        raise ValueError(f"key name {name!r} is empty or has a space, plus or control character")


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise ValueError("note text must end in a newline")
    if _has_control_character(text):
        raise ValueError("note text contains a control character other than newline")
    try:
        size = len(text.encode())
    except UnicodeError:
        raise ValueError("note text is not valid Unicode") from None
    if size > MAX_NOTE_SIZE // 2:
        raise ValueError(f"note text is larger than {MAX_NOTE_SIZE // 2} bytes")
