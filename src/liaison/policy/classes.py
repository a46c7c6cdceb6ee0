"""Release classes: objects that share markings, granular markings, owner, originator and
the originator's consents are decided together. A class id is the SHA-256 of its canonical
key, so it can be computed from a stored version (its object, owner and the consents held
for it) and rebuilt at any time."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class ConsentTerms:
    """What the release decision reads of one consent the originator gave this node
    (``policy.consent``): whom it lets the node pass the class's objects on to, until when."""

    id: str
    onward: tuple[str, ...]  # partners' codes and communities' names
    until: date | None = None  # the last day it holds; None: no end

    def as_json(self) -> list[Any]:
        return [self.id, list(self.onward), self.until.isoformat() if self.until else None]

    @classmethod
    def from_json(cls, data: list[Any]) -> ConsentTerms:
        until = date.fromisoformat(data[2]) if data[2] else None
        return cls(data[0], tuple(data[1]), until)


@dataclass(frozen=True)
class ClassKey:
    markings: tuple[str, ...]
    granular: tuple[tuple[str, tuple[str, ...]], ...]
    originator: str | None
    consents: tuple[ConsentTerms, ...] = ()
    # Definitions are released to every partner whatever they carry; they form their own class.
    definition: bool = False
    # Only with granular markings: whether a cut field is required depends on the type.
    type: str | None = None
    # The agency that owns the version (a country code): the originator when the object
    # names none, and whose marking definitions the policy reads for it.
    owner: str | None = None
    # Partners an officer withdrew this version from (`liaison withdraw`).
    withdrawn: tuple[str, ...] = ()

    def canonical(self) -> str:
        return json.dumps(
            {
                "markings": list(self.markings),
                "granular": [[ref, list(selectors)] for ref, selectors in self.granular],
                "originator": self.originator,
                "consents": [c.as_json() for c in self.consents],
                "definition": self.definition,
                "type": self.type,
                "owner": self.owner,
                "withdrawn": list(self.withdrawn),
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @cached_property
    def id(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()

    @classmethod
    def from_canonical(cls, text: str) -> ClassKey:
        data = json.loads(text)
        return cls(
            markings=tuple(data["markings"]),
            granular=tuple((ref, tuple(sel)) for ref, sel in data["granular"]),
            originator=data["originator"],
            consents=tuple(ConsentTerms.from_json(c) for c in data["consents"]),
            definition=data["definition"],
            type=data["type"],
            owner=data.get("owner"),
            withdrawn=tuple(data.get("withdrawn", ())),
        )


def class_key(
    obj: dict[str, Any],
    owner: str | None,
    consents: tuple[ConsentTerms, ...] = (),
    withdrawn: tuple[str, ...] = (),
) -> ClassKey:
    """The release class of one object version owned by ``owner``."""
    refs = obj.get("object_marking_refs") or []
    granular: dict[str, set[str]] = {}
    for entry in obj.get("granular_markings") or []:
        if not isinstance(entry, dict):
            continue
        # A granular marking by language tag (no marking_ref) restricts nothing.
        ref = entry.get("marking_ref")
        if isinstance(ref, str):
            granular.setdefault(ref, set()).update(
                s for s in entry.get("selectors", []) if isinstance(s, str)
            )
    originator = obj.get("created_by_ref")
    kind = obj.get("type")
    return ClassKey(
        markings=tuple(sorted({r for r in refs if isinstance(r, str)})),
        granular=tuple(sorted((ref, tuple(sorted(sel))) for ref, sel in granular.items())),
        originator=originator if isinstance(originator, str) else None,
        consents=tuple(sorted(set(consents), key=lambda c: c.id)),
        definition=kind in ("marking-definition", "extension-definition"),
        type=kind if granular and isinstance(kind, str) else None,
        owner=owner,
        withdrawn=tuple(sorted(set(withdrawn))),
    )
