"""Onward-disclosure notices: when this node passes another originator's object on, it tells
the originator, and the originator checks what it is told and sees the whole chain.

**Sending.** When the release path records the first disclosure of another agency's object
to a third partner (``release.deliver``), it also makes, in the same transaction, a notice for
the originator (``stix.notice``): the object and version, the recipient, the consents it was
released under, the time, and the ledger entry of that disclosure with its inclusion proof in
a checkpoint of this node's log signed now (a receipt, ``ledger.receipts``). The notice is an
object of this node, marked REL TO the originator alone, so it goes to the originator with
the next push or the originator's next read, signed like everything this node originates.

**Receiving.** A notice a partner writes is kept only if it carries that partner's valid
signature and its receipt proves the entry in a checkpoint signed with that partner's pinned
key, and the entry records exactly that disclosure (:func:`notice_claims`).

**The chain.** :func:`onward_chain` lists, for one object this node originated, every
disclosure of it: this node's own (from its ledger) and each one a partner notified, with the
consent of this node that covered it, or none (flagged).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from liaison.alliance import communities_of
from liaison.errors import InvalidProof, NotFound
from liaison.ledger.log import checkpoint, node_verifier
from liaison.ledger.receipts import receipt, verify_receipt
from liaison.markings.handling import marking_definition
from liaison.policy.classes import ClassKey
from liaison.policy.grants import register_classes
from liaison.stix.consent import CONSENT_TYPE, Consent, read_consent
from liaison.stix.ids import derived_id
from liaison.stix.notice import NOTICE_EXTENSION, NOTICE_TYPE, extension_definition, read_notice
from liaison.stix.signature import Signer, pinned, signed_by_originator, verify
from liaison.stix.timestamps import from_micros, now_micros
from liaison.store.alliance import identities as agencies
from liaison.store.alliance import public_keys, read_communities
from liaison.store.objects import add_objects
from liaison.store.ownership import Claim, version_of
from liaison.store.pages import GrantedVersion
from liaison.store.schema import disclosures, node, objects, release_classes

# What a relayer passes on only so that the rest can be read or accepted (the originator's
# identity, its marking definitions, its consents): no notice.
_CARRIERS = ("identity", "marking-definition", "extension-definition", CONSENT_TYPE)


def noticed(version: GrantedVersion, country: str, partner: str) -> bool:
    """Whether passing ``version`` on to ``partner`` calls for a notice to its originator:
    another agency's object (not the partner's own) that came signed by its originator's node
    (a plain TAXII client's object is its owner's to read in the node's ledger), and not a
    definition or a consent."""
    return (
        version.owner not in (country, partner)
        and version.object["type"] not in _CARRIERS
        and signed_by_originator(version.object)
    )


def make_notices(
    writer: sa.Connection,
    signer: Signer,
    country: str,
    partner: str,
    relayed: Sequence[tuple[GrantedVersion, int]],
) -> list[dict[str, Any]]:
    """Notices for the originators of ``relayed`` (each version passed on to ``partner``,
    with the ledger entry of that disclosure), stored in ``writer``'s transaction."""
    if not relayed:
        return []
    signed = checkpoint(writer, country, signer.key)
    today = date.today()
    groups = communities_of(read_communities(writer), partner, today)
    keys = dict(
        writer.execute(
            sa.select(release_classes.c.id, release_classes.c.key).where(
                release_classes.c.id.in_(sorted({v.release_class for v, _ in relayed}))
            )
        ).all()
    )
    at = from_micros(now_micros())
    made: list[dict[str, Any]] = [extension_definition(signer.identity)]
    notices = []
    for version, seq in relayed:
        terms = ClassKey.from_canonical(keys[version.release_class]).consents
        covering = [t.id for t in terms if partner in t.onward or groups & set(t.onward)]
        audience = marking_definition(signer.identity, releasable_to=[version.owner])
        made.append(audience)
        notices.append(
            {
                "type": NOTICE_TYPE,
                "spec_version": "2.1",
                "id": derived_id(NOTICE_TYPE, f"{signer.identity} {seq}"),
                "created": at,
                "modified": at,
                "created_by_ref": signer.identity,
                "object_ref": version.object["id"],
                "object_modified": from_micros(version.version),
                "recipient": partner,
                # STIX allows no empty list: absent when no consent released it.
                **({"consent_refs": covering} if covering else {}),
                "disclosed": at,
                "ledger_entry": seq,
                "receipt": receipt(writer, partner, [seq], signed),
                "object_marking_refs": [audience["id"]],
                "extensions": {NOTICE_EXTENSION: {"extension_type": "new-sdo"}},
            }
        )
    added = add_objects(writer, [*made, *notices])
    register_classes(writer, added.classes)
    return notices


def check_notice(
    obj: Mapping[str, Any],
    keys: Mapping[str, Ed25519PublicKey],
    sender: str,
) -> str | None:
    """Why the notice ``obj``, written by the partner ``sender`` (a country code), cannot be
    believed; None when its signature, its receipt and the entry it proves all hold."""
    try:
        notice = read_notice(obj)
    except ValueError as exc:
        return f"is an onward notice that {exc}"
    verdict = verify(obj, keys)
    if not verdict.verified:
        return f"is an onward notice, and {verdict.reason}"
    key = keys[notice.sender]
    try:
        verify_receipt(notice.receipt, node_verifier(sender, key))
        (item,) = notice.receipt["entries"]
        entry = json.loads(item["entry"])
    except (InvalidProof, KeyError, TypeError, ValueError) as exc:
        return f"is an onward notice whose receipt does not verify: {exc}"
    recorded = (entry.get("kind"), entry.get("seq"), entry.get("partner"))
    what = (entry.get("object_id"), entry.get("version"))
    if recorded != ("disclosure", notice.entry, notice.recipient) or what != (
        notice.object_id,
        notice.version,
    ):
        return "is an onward notice whose ledger entry records another disclosure"
    return None


def notice_claims(
    connection: sa.Connection, batch: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, int], Claim]:
    """The refusal, by (id, version), of each notice of ``batch`` that cannot be believed
    (:func:`check_notice`); the others are judged by ``store.ownership``."""
    found = [obj for obj in batch if obj.get("type") == NOTICE_TYPE]
    if not found:
        return {}
    identities = agencies(connection)
    keys = pinned(public_keys(connection))
    refused = {}
    for obj in found:
        sender = identities.get(obj.get("created_by_ref"))  # type: ignore[arg-type]
        if sender is None:
            continue  # not a partner's: the ownership rules refuse or keep it
        reason = check_notice(obj, keys, sender)
        if reason is not None:
            refused[(str(obj.get("id")), version_of(dict(obj)))] = Claim(None, reason)
    return refused


