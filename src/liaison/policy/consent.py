"""Consents: an originator's signed permission for one recipient to pass its objects on.

A consent is a STIX object of the Liaison type ``liaison-consent`` (a new SDO under the
extension-definition ``CONSENT_EXTENSION``; schema ``stix/schemas/liaison-consent.json``).
The originator's node makes it (``liaison consent grant``), signs every copy of it as it signs
everything it originated (``stix.signature``), and revokes it with a new version whose
``revoked`` is true. It names:

- ``recipient``: the partner that may pass the objects on (a country code);
- ``onward``: to whom (partners' codes, communities' names);
- the scope: ``object_refs`` (those objects, every version) or ``scope_marking_refs``
  (everything of the originator carrying all those markings: a release class of its own);
- ``valid_until``: the last moment it holds (none: until revoked).

Where it counts:

- **On the recipient's node** it enters the release class of each object it covers
  (``ClassKey.consents``), and the third-party rule (``policy.decide``) releases the object
  to the partners it names, with the consent's id in the reason; expired, revoked or
  out-of-scope, it releases nothing. A consent that arrives or is revoked re-classes the
  originator's objects (:func:`apply_consents`); a version a consent newly covers counts as
  added at that moment, so that peers' cursors reach it.
- **On the onward partner's node**, an object the recipient relays is accepted only with
  its originator's valid signature and a consent of that originator letting the relayer
  pass it to this node (:func:`relay_claims`).

docs/consent.md describes the protocol and its threat model.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from liaison.alliance import communities_of
from liaison.errors import InputError, NotFound, UnknownPartner
from liaison.ledger.log import Entry, append
from liaison.markings.handling import marking_definition
from liaison.policy.classes import ClassKey, ConsentTerms
from liaison.policy.grants import record_change, register_classes
from liaison.stix.consent import (
    CONSENT_EXTENSION,
    CONSENT_TYPE,
    REQUEST_EXTENSION,
    REQUEST_TYPE,
    Consent,
    ConsentRequest,
    extension_definition,
    read_consent,
    read_request,
)
from liaison.stix.signature import pinned, verify
from liaison.stix.timestamps import from_micros, now_micros, to_micros
from liaison.store.alliance import identities as agencies
from liaison.store.alliance import public_keys, read_communities, read_partners
from liaison.store.objects import VersionKey, add_objects, version_of
from liaison.store.ownership import Claim
from liaison.store.schema import clock, node, objects, release_classes

# Types an originator's signature alone lets a relayer pass on: they are needed to read, or
# to accept, the rest (its identity, its marking definitions, its consents).
_CARRIED = ("identity", "marking-definition", CONSENT_TYPE)


# --- the originator's side ---------------------------------------------------------------------


def grant(
    connection: sa.Connection,
    object_id: str,
    recipient: str,
    onward: Sequence[str],
    until: date | None = None,
    by_markings: bool = False,
    request: str | None = None,
    refused: bool = False,
) -> Consent:
    """Consent, as this node, that ``recipient`` may pass ``object_id`` (every version; with
    ``by_markings``, everything of this node carrying all its markings) on to ``onward``
    until the end of ``until``, answering the consent request ``request`` if given; with
    ``refused``, the answer is no (a consent revoked from its first version). A ledger entry
    records it."""
    country, identity = connection.execute(sa.select(node.c.country, node.c.identity_id)).one()
    row = connection.execute(
        sa.select(objects.c.owner, objects.c.body).where(
            objects.c.id == object_id, objects.c.latest.is_(True)
        )
    ).first()
    if row is None:
        raise NotFound(f"no object {object_id} in the store")
    if row.owner != country:
        raise InputError(f"{object_id} is {row.owner}'s: only its originator consents")
    names = _named(connection, [recipient], onward, "consent")
    if until is not None and until < date.today():
        raise InputError(f"--until {until} is in the past")
    body = json.loads(row.body)
    scope: dict[str, Any] = {"object_refs": [object_id]}
    if by_markings:
        markings = sorted(body.get("object_marking_refs") or [])
        if not markings:
            raise InputError(f"{object_id} carries no markings to consent by (drop --by-markings)")
        scope = {"scope_marking_refs": markings}
    # The consent itself goes to the recipient and on to whom it names, nobody else.
    audience = marking_definition(identity, releasable_to=sorted({country, recipient, *names}))
    stamp = from_micros(now_micros())
    consent: dict[str, Any] = {
        "type": CONSENT_TYPE,
        "spec_version": "2.1",
        "id": f"{CONSENT_TYPE}--{uuid.uuid4()}",
        "created": stamp,
        "modified": stamp,
        "created_by_ref": identity,
        "recipient": recipient,
        "onward": names,
        **scope,
        "object_marking_refs": [audience["id"]],
        "extensions": {CONSENT_EXTENSION: {"extension_type": "new-sdo"}},
    }
    if until is not None:
        consent["valid_until"] = f"{until.isoformat()}T23:59:59.999Z"
    if request is not None:
        consent["answers_request"] = request
    if refused:
        consent["revoked"] = True
    # The type's definition too, for recipients that are not Liaison nodes.
    _store(connection, [extension_definition(identity), audience, consent])
    read = read_consent(consent)
    action = "refuse" if refused else "grant"
    append(connection, [Entry("consent", {"action": action, **read.as_json(country)})])
    return read


def answer(connection: sa.Connection, request_id: str, *, refused: bool = False) -> Consent:
    """Answer a consent request about one of this node's objects: the consent it asks for,
    or (``refused``) a refusal naming it."""
    country = connection.execute(sa.select(node.c.country)).scalar_one()
    found = next((r for r in consent_requests(connection) if r.request.id == request_id), None)
    if found is None:
        raise NotFound(f"no consent request {request_id} in the store")
    if found.request.originator != country:
        raise InputError(f"{request_id} asks {found.request.originator}, not this node")
    if found.state != "open":
        raise InputError(f"{request_id} is already answered ({found.state})")
    asked = found.request
    return grant(
        connection,
        asked.object_id,
        asked.recipient,
        asked.onward,
        request=asked.id,
        refused=refused,
    )


def ask(
    connection: sa.Connection,
    object_id: str,
    onward: Sequence[str],
    recipient: str | None = None,
    originator: str | None = None,
    reason: str = "",
) -> ConsentRequest:
    """Ask, as this node, the originator of ``object_id`` to consent that ``recipient``
    (default: this node) pass it on to ``onward``. The request goes to the originator (and
    the recipient) with the next sync; a ledger entry records it."""
    country, identity = connection.execute(sa.select(node.c.country, node.c.identity_id)).one()
    owner = connection.execute(
        sa.select(objects.c.owner).where(objects.c.id == object_id).limit(1)
    ).scalar_one_or_none()
    origin = owner or originator
    if origin is None:
        raise NotFound(f"no object {object_id} in the store: name its --originator")
    if originator is not None and owner is not None and originator != owner:
        raise InputError(f"{object_id} is {owner}'s, not {originator}'s")
    if origin == country:
        raise InputError(f"{object_id} is this node's own: nobody else consents to it")
    parties = [code for code in (origin, recipient or country) if code != country]
    names = _named(connection, parties, onward, "request", also=country)
    audience = marking_definition(identity, releasable_to=sorted({origin, recipient or country}))
    stamp = from_micros(now_micros())
    body: dict[str, Any] = {
        "type": REQUEST_TYPE,
        "spec_version": "2.1",
        "id": f"{REQUEST_TYPE}--{uuid.uuid4()}",
        "created": stamp,
        "modified": stamp,
        "created_by_ref": identity,
        "object_ref": object_id,
        "originator": origin,
        "recipient": recipient or country,
        "onward": names,
        **({"description": reason} if reason else {}),
        "object_marking_refs": [audience["id"]],
        "extensions": {REQUEST_EXTENSION: {"extension_type": "new-sdo"}},
    }
    _store(connection, [audience, body])
    asked = read_request(body)
    entry = {"action": "request", "request": asked.id, "object": object_id, "originator": origin}
    append(connection, [Entry("consent", {**entry, "onward": names})])
    return asked


@dataclass(frozen=True)
class Asked:
    """A consent request in the store, with who made it and how it was answered."""

    request: ConsentRequest
    requester: str  # country code
    state: str  # "open", "granted" or "refused"
    answer: str | None  # the consent that answered it

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.request.id,
            "requester": self.requester,
            "object": self.request.object_id,
            "originator": self.request.originator,
            "recipient": self.request.recipient,
            "onward": list(self.request.onward),
            "reason": self.request.reason,
            "created": self.request.created,
            "state": self.state,
            "answer": self.answer,
        }


def consent_requests(connection: sa.Connection) -> list[Asked]:
    """Every consent request in the store, oldest first, with its answer if one is here."""
    identities = agencies(connection)
    answers = {h.consent.request: h for h in consents(connection) if h.consent.request is not None}
    found = []
    rows = connection.execute(
        sa.select(objects.c.body, objects.c.owner)
        .where(objects.c.type == REQUEST_TYPE, objects.c.latest.is_(True))
        .order_by(objects.c.date_added)
    )
    for body, owner in rows:
        try:
            asked = read_request(json.loads(body))
        except ValueError:
            continue
        if identities.get(asked.requester) != owner:
            continue
        reply = answers.get(asked.id)
        state = "open"
        if reply is not None and reply.owner == asked.originator:
            state = "refused" if reply.consent.refused else "granted"
        found.append(Asked(asked, owner, state, reply.consent.id if state != "open" else None))
    return found


def revoke(connection: sa.Connection, consent_id: str) -> Consent:
    """Revoke a consent this node gave: a new version, ``revoked``, goes where it went."""
    country = connection.execute(sa.select(node.c.country)).scalar_one()
    row = connection.execute(
        sa.select(objects.c.owner, objects.c.body).where(
            objects.c.id == consent_id, objects.c.latest.is_(True)
        )
    ).first()
    if row is None or json.loads(row.body).get("type") != CONSENT_TYPE:
        raise NotFound(f"no consent {consent_id} in the store")
    if row.owner != country:
        raise InputError(f"{consent_id} is {row.owner}'s consent: only its originator revokes it")
    body = json.loads(row.body)
    if body.get("revoked") is True:
        raise InputError(f"{consent_id} is already revoked")
    # Strictly later than the version it replaces, whatever the clock says.
    stamp = from_micros(max(now_micros(), to_micros(body["modified"]) + 1000))
    revoked = {**body, "modified": stamp, "revoked": True}
    _store(connection, [revoked])
    read = read_consent(revoked)
    append(connection, [Entry("consent", {"action": "revoke", **read.as_json(country)})])
    return read


def _named(
    connection: sa.Connection,
    partners: Sequence[str],
    onward: Sequence[str],
    what: str,
    also: str | None = None,
) -> list[str]:
    """``onward``, sorted, once each, after checking that ``partners`` are known partners
    and each onward name a partner, a community or ``also``."""
    known = {p.country for p in read_partners(connection)}
    communities = {c.name for c in read_communities(connection)}
    for code in partners:
        if code not in known:
            raise UnknownPartner(f"{code} is not a known partner")
    names = sorted(set(onward))
    unknown = [n for n in names if n not in known and n not in communities and n != also]
    if unknown:
        raise UnknownPartner(f"{unknown[0]} is neither a known partner nor a community")
    if not names:
        raise InputError(f"a {what} names at least one onward recipient (--onward)")
    return names


def _store(connection: sa.Connection, batch: list[dict[str, Any]]) -> None:
    added = add_objects(connection, batch)
    refused = [added.messages.get(i) for i, o in enumerate(added.outcomes) if o == "refused"]
    if refused:
        raise InputError(f"the consent could not be stored: {refused[0]}")
    register_classes(connection, added.classes)


@dataclass(frozen=True)
class Held:
    """A consent in the store, with the agency that owns it."""

    consent: Consent
    owner: str


def consents(connection: sa.Connection) -> list[Held]:
    """Every consent in the store, latest versions, oldest first: those this node gave and
    those given to it or relayed to it. Only versions whose ``created_by_ref`` is their
    owner's identity count; the write path refused the others."""
    identities = agencies(connection)
    rows = connection.execute(
        sa.select(objects.c.body, objects.c.owner)
        .where(objects.c.type == CONSENT_TYPE, objects.c.latest.is_(True))
        .order_by(objects.c.date_added)
    )
    found = []
    for body, owner in rows:
        try:
            consent = read_consent(json.loads(body))
        except ValueError:
            continue
        if identities.get(consent.originator) == owner:
            found.append(Held(consent, owner))
    return found


