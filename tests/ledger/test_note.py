"""liaison.ledger.note: C2SP signed notes, checkpoints and cosignatures, against the sumdb/note,
C2SP and transparency-dev/formats vectors, then tampering and malformed input."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from liaison.errors import InvalidProof
from liaison.ledger.note import (
    COSIGNATURE_V1,
    ED25519,
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    Checkpoint,
    Verifier,
    cosign,
    cosigner_key,
    key_id,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
    verifier_key,
    verify_cosignature,
)
from tests.conftest import examples

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
SUMDB: dict[str, Any] = json.loads((VECTORS / "sumdb_note.json").read_text())
C2SP: dict[str, Any] = json.loads((VECTORS / "c2sp_examples.json").read_text())
COSIG: dict[str, Any] = json.loads((VECTORS / "tlog_cosignature.json").read_text())

TEXT = SUMDB["text"]
PETER = parse_verifier_key(SUMDB["peter"]["vkey"])
ENOCH = parse_verifier_key(SUMDB["enoch"]["vkey"])
PETER_LINE = SUMDB["peter"]["signature_line"]
ENOCH_LINE = SUMDB["enoch"]["signature_line"]

LOG_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"test log key").digest())
WITNESS_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"test witness").digest())
ORIGIN = "liaison.example/ledger"
WITNESS = "witness.example/w1"
LOG = Verifier(ORIGIN, LOG_KEY.public_key().public_bytes_raw())
COSIGNER = parse_verifier_key(cosigner_key(WITNESS, WITNESS_KEY.public_key()))
CHECKPOINT = Checkpoint(ORIGIN, 20852163, hashlib.sha256(b"root").digest())


def peter_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(SUMDB["peter"]["private_seed"]))


def text_of(note: str) -> str:
    return note[: note.rindex("\n\n") + 1]


def resign_line(line: str, change: Any) -> str:
    """The signature line with its decoded bytes passed through ``change``."""
    prefix, _, encoded = line.rstrip("\n").rpartition(" ")
    return f"{prefix} {base64.b64encode(change(base64.b64decode(encoded))).decode()}\n"


def flip_last_bit(raw: bytes) -> bytes:
    return raw[:-1] + bytes([raw[-1] ^ 1])


# --- golang.org/x/mod/sumdb/note vectors ---------------------------------------------------------


def test_sign_reproduces_the_sumdb_note() -> None:
    key = peter_key()
    assert sign_note(TEXT, "PeterNeumann", key) == SUMDB["signed_by_peter"]
    assert verifier_key("PeterNeumann", key.public_key()) == SUMDB["peter"]["vkey"]
    assert PETER.key_id.hex() == "c74f20a3"
    assert PETER.vkey == SUMDB["peter"]["vkey"]


def test_open_verifies_known_keys_and_skips_unknown_ones() -> None:
    note = TEXT + "\n" + PETER_LINE + ENOCH_LINE
    assert open_note(note, [PETER]) == (TEXT, ["PeterNeumann"])
    assert open_note(note, [ENOCH]) == (TEXT, ["EnochRoot"])
    assert open_note(note, [PETER, ENOCH, ENOCH]) == (TEXT, ["PeterNeumann", "EnochRoot"])
    assert open_note(note.encode(), [PETER]) == (TEXT, ["PeterNeumann"])
    with pytest.raises(InvalidProof, match="no signature by a known key"):
        open_note(note, [])


def test_repeated_lines_count_once() -> None:
    tampered_enoch = ENOCH_LINE[:60] + "ABCD" + ENOCH_LINE[60:]  # unknown key: not checked
    note = TEXT + "\n" + PETER_LINE + PETER_LINE + ENOCH_LINE + ENOCH_LINE + tampered_enoch
    assert open_note(note, [PETER]) == (TEXT, ["PeterNeumann"])


def test_a_bad_signature_by_a_known_key_rejects_the_note() -> None:
    note = TEXT + "\n" + PETER_LINE[:60] + "ABCD" + PETER_LINE[60:]
    with pytest.raises(InvalidProof, match="PeterNeumann"):
        open_note(note, [PETER])
    flipped = resign_line(PETER_LINE, flip_last_bit)
    with pytest.raises(InvalidProof, match=r"signature by PeterNeumann\+c74f20a3 is invalid"):
        open_note(TEXT + "\n" + flipped + ENOCH_LINE, [PETER, ENOCH])
    with pytest.raises(InvalidProof, match="two different signatures"):
        open_note(TEXT + "\n" + PETER_LINE + flipped, [PETER])


def test_too_many_signatures() -> None:
    with pytest.raises(InvalidProof, match=f"more than {MAX_SIGNATURES} signatures"):
        open_note(TEXT + "\n" + PETER_LINE * (MAX_SIGNATURES + 1), [PETER])
    assert open_note(TEXT + "\n" + PETER_LINE * MAX_SIGNATURES, [PETER])[1] == ["PeterNeumann"]


@pytest.mark.parametrize(
    "note",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_LINE[:-1],
        "\x01" + TEXT + "\n" + PETER_LINE,
        b"\xff" + (TEXT + "\n" + PETER_LINE).encode(),
        TEXT + "\n" + "— Bad Name " + PETER_LINE.split(" ")[-1],
        TEXT + "\n" + PETER_LINE + "Unexpected line.\n",
        # and more of the grammar
        TEXT + "\n" + PETER_LINE.replace("—", "-", 1),
        TEXT + "\n" + PETER_LINE.replace("PeterNeumann", "Peter+Neumann"),
        TEXT + "\n" + PETER_LINE + "\n",
        TEXT.replace("\n", "\r\n") + "\n" + PETER_LINE,
        TEXT.replace(" ", "\t", 1) + "\n" + PETER_LINE,
        TEXT + "\n" + "— PeterNeumann \n",
        TEXT + "\n" + "— PeterNeumann x08g\n",  # fewer than 5 bytes
        TEXT + "\n" + PETER_LINE.replace("AM=", "AN="),  # base64 that is not canonical
        TEXT + "\n" + PETER_LINE.replace("=", ""),  # unpadded base64
        TEXT + "\n" + PETER_LINE.replace(" x08", "  x08"),
        "\n" + PETER_LINE,  # no text: nothing ends in the newline the text needs
    ],
)
def test_malformed_notes_are_rejected(note: str | bytes) -> None:
    with pytest.raises(InvalidProof):
        open_note(note, [PETER])


def test_note_size_is_bounded() -> None:
    big = "x" * MAX_NOTE_SIZE + "\n"
    with pytest.raises(InvalidProof, match="larger than"):
        open_note(big + "\n" + PETER_LINE, [PETER])
    with pytest.raises(InvalidProof, match="larger than"):
        open_note("é" * (MAX_NOTE_SIZE // 2) + "\n\n" + PETER_LINE, [PETER])
    with pytest.raises(ValueError, match="larger than"):
        sign_note(big, "PeterNeumann", peter_key())


def test_vkeys_are_exact() -> None:
    vkey = SUMDB["peter"]["vkey"]
    for bad in SUMDB["bad_vkeys"]:
        with pytest.raises(ValueError):
            parse_verifier_key(bad)
    for start in range(len(vkey)):  # every proper substring, as TestNewVerifier does
        for end in range(start + 1, len(vkey) + 1):
            if (start, end) != (0, len(vkey)):
                with pytest.raises(ValueError):
                    parse_verifier_key(vkey[start:end])
    for position in range(len(vkey)):  # every character bumped
        bumped = vkey[:position] + chr(ord(vkey[position]) + 1) + vkey[position + 1 :]
        with pytest.raises(ValueError):
            parse_verifier_key(bumped)
    with pytest.raises(ValueError, match="lowercase hex"):
        parse_verifier_key(vkey.replace("c74f20a3", "C74F20A3"))


# --- C2SP and transparency-dev/formats vectors --------------------------------------------------


def test_c2sp_signed_note_example() -> None:
    example = C2SP["signed_note"]
    verifier = parse_verifier_key(example["vkey"])
    assert open_note(example["note"], [verifier]) == (
        "This is an example message.\n",
        ["example.com/foo"],
    )


def test_c2sp_checkpoint_example_parses_and_round_trips() -> None:
    example = C2SP["checkpoint"]
    text = text_of(example["note"])
    checkpoint = parse_checkpoint(text)
    assert checkpoint.origin == example["origin"]
    assert checkpoint.size == example["size"]
    assert checkpoint.root == base64.b64decode(example["root_base64"])
    assert checkpoint.extensions == ()
    assert checkpoint.text() == text


def test_c2sp_cosigned_example_skips_signatures_it_cannot_check() -> None:
    note = C2SP["cosigned_checkpoint"]["note"]
    stranger = Verifier("example.com/behind-the-sofa", LOG.public_key)
    with pytest.raises(InvalidProof, match="no signature by a known key"):
        open_checkpoint(note, [stranger])  # well formed; only its key is unknown
    name = C2SP["cosigned_checkpoint"]["witness_name"]
    witness = parse_verifier_key(cosigner_key(name, b"\1" * 32))
    with pytest.raises(InvalidProof, match=r"no cosignature by witness\.example\.com/w1"):
        verify_cosignature(note, witness)


@pytest.mark.parametrize("case", COSIG["valid_vkeys"], ids=lambda case: case["vkey"][:20])
def test_transparency_dev_vkeys(case: dict[str, Any]) -> None:
    verifier = parse_verifier_key(case["vkey"])
    assert verifier.signature_type == case["signature_type"]
    assert verifier.vkey == case["vkey"]
    if verifier.signature_type == COSIGNATURE_V1:
        assert cosigner_key(verifier.name, verifier.public_key) == case["vkey"]
    else:
        assert verifier_key(verifier.name, verifier.public_key) == case["vkey"]


@pytest.mark.parametrize("vkey", COSIG["invalid_vkeys"])
def test_transparency_dev_invalid_vkeys(vkey: str) -> None:
    with pytest.raises(ValueError):
        parse_verifier_key(vkey)


def test_cosignature_signs_exactly_the_spec_message() -> None:
    case = COSIG["constructed"]
    witness_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(case["witness_seed"]))
    checkpoint = parse_checkpoint(case["checkpoint_text"])
    note = sign_checkpoint(checkpoint, checkpoint.origin, LOG_KEY)
    line = cosign(note, case["witness_name"], witness_key, case["time"])
    assert line == case["cosignature_line"]
    assert case["signed_message"] == C2SP["cosigned_checkpoint"]["signed_message"]
    witness = parse_verifier_key(cosigner_key(case["witness_name"], witness_key.public_key()))
    assert witness.public_key.hex() == case["witness_public_key"]
    assert verify_cosignature(note + line, witness) == case["time"]


# --- round trips and tampering -------------------------------------------------------------------

note_texts = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]) | st.just("\n"), max_size=300
).map(lambda text: text + "\n")


@settings(max_examples=examples(100), deadline=None)
@given(note_texts)
def test_sign_and_open_round_trip(text: str) -> None:
    note = sign_note(text, ORIGIN, LOG_KEY)
    note = note + stranger_line(text)
    assert open_note(note, [LOG]) == (text, [ORIGIN])


def stranger_line(text: str) -> str:
    """A signature line by a key nobody trusts, to show it is skipped."""
    other = Ed25519PrivateKey.from_private_bytes(b"\2" * 32)
    return sign_note(text, "stranger.example", other).rpartition("\n\n")[2]


def test_tampered_text_signature_or_key_id_is_rejected() -> None:
    note = sign_note("line one\nline two\n", ORIGIN, LOG_KEY)
    with pytest.raises(InvalidProof, match="is invalid"):
        open_note(note.replace("two", "too"), [LOG])
    text, line = text_of(note), note.rpartition("\n\n")[2]
    with pytest.raises(InvalidProof, match="is invalid"):
        open_note(text + "\n" + resign_line(line, flip_last_bit), [LOG])
    wrong_id = resign_line(line, lambda raw: bytes([raw[0] ^ 1]) + raw[1:])
    with pytest.raises(InvalidProof, match="no signature by a known key"):
        open_note(text + "\n" + wrong_id, [LOG])  # an unknown key ID is someone else's key
    renamed = line.replace(ORIGIN, "other.example/ledger")
    with pytest.raises(InvalidProof, match="no signature by a known key"):
        open_note(text + "\n" + renamed, [LOG])


def test_sign_note_refuses_what_open_note_would_refuse() -> None:
    with pytest.raises(ValueError, match="end in a newline"):
        sign_note("no newline", ORIGIN, LOG_KEY)
    with pytest.raises(ValueError, match="control character"):
        sign_note("tab\there\n", ORIGIN, LOG_KEY)
    with pytest.raises(ValueError, match="key name"):
        sign_note("text\n", "two words", LOG_KEY)
    with pytest.raises(ValueError, match="key name"):
        sign_note("text\n", "a+b", LOG_KEY)
    with pytest.raises(ValueError, match="not valid Unicode"):
        sign_note("\ud800\n", ORIGIN, LOG_KEY)


def test_verifier_refuses_bad_keys() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Verifier(ORIGIN, b"\0" * 31)
    with pytest.raises(ValueError, match="unsupported signature type"):
        Verifier(ORIGIN, b"\0" * 32, 0x02)
    assert key_id(ORIGIN, ED25519, LOG.public_key) == LOG.key_id
    assert key_id(ORIGIN, COSIGNATURE_V1, LOG.public_key) != LOG.key_id


# --- checkpoints ---------------------------------------------------------------------------------

origins = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), min_size=1, max_size=60
)
checkpoints = st.builds(
    Checkpoint,
    origins,
    st.integers(0, 2**64 - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(origins, max_size=3).map(tuple),
)


@settings(max_examples=examples(100), deadline=None)
@given(checkpoints)
def test_checkpoint_round_trip(checkpoint: Checkpoint) -> None:
    assert parse_checkpoint(checkpoint.text()) == checkpoint
    note = sign_checkpoint(checkpoint, ORIGIN, LOG_KEY)
    assert open_checkpoint(note, [LOG]) == checkpoint


ROOT_LINE = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    "text",
    [
        f"log\n7\n{ROOT_LINE}",  # no final newline
        f"log\n7\n{ROOT_LINE}\n\n",  # empty extension line
        "log\n7\n",
        f"\n7\n{ROOT_LINE}\n",
        f"log\n007\n{ROOT_LINE}\n",
        f"log\n+7\n{ROOT_LINE}\n",
        f"log\n 7\n{ROOT_LINE}\n",
        f"log\n-1\n{ROOT_LINE}\n",
        f"log\n7_0\n{ROOT_LINE}\n",
        f"log\n٧\n{ROOT_LINE}\n",  # a digit, but not an ASCII one
        f"log\n{2**64}\n{ROOT_LINE}\n",
        f"log\n7\n{base64.b64encode(bytes(31)).decode()}\n",
        f"log\n7\n{ROOT_LINE.rstrip('=')}\n",
        f"log\n7\n{ROOT_LINE[:-2]}B=\n",  # non-canonical padding bits
        f"log\t1\n7\n{ROOT_LINE}\n",
    ],
)
def test_malformed_checkpoints_are_rejected(text: str) -> None:
    with pytest.raises(InvalidProof):
        parse_checkpoint(text)


def test_checkpoint_fields_are_checked() -> None:
    with pytest.raises(ValueError):
        Checkpoint("", 1, bytes(32))
    with pytest.raises(ValueError):
        Checkpoint("two\nlines", 1, bytes(32))
    with pytest.raises(ValueError):
        Checkpoint(ORIGIN, -1, bytes(32))
    with pytest.raises(ValueError):
        Checkpoint(ORIGIN, 2**64, bytes(32))
    with pytest.raises(ValueError):
        Checkpoint(ORIGIN, 1, bytes(31))
    with pytest.raises(ValueError):
        Checkpoint(ORIGIN, 1, bytes(32), ("",))
    assert Checkpoint(ORIGIN, 0, bytes(32)).text() == f"{ORIGIN}\n0\n{ROOT_LINE}\n"


def test_open_checkpoint_wants_the_log_and_its_origin() -> None:
    note = sign_checkpoint(CHECKPOINT, ORIGIN, LOG_KEY)
    assert open_checkpoint(note, [LOG], origin=ORIGIN) == CHECKPOINT
    with pytest.raises(InvalidProof, match=r"not 'other\.example'"):
        open_checkpoint(note, [LOG], origin="other.example")
    with pytest.raises(ValueError, match="log keys"):
        open_checkpoint(note, [LOG, COSIGNER])
    with pytest.raises(InvalidProof, match="is invalid"):
        open_checkpoint(note.replace("20852163", "20852164"), [LOG])
    not_a_checkpoint = sign_note("just\ntext\n", ORIGIN, LOG_KEY)
    with pytest.raises(InvalidProof, match="three lines"):
        open_checkpoint(not_a_checkpoint, [LOG])


# --- cosignatures --------------------------------------------------------------------------------


def test_cosign_and_verify() -> None:
    note = sign_checkpoint(CHECKPOINT, ORIGIN, LOG_KEY)
    line = cosign(note, WITNESS, WITNESS_KEY, 1_700_000_000)
    assert line.startswith(f"— {WITNESS} ") and line.endswith("\n")
    cosigned = note + line
    assert verify_cosignature(cosigned, COSIGNER) == 1_700_000_000
    assert open_checkpoint(cosigned, [LOG]) == CHECKPOINT  # the witness line is skipped
    assert open_note(cosigned, [LOG, COSIGNER]) == (CHECKPOINT.text(), [ORIGIN, WITNESS])
    assert verify_cosignature(cosigned.encode(), COSIGNER) == 1_700_000_000


def test_cosignature_covers_text_time_and_extensions() -> None:
    checkpoint = Checkpoint(ORIGIN, 5, bytes(32), ("extension",))
    note = sign_checkpoint(checkpoint, ORIGIN, LOG_KEY)
    cosigned = note + cosign(note, WITNESS, WITNESS_KEY, 1_700_000_000)
    for before, after in [("\n5\n", "\n6\n"), ("extension", "extensiom")]:
        with pytest.raises(InvalidProof, match="is invalid"):
            verify_cosignature(cosigned.replace(before, after, 1), COSIGNER)
    text, _, block = cosigned.rpartition("\n\n")
    log_line, witness_line = block.splitlines(keepends=True)

    def later(raw: bytes) -> bytes:
        return raw[:4] + (1_700_000_001).to_bytes(8, "big") + raw[12:]

    with pytest.raises(InvalidProof, match="is invalid"):
        verify_cosignature(text + "\n\n" + log_line + resign_line(witness_line, later), COSIGNER)


def test_cosignature_is_not_a_note_signature_and_back() -> None:
    note = sign_checkpoint(CHECKPOINT, ORIGIN, LOG_KEY)
    cosigned = note + cosign(note, WITNESS, WITNESS_KEY, 1_700_000_000)
    as_note_key = Verifier(WITNESS, COSIGNER.public_key, ED25519)
    with pytest.raises(InvalidProof, match="no signature by a known key"):
        open_note(cosigned, [as_note_key])  # different key ID: the line is not its signature
    plain = sign_note(CHECKPOINT.text(), WITNESS, WITNESS_KEY).rpartition("\n\n")[2]
    with pytest.raises(InvalidProof, match="no cosignature"):
        verify_cosignature(note + plain, COSIGNER)
    with pytest.raises(ValueError, match="0x04"):
        verify_cosignature(cosigned, as_note_key)


def test_missing_duplicate_and_out_of_range_cosignatures() -> None:
    note = sign_checkpoint(CHECKPOINT, ORIGIN, LOG_KEY)
    with pytest.raises(InvalidProof, match="no cosignature by"):
        verify_cosignature(note, COSIGNER)
    first = cosign(note, WITNESS, WITNESS_KEY, 1)
    second = cosign(note, WITNESS, WITNESS_KEY, 2)
    assert verify_cosignature(note + first + first, COSIGNER) == 1
    with pytest.raises(InvalidProof, match="two different cosignatures"):
        verify_cosignature(note + first + second, COSIGNER)
    with pytest.raises(InvalidProof, match="two different signatures"):
        open_note(note + first + second, [LOG, COSIGNER])
    for time in (-1, 2**63, True):
        with pytest.raises(ValueError, match="POSIX seconds"):
            cosign(note, WITNESS, WITNESS_KEY, time)
    # A line claiming time 2^63, signed over that time, is refused all the same.
    message = f"cosignature/v1\ntime {2**63}\n{CHECKPOINT.text()}".encode()
    raw = COSIGNER.key_id + (2**63).to_bytes(8, "big") + WITNESS_KEY.sign(message)
    line = f"— {WITNESS} {base64.b64encode(raw).decode()}\n"
    with pytest.raises(InvalidProof, match="beyond 2"):
        verify_cosignature(note + line, COSIGNER)


def test_cosign_wants_a_checkpoint_note() -> None:
    with pytest.raises(InvalidProof, match="no blank line"):
        cosign(CHECKPOINT.text(), WITNESS, WITNESS_KEY, 1)
    with pytest.raises(InvalidProof, match="three lines"):
        cosign(sign_note("just text\n", ORIGIN, LOG_KEY), WITNESS, WITNESS_KEY, 1)
    with pytest.raises(ValueError, match="key name"):
        cosign(sign_checkpoint(CHECKPOINT, ORIGIN, LOG_KEY), "a b", WITNESS_KEY, 1)