# --- the originator's view -----------------------------------------------------------------


@dataclass(frozen=True)
class Onward:
    """One disclosure of an object this node originated: by this node, or by a partner that
    notified it."""

    object: str
    version: str
    sender: str  # the country that disclosed it ("from")
    recipient: str  # to whom ("to")
    consent: str | None  # this node's consent that covered it; None: none did
    notified_at: str | None  # when the notice arrived; None for this node's own
    verified: bool
    entry: int  # the sender's ledger entry
    via: str  # "ledger" (this node's own) or "notice"

    @property
    def covered(self) -> bool:
        return self.via == "ledger" or self.consent is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "version": self.version,
            "from": self.sender,
            "to": self.recipient,
            "consent": self.consent,
            "notified_at": self.notified_at,
            "verified": self.verified,
            "entry": self.entry,
            "via": self.via,
            "covered": self.covered,
        }


def onward_chain(connection: sa.Connection, object_id: str) -> list[Onward]:
    """Every disclosure of ``object_id`` (this node's own object) this node knows of, oldest
    first: its own, from its disclosure records, then each notified by a partner."""
    country = connection.execute(sa.select(node.c.country)).scalar_one()
    owner = connection.execute(
        sa.select(objects.c.owner).where(objects.c.id == object_id).limit(1)
    ).scalar_one_or_none()
    if owner is None:
        raise NotFound(f"no object {object_id} in the store")
    if owner != country:
        raise NotFound(f"{object_id} is {owner}'s: `liaison onward` follows this node's own")
    chain = [
        Onward(object_id, from_micros(version), country, partner, None, None, True, entry, "ledger")
        for version, partner, entry in connection.execute(
            sa.select(disclosures.c.version, disclosures.c.partner, disclosures.c.entry)
            .where(disclosures.c.object_id == object_id)
            .order_by(disclosures.c.at, disclosures.c.entry)
        )
    ]
    identities = agencies(connection)
    keys = pinned(public_keys(connection))
    bodies = {
        version: json.loads(body)
        for version, body in connection.execute(
            sa.select(objects.c.version, objects.c.body).where(objects.c.id == object_id)
        )
    }
    given = _consent_history(connection, country)
    communities = read_communities(connection)
    rows = connection.execute(
        sa.select(objects.c.body, objects.c.date_added)
        .where(objects.c.type == NOTICE_TYPE, objects.c.latest.is_(True))
        .order_by(objects.c.date_added)
    )
    for body, date_added in rows:
        obj = json.loads(body)
        if obj.get("object_ref") != object_id:
            continue
        notice = read_notice(obj)
        sender = identities.get(notice.sender, notice.sender)
        verified = check_notice(obj, keys, sender) is None
        when = datetime.fromisoformat(notice.disclosed.replace("Z", "+00:00"))
        target = bodies.get(version_of({"modified": notice.version})) or next(iter(bodies.values()))
        groups = communities_of(communities, notice.recipient, when.date())
        covering = next(
            (
                c.id
                for c in _in_force(given, when)
                if c.recipient == sender
                and (notice.recipient in c.onward or groups & set(c.onward))
                and c.covers(target)
            ),
            None,
        )
        chain.append(
            Onward(
                object_id,
                notice.version,
                sender,
                notice.recipient,
                covering,
                from_micros(date_added),
                verified,
                notice.entry,
                "notice",
            )
        )
    return chain


def _consent_history(connection: sa.Connection, country: str) -> dict[str, list[Consent]]:
    """Every version of each consent this node gave, oldest first."""
    history: dict[str, list[Consent]] = {}
    rows = connection.execute(
        sa.select(objects.c.id, objects.c.body)
        .where(objects.c.type == CONSENT_TYPE, objects.c.owner == country)
        .order_by(objects.c.id, objects.c.version)
    )
    for oid, body in rows:
        try:
            history.setdefault(oid, []).append(read_consent(json.loads(body)))
        except ValueError:
            continue
    return history


def _in_force(history: Mapping[str, list[Consent]], when: datetime) -> list[Consent]:
    """The consents whose version at ``when`` (the latest made by then) held then."""
    found = []
    for versions in history.values():
        made = [
            c for c in versions if datetime.fromisoformat(c.modified.replace("Z", "+00:00")) <= when
        ]
        if made and made[-1].state(when) == "active":
            found.append(made[-1])
    return found
