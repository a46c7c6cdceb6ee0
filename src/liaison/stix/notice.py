"""The onward-disclosure notice: a node tells an originator that it passed the originator's
object on, as STIX carries it (a new SDO under a Liaison extension-definition; schema
``schemas/liaison-onward-notice.json`` beside this module). ``release.onward`` makes and
checks them; docs/consent.md describes the protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NOTICE_TYPE = "liaison-onward-notice"
NOTICE_EXTENSION = "extension-definition--3e9a7b1c-2d4f-4a8e-b6c5-0f1e2d3c4b5a"


@dataclass(frozen=True)
class Notice:
    """One notice, read from its STIX object."""

    id: str
    sender: str  # identity id of the node that passed the object on
    object_id: str
    version: str  # the version passed on (its ``modified``)
    recipient: str  # to whom (a country code)
    consents: tuple[str, ...]  # the consents the sender released it under
    disclosed: str  # when (the sender's disclosure record)
    entry: int  # the sender's ledger entry of that disclosure
    receipt: Mapping[str, Any]  # its inclusion proof in a checkpoint of the sender's log


def read_notice(obj: Mapping[str, Any]) -> Notice:
    """The notice ``obj`` states; ValueError saying what is wrong with it."""
    if obj.get("type") != NOTICE_TYPE:
        raise ValueError(f"is a {obj.get('type')}, not a {NOTICE_TYPE}")
    strings = ("created_by_ref", "object_ref", "object_modified", "recipient", "disclosed")
    for name in strings:
        if not isinstance(obj.get(name), str) or not obj[name]:
            raise ValueError(f"has no {name}")
    consents = obj.get("consent_refs", [])
    if not isinstance(consents, list) or not all(isinstance(c, str) for c in consents):
        raise ValueError("its consent_refs is not a list of ids")
    entry, receipt = obj.get("ledger_entry"), obj.get("receipt")
    if not isinstance(entry, int) or isinstance(entry, bool) or entry < 0:
        raise ValueError("has no ledger_entry")
    if not isinstance(receipt, Mapping):
        raise ValueError("has no receipt")
    return Notice(
        id=str(obj["id"]),
        sender=obj["created_by_ref"],
        object_id=obj["object_ref"],
        version=obj["object_modified"],
        recipient=obj["recipient"],
        consents=tuple(consents),
        disclosed=obj["disclosed"],
        entry=entry,
        receipt=receipt,
    )


def extension_definition(created_by: str) -> dict[str, Any]:
    """The STIX extension-definition of the notice object, for whoever receives one."""
    return {
        "type": "extension-definition",
        "spec_version": "2.1",
        "id": NOTICE_EXTENSION,
        "created_by_ref": created_by,
        "created": "2026-12-07T00:00:00.000Z",
        "modified": "2026-12-07T00:00:00.000Z",
        "name": "Liaison onward-disclosure notice",
        "description": (
            "A node's signed statement to an originator that it passed one version of the "
            "originator's object on to a named recipient, with the ledger entry recording it "
            "and that entry's inclusion proof in a signed checkpoint of the node's log. "
            "Schema: src/liaison/stix/schemas/liaison-onward-notice.json in the Liaison "
            "repository."
        ),
        "schema": "https://liaison.invalid/schemas/liaison-onward-notice-1.0.json",
        "version": "1.0.0",
        "extension_types": ["new-sdo"],
    }