# --- the recipient's side: consents in the release classes -------------------------------------


def terms_for(
    held: Iterable[Held], obj: Mapping[str, Any], owner: str, node_country: str
) -> tuple[ConsentTerms, ...]:
    """The terms of the consents that let this node pass on ``obj`` (owned by ``owner``)."""
    return tuple(
        sorted(
            (
                ConsentTerms(h.consent.id, h.consent.onward, h.consent.last_day)
                for h in held
                if h.owner == owner
                and h.owner != node_country
                and h.consent.recipient == node_country
                and not h.consent.revoked
                and h.consent.covers(obj)
            ),
            key=lambda t: t.id,
        )
    )


def apply_consents(connection: sa.Connection, added: Sequence[VersionKey] = ()) -> int:
    """Put the consents held into the release classes: of every object of an originator
    whose consent is among ``added`` (it arrived, or was revoked), else of the ``added``
    versions of originators that gave this node a consent. The versions whose class changed
    count as added now (so the peers' cursors reach them), their originator's marking
    definitions just before them; how many changed."""
    country = connection.execute(sa.select(node.c.country)).scalar_one()
    held = [h for h in consents(connection) if h.consent.recipient == country]
    added_ids = {k.id for k in added}
    owners = {h.owner for h in held if h.consent.id in added_ids}
    # A revoked consent stays in `held` (its latest version), so its owner counts too.
    givers = {h.owner for h in held} - owners
    query = sa.select(
        objects.c.id,
        objects.c.version,
        objects.c.owner,
        objects.c.body,
        objects.c.release_class,
        objects.c.date_added,
    ).where(objects.c.type != CONSENT_TYPE)
    rows: list[sa.Row] = []
    if owners:
        rows += connection.execute(query.where(objects.c.owner.in_(sorted(owners)))).all()
    ids = sorted(added_ids)
    for start in range(0, len(ids) if givers else 0, 500):
        rows += connection.execute(
            query.where(objects.c.id.in_(ids[start : start + 500]), objects.c.owner.in_(givers))
        ).all()
    moved = _reclass(connection, rows, held, country)
    if moved and owners:
        # The originator's consents changed what this node may pass on: a policy change.
        changed = sorted(h.consent.id for h in held if h.consent.id in added_ids)
        record_change(connection, "consent", {"consents": changed, "versions": moved})
    return moved


