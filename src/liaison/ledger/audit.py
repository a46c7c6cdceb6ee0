"""A partner holds a node to its ledger: each audit fetches the node's latest checkpoint,
proves it consistent with the last one this node saw, and keeps it.

A node that rewrote, dropped or reordered anything its partners have already seen cannot
produce the consistency proof, whatever it does to its own store: the old checkpoint, signed
with its key, is in the partner's hands. The partner may then cosign the new checkpoint as a
witness (C2SP tlog-cosignature), so that the node can show others it was checked.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaison.errors import InvalidProof, LedgerTampered, LiaisonError
from liaison.ledger import merkle
from liaison.ledger.note import (
    Checkpoint,
    Verifier,
    cosign,
    note_text,
    open_checkpoint,
    parse_checkpoint,
)
from liaison.stix.timestamps import now_micros
from liaison.store.schema import peer_checkpoints

LEDGER_PATH = "ledger"


@dataclass(frozen=True)
class Audit:
    origin: str
    previous: int | None  # the size of the checkpoint it was proved consistent with
    checkpoint: Checkpoint
    note: str
    cosigned: bool


@dataclass(frozen=True)
class Witness:
    """This node's identity as a witness: the name and key it cosigns with."""

    name: str
    key: Ed25519PrivateKey


def last_seen(connection: sa.Connection, origin: str) -> tuple[Checkpoint, str] | None:
    """The largest checkpoint of ``origin`` this node has checked, and its note."""
    note = connection.execute(
        sa.select(peer_checkpoints.c.note)
        .where(peer_checkpoints.c.origin == origin)
        .order_by(peer_checkpoints.c.size.desc())
        .limit(1)
    ).scalar_one_or_none()
    if note is None:
        return None
    return _checkpoint_in(note), note


def check_and_remember(
    connection: sa.Connection,
    verifier: Verifier,
    note: str,
    prove: Callable[[Checkpoint, Checkpoint], list[bytes]],
) -> tuple[Checkpoint, int | None]:
    """Open ``note`` with the node's key, prove it consistent with the last checkpoint seen
    (``prove(old, new)`` returns the proof hashes), and store it. Raises LedgerTampered when
    the node's log is not an extension of what was seen before."""
    checkpoint = open_checkpoint(note, [verifier], origin=verifier.name)
    seen = last_seen(connection, checkpoint.origin)
    previous = None
    if seen is not None:
        old = seen[0]
        previous = old.size
        if checkpoint.size < old.size:
            raise LedgerTampered(
                f"{checkpoint.origin} now has {checkpoint.size} entries; it had {old.size}"
            )
        if checkpoint.size == old.size:
            if checkpoint.root != old.root:
                raise LedgerTampered(
                    f"{checkpoint.origin} signed two different trees of size {old.size}"
                )
        else:
            try:
                merkle.verify_consistency(
                    old.size, checkpoint.size, old.root, checkpoint.root, prove(old, checkpoint)
                )
            except InvalidProof as error:
                raise LedgerTampered(
                    f"{checkpoint.origin} rewrote its log: the tree of size {checkpoint.size} "
                    f"does not extend the tree of size {old.size} it signed before ({error})"
                ) from None
    if seen is None or checkpoint.size > seen[0].size:
        connection.execute(
            peer_checkpoints.insert().values(
                origin=checkpoint.origin, size=checkpoint.size, note=note, seen=now_micros()
            )
        )
    return checkpoint, previous


def audit(
    connection: sa.Connection,
    client: httpx.Client,
    verifier: Verifier,
    witness: Witness | None = None,
) -> Audit:
    """Audit the node at ``client``'s API root (a client with this node's credentials)."""
    found = _get(client, f"{LEDGER_PATH}/checkpoint/")
    note = found.get("checkpoint")
    if not isinstance(note, str):
        raise InvalidProof("the node's checkpoint response has no checkpoint")

    def prove(old: Checkpoint, new: Checkpoint) -> list[bytes]:
        body = _get(client, f"{LEDGER_PATH}/consistency/", {"first": old.size, "second": new.size})
        try:
            return [base64.b64decode(h, validate=True) for h in body["consistency_proof"]]
        except (KeyError, TypeError, ValueError):
            raise InvalidProof("the node's consistency proof is malformed") from None

    checkpoint, previous = check_and_remember(connection, verifier, note, prove)
    cosigned = False
    if witness is not None:
        line = cosign(note, witness.name, witness.key, int(time.time()))
        response = client.post(
            f"{LEDGER_PATH}/cosignatures/",
            json={"checkpoint": note + line},
            headers={"Content-Type": "application/taxii+json;version=2.1"},
        )
        if response.status_code != 200:
            raise LiaisonError(f"the node refused the cosignature: {_reason(response)}")
        cosigned = True
    return Audit(checkpoint.origin, previous, checkpoint, note, cosigned)


def _get(client: httpx.Client, path: str, params: dict[str, Any] | None = None) -> Any:
    try:
        response = client.get(path, params=params)
    except httpx.HTTPError as error:
        raise LiaisonError(f"cannot reach the node: {error}") from None
    if response.status_code != 200:
        raise LiaisonError(f"GET {path}: {response.status_code} {_reason(response)}")
    try:
        return response.json()
    except ValueError:
        raise InvalidProof(f"GET {path} did not answer JSON") from None


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{body.get('title', '')}: {body.get('description', '')}"
    except ValueError:
        return response.text[:200]


def _checkpoint_in(note: str) -> Checkpoint:
    return parse_checkpoint(note_text(note))
