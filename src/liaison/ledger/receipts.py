"""Receipts: what a partner keeps to hold the node to its ledger.

A receipt is a signed checkpoint of the node's log and, for each ledger entry that records a
copy delivered to the partner, the entry and its RFC 9162 inclusion proof in that checkpoint's
tree. The partner checks it with :func:`verify_receipt` against the node's verifier key and
the bytes it received; a node that later drops or rewrites the entry cannot produce a tree
consistent with the checkpoint the partner holds (see ``ledger/audit.py``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from liaison.errors import InvalidProof, NotFound
from liaison.ledger import log, merkle
from liaison.ledger.note import Checkpoint, Verifier, open_checkpoint
from liaison.store.schema import ledger_entries

MAX_ENTRIES = 100
# The response header by which a TAXII page names the ledger entries of its copies, for the
# partner to ask a receipt of (taxii/routes.py sets it; taxii/sync.py reads it).
LEDGER_ENTRIES_HEADER = "X-Liaison-Ledger-Entries"


def receipt(
    connection: sa.Connection, partner: str, seqs: Sequence[int], signed: log.SignedCheckpoint
) -> dict[str, Any]:
    """The receipt of ``partner``'s entries ``seqs`` in the tree of ``signed``. An entry that
    is not the partner's, or not in that tree, is NotFound, the same as one that does not
    exist: a partner learns nothing of the others' disclosures."""
    size = signed.checkpoint.size
    wanted = sorted(set(seqs))
    if len(wanted) > MAX_ENTRIES:
        raise NotFound(f"at most {MAX_ENTRIES} entries per receipt")
    # Outside the tree before any query: a number beyond the database's integers is no entry.
    beyond = [seq for seq in wanted if not 0 <= seq < size]
    if beyond:
        raise NotFound(f"no ledger entry {beyond[0]} for you in the tree of size {size}")
    rows = {
        seq: body
        for seq, body in connection.execute(
            sa.select(ledger_entries.c.seq, ledger_entries.c.body).where(
                ledger_entries.c.seq.in_(wanted), ledger_entries.c.partner == partner
            )
        )
    }
    missing = [seq for seq in wanted if seq not in rows or seq >= size]
    if missing:
        raise NotFound(f"no ledger entry {missing[0]} for you in the tree of size {size}")
    return {
        "checkpoint": signed.note,
        "tree_size": size,
        "entries": [
            {
                "seq": seq,
                "entry": rows[seq],
                "inclusion_proof": [_b64(h) for h in log.inclusion_proof(connection, seq, size)],
            }
            for seq in wanted
        ],
    }


def verify_receipt(
    document: Mapping[str, Any],
    node: Verifier,
    delivered: Mapping[str, bytes] | None = None,
) -> Checkpoint:
    """Check a receipt: the checkpoint is signed by ``node``; each entry is in its tree; and,
    when ``delivered`` maps object ids to the exact bytes received, each disclosure entry
    hashes those bytes. The verified checkpoint, to keep for the next audit. Raises
    InvalidProof on any failure."""
    try:
        signed = open_checkpoint(document["checkpoint"], [node], origin=node.name)
        items = list(document["entries"])
    except (KeyError, TypeError) as error:
        raise InvalidProof(f"not a receipt: {error}") from None
    if document.get("tree_size") != signed.size:
        raise InvalidProof("the receipt's tree size is not its checkpoint's")
    for item in items:
        try:
            seq, body, proof = item["seq"], item["entry"], item["inclusion_proof"]
            hashes = [base64.b64decode(h, validate=True) for h in proof]
            content = json.loads(body)
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidProof(f"a receipt entry is malformed: {error}") from None
        if content.get("seq") != seq:
            raise InvalidProof(f"receipt entry {seq} names another place in the log")
        merkle.verify_inclusion(
            merkle.leaf_hash(body.encode()), seq, signed.size, hashes, signed.root
        )
        if delivered is not None and content.get("kind") == "disclosure":
            received = delivered.get(content.get("object_id", ""))
            if received is not None and hashlib.sha256(received).hexdigest() != content.get(
                "sha256"
            ):
                raise InvalidProof(f"entry {seq} records other bytes than those received")
    return signed


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()
