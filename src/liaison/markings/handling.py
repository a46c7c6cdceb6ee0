"""Handling rules in the terms the release policy uses, and Liaison's own handling extension
(classification on any scale, REL TO, caveats; ``schemas/liaison-handling.json``) that states
them on a marking-definition. ``read.py`` reads any marking-definition into a ``Handling``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from liaison.markings.tlp import TLP_LEVELS
from liaison.stix.ids import derived_id

LIAISON_EXTENSION = "extension-definition--6b517315-e0d2-43be-8501-180baefd8042"
ACS_EXTENSION = "extension-definition--3a65884d-005a-4290-8335-cb2d778a83ce"

# STIX 2.1 section 7.2.1.4: the TLP 1.0 marking-definitions; WHITE became CLEAR in TLP 2.0.
TLP_V1_LEVELS: dict[str, str] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "clear",
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "green",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "amber",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "red",
}


class UnknownMarking(ValueError):
    """A marking-definition the policy cannot read; the object it marks is withheld."""


@dataclass(frozen=True)
class Handling:
    """The handling rules of one marking-definition. ``None`` means "says nothing"."""

    tlp: str | None = None
    classification: str | None = None
    releasable_to: frozenset[str] | None = None
    caveats: frozenset[str] = frozenset()

    @property
    def is_empty(self) -> bool:
        return (
            self.tlp is None
            and self.classification is None
            and self.releasable_to is None
            and not self.caveats
        )


STATEMENT = Handling()


def tlp_level(marking_id: str) -> str | None:
    return TLP_LEVELS.get(marking_id) or TLP_V1_LEVELS.get(marking_id)


def read_liaison(marking_id: str, extension: dict[str, Any]) -> Handling:
    """The rules a Liaison handling extension states."""
    classification = extension.get("classification")
    releasable = extension.get("releasable_to")
    caveats = extension.get("caveats", [])
    if classification is not None and not isinstance(classification, str):
        raise UnknownMarking(f"unknown marking {marking_id}: classification is not a string")
    if releasable is not None and not (
        isinstance(releasable, list) and all(isinstance(r, str) for r in releasable)
    ):
        raise UnknownMarking(f"unknown marking {marking_id}: releasable_to is not a list")
    if not (isinstance(caveats, list) and all(isinstance(c, str) for c in caveats)):
        raise UnknownMarking(f"unknown marking {marking_id}: caveats is not a list")
    return Handling(
        classification=classification.strip().upper() if classification else None,
        releasable_to=frozenset(r.strip() for r in releasable) if releasable is not None else None,
        caveats=frozenset(c.strip().upper() for c in caveats),
    )


def eyes_only_country(caveat: str) -> str | None:
    """``CAN`` for ``CAN EYES ONLY``; None for any other caveat."""
    parts = caveat.split()
    if len(parts) == 3 and parts[1:] == ["EYES", "ONLY"] and len(parts[0]) == 3:
        return parts[0]
    return None


def marking_definition(
    created_by: str,
    classification: str | None = None,
    releasable_to: list[str] | None = None,
    caveats: list[str] | None = None,
) -> dict[str, Any]:
    """A marking-definition that states these rules, with an id derived from them (the same
    rules always give the same marking)."""
    if releasable_to is not None and not releasable_to:
        # STIX forbids empty lists; releasable to no one is what NOFORN says.
        raise ValueError("releasable_to must name a country or community; use NOFORN instead")
    extensions = handling_extension(classification, releasable_to, caveats)
    body = extensions[LIAISON_EXTENSION]
    name = " ".join(
        part
        for part in (
            classification,
            f"REL TO {', '.join(releasable_to)}" if releasable_to is not None else None,
            " ".join(caveats or []),
        )
        if part
    )
    canonical = json.dumps([created_by, body], sort_keys=True)
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": derived_id("marking-definition", canonical),
        "created_by_ref": created_by,
        "created": "2026-01-01T00:00:00.000Z",
        "name": name or "no handling rule",
        "extensions": extensions,
    }


def handling_extension(
    classification: str | None = None,
    releasable_to: list[str] | None = None,
    caveats: list[str] | None = None,
) -> dict[str, Any]:
    """The ``extensions`` entry of a marking-definition that states these rules."""
    body: dict[str, Any] = {"extension_type": "property-extension"}
    if classification is not None:
        body["classification"] = classification
    if releasable_to is not None:
        body["releasable_to"] = releasable_to
    if caveats:
        body["caveats"] = caveats
    return {LIAISON_EXTENSION: body}


def extension_definition(created_by: str) -> dict[str, Any]:
    """The STIX extension-definition of Liaison's extension: whoever receives an object that
    uses it (a marking, an Admiralty grade) can look it up."""
    return {
        "type": "extension-definition",
        "spec_version": "2.1",
        "id": LIAISON_EXTENSION,
        "created_by_ref": created_by,
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "name": "Liaison handling",
        "description": (
            "Classification on national and alliance scales, REL TO countries and "
            "communities, ORCON and EYES ONLY caveats on marking-definitions; Admiralty "
            "grading on reports. Schema: src/liaison/markings/schemas/liaison-handling.json "
            "in the Liaison repository."
        ),
        "schema": "https://liaison.invalid/schemas/liaison-handling-1.0.json",
        "version": "1.0.0",
        "extension_types": ["property-extension"],
    }
