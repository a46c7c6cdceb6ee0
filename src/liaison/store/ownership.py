"""Who owns a version a writer submits: the first of the write path's checks.

A partner (over TAXII, or a peer) may send only its own objects: each is owned by the
partner, whatever its ``created_by_ref`` says or omits, and one that names anybody else as
its originator, or that takes the id of an agency's identity, is refused, unless the caller
judged it otherwise (``judged``: another agency's object relayed with that agency's
signature and consent, ``policy.consent.relay_claims``). What the node's
operator imports is owned by the partner its ``created_by_ref`` names (intelligence a partner
gave out of band) or whose identity it is, else by the node. ``objects.add_objects`` then
refuses a version of an id that another agency owns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from liaison.markings.handling import ACS_EXTENSION, LIAISON_EXTENSION
from liaison.markings.tlp import TLP_EXTENSION, TLP_LEVELS
from liaison.stix.consent import CONSENT_EXTENSION, REQUEST_EXTENSION
from liaison.stix.notice import NOTICE_EXTENSION
from liaison.stix.signature import SIGNATURE_EXTENSION
from liaison.stix.timestamps import to_micros
from liaison.store.alliance import identities
from liaison.store.schema import node

# Definitions whose meaning the standards or this product fix: never taken from a partner.
STANDARD = frozenset(
    {
        *TLP_LEVELS,
        TLP_EXTENSION,
        LIAISON_EXTENSION,
        ACS_EXTENSION,
        SIGNATURE_EXTENSION,
        CONSENT_EXTENSION,
        REQUEST_EXTENSION,
        NOTICE_EXTENSION,
    }
)


@dataclass(frozen=True)
class Claim:
    """The owner of one submitted object, or why it is refused (``owner`` is then None)."""

    owner: str | None
    refusal: str | None = None
    # A standard definition a partner sent along (TLP 2.0, the marking extensions): known
    # here, never taken from a partner.
    standard: bool = False


def claims(
    connection: sa.Connection,
    batch: Sequence[dict[str, Any]],
    submitter: str | None,
    judged: Mapping[tuple[str, int], Claim] | None = None,
) -> list[Claim]:
    """The claim of each object of ``batch``, written by ``submitter`` (a partner's code, or
    None for the node's own operator). ``judged`` holds the claims the caller decided by
    (id, version): objects a peer relays from another originator, whose signature and
    consent ``policy.consent.relay_claims`` checks."""
    country = connection.execute(sa.select(node.c.country)).scalar_one()
    agencies = identities(connection)
    if submitter is None:
        return [
            Claim(agencies.get(obj.get("created_by_ref")) or agencies.get(obj["id"], country))
            for obj in batch
        ]
    own = next((i for i, code in agencies.items() if code == submitter), None)
    judged = judged or {}
    return [
        judged.get((obj.get("id"), version_of(obj)))
        or _partner_claim(obj, submitter, own, agencies)
        for obj in batch
    ]


def version_of(obj: dict[str, Any]) -> int:
    """The version key of ``obj``: its ``modified``, else ``created``, else 0 (SCOs)."""
    stamp = obj.get("modified") or obj.get("created")
    return to_micros(stamp) if isinstance(stamp, str) else 0


def _partner_claim(
    obj: dict[str, Any], submitter: str, own: str | None, identities: dict[str, str]
) -> Claim:
    oid, creator = obj.get("id"), obj.get("created_by_ref")
    if oid in STANDARD:
        return Claim(None, standard=True)
    if creator is not None and creator != own:
        who = identities.get(creator, creator) if isinstance(creator, str) else repr(creator)
        return Claim(
            None, f"names {who} as its originator: {submitter} may send only its own objects"
        )
    if oid in identities and identities[oid] != submitter:
        return Claim(None, f"is the identity of {identities[oid]}: only that agency sends it")
    return Claim(submitter)
