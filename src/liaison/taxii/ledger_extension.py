"""The ledger extension of the TAXII API (docs/ledger.md): checkpoints, receipts,
consistency proofs, cosignatures."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from liaison.ledger import log, receipts
from liaison.ledger.log import SignedCheckpoint
from liaison.ledger.note import MAX_NOTE_SIZE
from liaison.store.engine import write_transaction
from liaison.taxii.auth import Partner, connection
from liaison.taxii.context import TaxiiContext, context_of
from liaison.taxii.errors import TaxiiError
from liaison.taxii.media import TAXII_MEDIA_TYPE, is_taxii_content
from liaison.taxii.routes import API_ROOT

router = APIRouter()


def current_checkpoint(context: TaxiiContext) -> SignedCheckpoint:
    """The newest signed checkpoint, signed now only if the log has grown since."""
    node = context.node
    with node.engine.connect() as conn:
        latest = log.latest_checkpoint(conn)
        if latest is not None and latest.checkpoint.size == log.tree_size(conn):
            return latest
    with write_transaction(node.engine) as writer:
        return log.checkpoint(writer, node.country, context.signing_key)


@router.get(f"/{API_ROOT}/ledger/checkpoint/")
def get_checkpoint(request: Request, _: Partner) -> dict[str, Any]:
    context = context_of(request)
    signed = current_checkpoint(context)
    return {
        "checkpoint": signed.note,
        "origin": signed.checkpoint.origin,
        "tree_size": signed.checkpoint.size,
        "verifier_key": context.verifier.vkey,
    }


@router.get(f"/{API_ROOT}/ledger/receipts/")
def get_receipt(
    request: Request, code: Partner, entries: Annotated[str, Query(alias="entry")]
) -> dict[str, Any]:
    try:
        seqs = [int(part) for part in entries.split(",") if part.strip()]
    except ValueError:
        raise TaxiiError(400, "Bad request", "entry is a comma-separated list") from None
    if not seqs or len(seqs) > receipts.MAX_ENTRIES:
        raise TaxiiError(400, "Bad request", f"ask for 1 to {receipts.MAX_ENTRIES} entries")
    signed = current_checkpoint(context_of(request))
    with connection(request) as conn:  # opened after the checkpoint: it sees it
        return receipts.receipt(conn, code, seqs, signed)


@router.get(f"/{API_ROOT}/ledger/consistency/")
def get_consistency(
    request: Request,
    _: Partner,
    first: Annotated[int, Query(ge=1)],
    second: Annotated[int, Query(ge=1)],
) -> dict[str, Any]:
    with connection(request) as conn:
        proof = log.consistency_proof(conn, first, second)
    return {
        "first": first,
        "second": second,
        "consistency_proof": [base64.b64encode(h).decode() for h in proof],
    }


@router.post(f"/{API_ROOT}/ledger/cosignatures/")
async def post_cosignature(request: Request, code: Partner) -> dict[str, Any]:
    if not is_taxii_content(request.headers.get("content-type")):
        raise TaxiiError(415, "Unsupported media type", f"send {TAXII_MEDIA_TYPE}")
    data = await request.body()
    if len(data) > MAX_NOTE_SIZE:
        raise TaxiiError(413, "Payload too large", "a cosigned checkpoint is small")
    try:
        note = json.loads(data)["checkpoint"]
        if not isinstance(note, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise TaxiiError(400, "Bad request", 'send {"checkpoint": "<cosigned note>"}') from None
    engine = context_of(request).node.engine

    def store() -> list[str]:
        with write_transaction(engine) as writer:
            return log.add_cosignature(writer, code, note)

    return {"witnesses": await run_in_threadpool(store)}