def _reclass(connection: sa.Connection, rows: list[sa.Row], held: list[Held], country: str) -> int:
    keys = dict(
        connection.execute(
            sa.select(release_classes.c.id, release_classes.c.key).where(
                release_classes.c.id.in_(sorted({r.release_class for r in rows}))
            )
        ).all()
    )
    new_keys: dict[str, ClassKey] = {}
    moved: list[tuple[sa.Row, ClassKey]] = []
    for row in rows:
        current = ClassKey.from_canonical(keys[row.release_class])
        body = json.loads(row.body)
        terms = terms_for(held, body, row.owner, country)
        if terms == current.consents:
            continue
        key = dataclasses.replace(current, consents=terms)
        new_keys.setdefault(key.id, key)
        moved.append((row, key))
    if not moved:
        return 0
    register_classes(connection, new_keys)
    _readd(connection, moved)
    return len(moved)


def _readd(connection: sa.Connection, moved: list[tuple[sa.Row, ClassKey]]) -> None:
    """Give each moved version its new class and a new ``date_added``, the marking
    definitions of the same owner its class names first."""
    last = connection.execute(
        sa.select(clock.c.last_added).where(clock.c.id == 1).with_for_update()
    ).scalar_one()
    stamp = max(now_micros(), last + 1)
    refs = {m for _, key in moved for m in (*key.markings, *(ref for ref, _ in key.granular))}
    definitions = connection.execute(
        sa.select(objects.c.id, objects.c.version).where(
            objects.c.id.in_(sorted(refs)),
            objects.c.owner.in_(sorted({row.owner for row, _ in moved})),
        )
    ).all()
    ordered = sorted(moved, key=lambda m: m[0].date_added)
    rows = [
        {"oid": oid, "ver": version, "cls": None, "added": stamp + i}
        for i, (oid, version) in enumerate(definitions)
    ] + [
        {"oid": row.id, "ver": row.version, "cls": key.id, "added": stamp + len(definitions) + i}
        for i, (row, key) in enumerate(ordered)
    ]
    connection.execute(
        objects.update()
        .where(objects.c.id == sa.bindparam("oid"), objects.c.version == sa.bindparam("ver"))
        .values(
            # A definition keeps its class; a moved version takes its new one.
            release_class=sa.func.coalesce(sa.bindparam("cls"), objects.c.release_class),
            date_added=sa.bindparam("added"),
        ),
        rows,
    )
    connection.execute(clock.update().where(clock.c.id == 1).values(last_added=rows[-1]["added"]))


