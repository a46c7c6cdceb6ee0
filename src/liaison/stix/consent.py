"""The consent object: an originator's permission for one recipient to pass its objects on,
as STIX carries it (a new SDO under a Liaison extension-definition; schema
``schemas/liaison-consent.json`` beside this module), and the request for one (another new
SDO, ``liaison-consent-request``). What a consent does is
``policy.consent``'s; docs/consent.md describes both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

CONSENT_TYPE = "liaison-consent"
CONSENT_EXTENSION = "extension-definition--7c1e2f4a-9b3d-4e6f-8a2c-5d7e9f1b3c64"


@dataclass(frozen=True)
class Consent:
    """One version of a consent, read from its STIX object."""

    id: str
    modified: str
    originator: str  # identity id of the agency that gave it
    recipient: str
    onward: tuple[str, ...]
    objects: tuple[str, ...]
    markings: tuple[str, ...]
    until: datetime | None
    revoked: bool
    marking_refs: tuple[str, ...] = ()  # how the consent itself is marked
    request: str | None = None  # the consent request it answers
    refused: bool = False  # an answer that says no: revoked from its first version

    @property
    def last_day(self) -> date | None:
        return self.until.date() if self.until else None

    def covers(self, obj: Mapping[str, Any]) -> bool:
        """Whether ``obj`` is in this consent's scope (its originator is checked apart)."""
        if obj.get("id") in self.objects:
            return True
        carried = obj.get("object_marking_refs") or []
        return bool(self.markings) and all(m in carried for m in self.markings)

    def state(self, now: datetime) -> str:
        if self.refused:
            return "refused"
        if self.revoked:
            return "revoked"
        if self.until is not None and now > self.until:
            return "expired"
        return "active"

    def as_json(self, owner: str | None = None, now: datetime | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.modified,
            "originator": owner,
            "recipient": self.recipient,
            "onward": list(self.onward),
            "objects": list(self.objects),
            "markings": list(self.markings),
            "until": self.until.isoformat().replace("+00:00", "Z") if self.until else None,
            "state": self.state(now or datetime.now(UTC)),
            "request": self.request,
        }


def read_consent(obj: Mapping[str, Any]) -> Consent:
    """The consent ``obj`` states; ValueError saying what is wrong with it."""
    if obj.get("type") != CONSENT_TYPE:
        raise ValueError(f"is a {obj.get('type')}, not a {CONSENT_TYPE}")

    def codes(name: str) -> tuple[str, ...]:
        value = obj.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"its {name} is not a list of names")
        return tuple(value)

    recipient, originator = obj.get("recipient"), obj.get("created_by_ref")
    if not isinstance(recipient, str) or not recipient:
        raise ValueError("names no recipient")
    if not isinstance(originator, str):
        raise ValueError("names no originator (created_by_ref)")
    onward, scope, markings = codes("onward"), codes("object_refs"), codes("scope_marking_refs")
    if not onward:
        raise ValueError("names no onward recipient")
    if not scope and not markings:
        raise ValueError("has no scope: neither object_refs nor scope_marking_refs")
    until = obj.get("valid_until")
    try:
        end = datetime.fromisoformat(until.replace("Z", "+00:00")) if until else None
    except (AttributeError, ValueError):
        raise ValueError(f"its valid_until {until!r} is not a timestamp") from None
    return Consent(
        id=str(obj["id"]),
        modified=str(obj.get("modified") or obj.get("created")),
        originator=originator,
        recipient=recipient,
        onward=onward,
        objects=scope,
        markings=markings,
        until=end,
        revoked=obj.get("revoked") is True,
        marking_refs=codes("object_marking_refs"),
        request=obj["answers_request"] if isinstance(obj.get("answers_request"), str) else None,
        refused=obj.get("revoked") is True and obj.get("created") == obj.get("modified"),
    )


REQUEST_TYPE = "liaison-consent-request"
REQUEST_EXTENSION = "extension-definition--5b2d8f4e-1c3a-4e7b-9d6f-8a0c2e4b6d13"


@dataclass(frozen=True)
class ConsentRequest:
    """A partner's request that an originator consent to passing its object on."""

    id: str
    requester: str  # identity id of the agency asking
    object_id: str
    originator: str  # the originator's country code: who is asked
    recipient: str  # who would pass the object on
    onward: tuple[str, ...]
    reason: str
    created: str


def read_request(obj: Mapping[str, Any]) -> ConsentRequest:
    """The request ``obj`` states; ValueError saying what is wrong with it."""
    if obj.get("type") != REQUEST_TYPE:
        raise ValueError(f"is a {obj.get('type')}, not a {REQUEST_TYPE}")
    for name in ("created_by_ref", "object_ref", "originator", "recipient"):
        if not isinstance(obj.get(name), str) or not obj[name]:
            raise ValueError(f"has no {name}")
    onward = obj.get("onward")
    if not isinstance(onward, list) or not onward or not all(isinstance(o, str) for o in onward):
        raise ValueError("names no onward recipient")
    return ConsentRequest(
        id=str(obj["id"]),
        requester=obj["created_by_ref"],
        object_id=obj["object_ref"],
        originator=obj["originator"],
        recipient=obj["recipient"],
        onward=tuple(onward),
        reason=str(obj.get("description", "")),
        created=str(obj.get("created")),
    )


def extension_definition(created_by: str) -> dict[str, Any]:
    """The STIX extension-definition of the consent object, for whoever receives one."""
    return {
        "type": "extension-definition",
        "spec_version": "2.1",
        "id": CONSENT_EXTENSION,
        "created_by_ref": created_by,
        "created": "2026-12-07T00:00:00.000Z",
        "modified": "2026-12-07T00:00:00.000Z",
        "name": "Liaison consent",
        "description": (
            "An originator's permission for a named recipient to pass named objects, or "
            "everything under named markings, on to named partners until a date. Schema: "
            "src/liaison/stix/schemas/liaison-consent.json in the Liaison repository."
        ),
        "schema": "https://liaison.invalid/schemas/liaison-consent-1.0.json",
        "version": "1.0.0",
        "extension_types": ["new-sdo"],
    }