# --- the onward partner's side: what a relayer may pass on -------------------------------------


def relay_claims(
    connection: sa.Connection, batch: Sequence[Mapping[str, Any]], submitter: str | None
) -> dict[tuple[str, int], Claim]:
    """By (id, version), the owner of each object of ``batch`` that ``submitter`` relays
    from another originator, or why it is refused; and the refusal of a consent of
    ``submitter``'s own that does not carry its valid signature. Others are judged by
    ``store.ownership`` alone.

    ``submitter`` None is the node's operator: only the consents' signatures are checked.
    A relayed object is accepted, owned by its originator, when it carries the originator's
    valid signature and is a marking definition or a consent, or when a consent of that
    originator (stored, or in ``batch``, signed, in force) lets ``submitter`` pass it on to
    this node or a community this node belongs to."""
    country = connection.execute(sa.select(node.c.country)).scalar_one()
    identities = agencies(connection)
    # The keys only when something must be verified: most writes are the writer's own.
    keys: dict[str, Any] = {}
    today = datetime.now(UTC)
    claims: dict[tuple[str, int], Claim] = {}
    checked: list[Held] = []
    relayed: list[tuple[tuple[str, int], Mapping[str, Any], str]] = []
    for obj in batch:
        creator = obj.get("created_by_ref")
        if obj.get("type") == "identity" and creator is None:
            creator = obj.get("id")  # an agency's identity is its own
        origin = identities.get(creator) if isinstance(creator, str) else None
        key = (str(obj.get("id")), version_of(dict(obj)))
        if origin is None or origin == country:
            continue  # the ownership rules judge it
        # The operator imports a partner's objects as that partner's (store.ownership).
        own = origin == submitter or submitter is None
        if not own or obj.get("type") == CONSENT_TYPE:
            keys = keys or pinned(public_keys(connection))
            verdict = verify(obj, keys)
            if not verdict.verified:
                claims[key] = Claim(None, _refusal(origin, submitter, own, verdict.reason))
                continue
        if obj.get("type") == CONSENT_TYPE:
            try:
                checked.append(Held(read_consent(obj), origin))
            except ValueError as exc:
                claims[key] = Claim(None, f"is a consent that {exc}")
                continue
        if own:
            continue
        if obj.get("type") in _CARRIED:
            claims[key] = Claim(origin)
        else:
            relayed.append((key, obj, origin))
    if relayed:
        mine = communities_of(read_communities(connection), country, today.date()) | {country}
        usable = [*(h for h in consents(connection) if h.consent.recipient == submitter), *checked]
        for key, obj, origin in relayed:
            if any(
                h.owner == origin
                and h.consent.recipient == submitter
                and h.consent.state(today) == "active"
                and h.consent.covers(obj)
                and mine & set(h.consent.onward)
                for h in usable
            ):
                claims[key] = Claim(origin)
            else:
                claims[key] = Claim(
                    None,
                    f"is {origin}'s, relayed by {submitter} without a consent of {origin} "
                    f"that lets {submitter} pass it to {country}",
                )
    return claims


def _refusal(origin: str, submitter: str, own: bool, reason: str | None) -> str:
    if own:
        return f"is a consent of {origin} whose signature fails: {reason}"
    return (
        f"names {origin} as its originator, and {reason}: {submitter} may pass on another "
        "agency's object only with that agency's signature and consent"
    )
