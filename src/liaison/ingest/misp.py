"""A MISP event to STIX 2.1, converted by MISP's own converter and brought in line with
Liaison's markings.

misp-stix (``MISPtoSTIX21Parser.parse_misp_event``) does the conversion. This module checks
the input before it and, after it, only changes what Liaison's policy reads:

- Originator: misp-stix makes the event's ``Orgc`` an identity and sets it as
  ``created_by_ref`` on what it converts. Relationships, galaxy objects and sightings' orgs
  come without one, and the policy would take them for the node's own: they get the Orgc too
  (the Orgc's identity is its own creator). An event that names this node as an object's id or
  originator is refused.
- TLP: MISP's TLP tags (misp-stix gives TLP 1.0 ids for ``tlp:white``, ``green``, ``amber``
  and ``red``, and leaves other spellings as labels) become the TLP 2.0 marking-definitions,
  TLP:WHITE as TLP:CLEAR. A TLP tag with no TLP 2.0 level (``tlp:ex:chr``) refuses the event.
  The event's TLP marks every object of the event; an SCO also carries the markings of the
  observed-data that holds it, and a relationship, sighting, note or opinion those of what
  it links, so no value leaves under a weaker marking than the attribute it came from.
- Admiralty: ``admiralty-scale:source-reliability`` and ``information-credibility`` tags
  grade the object they are on (``markings.admiralty.grade``). A missing half, or two tags
  that disagree, is "cannot be judged" (F, 6); MISP's ``g`` (deliberately deceptive) is E.

The conversion runs twice and must give the same objects: an event missing the uuids or
timestamps that fix its ids and versions would add new versions at every import.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

from liaison.errors import InputError
from liaison.markings.admiralty import Admiralty, grade
from liaison.markings.handling import TLP_V1_LEVELS, tlp_level
from liaison.markings.tlp import TLP_LEVELS, tlp_definition
from liaison.settings import InputLimits
from liaison.stix.parse import load_json

StixObject = dict[str, Any]

# pymisp logs every record it cannot load to stderr; misp-stix records the same errors, and
# those are what the import reports.
logging.getLogger("pymisp").addHandler(logging.NullHandler())

# MISP's tlp taxonomy -> TLP 2.0 level.
MISP_TLP: dict[str, str] = {
    "tlp:clear": "clear",
    "tlp:white": "clear",
    "tlp:green": "green",
    "tlp:amber": "amber",
    "tlp:amber+strict": "amber+strict",
    "tlp:red": "red",
}
_TLP_2_0 = {level: marking_id for marking_id, level in TLP_LEVELS.items()}
_ADMIRALTY_TAG = re.compile(
    r'admiralty-scale:(source-reliability|information-credibility)="([a-g1-6])"', re.IGNORECASE
)
_DEFINITIONS = ("marking-definition", "extension-definition")
# Objects that state something about the objects they refer to carry those objects' markings.
_ABOUT_REFS = {
    "relationship": ("source_ref", "target_ref"),
    "sighting": ("sighting_of_ref", "observed_data_refs"),
    "note": ("object_refs",),
    "opinion": ("object_refs",),
}


def objects_from_misp(data: bytes, limits: InputLimits, node_identity: str) -> list[StixObject]:
    """The STIX 2.1 objects of the MISP event in ``data`` (``{"Event": {...}}`` as MISP
    exports it, or the bare event), ready for ``import_objects``; InputError when the event
    is refused, in which case nothing should be written."""
    document = load_json(data, limits, "MISP event")
    event = _event_of(document)
    org = _originator(event)
    objects = _convert(document)
    if objects != _convert(document):
        raise InputError(
            "the MISP event converts differently each time (an attribute or object without "
            "its uuid or timestamp): importing it would add new versions at every import"
        )
    _tlp_markings(objects)
    _spread_markings(objects, _event_tlp(event))
    _set_originator(objects, org)
    objects = [
        grade(obj, grading) if (grading := _admiralty_of(obj.get("labels", []))) else obj
        for obj in objects
    ]
    for obj in objects:
        if node_identity in (obj["id"], obj.get("created_by_ref")):
            raise InputError(
                f"the MISP event claims this node's identity {node_identity} "
                f"(on {obj['id']}): a MISP event cannot speak for this node"
            )
    used = dict.fromkeys(
        ref for obj in objects for ref in obj.get("object_marking_refs", []) if ref in TLP_LEVELS
    )
    return [tlp_definition(marking_id) for marking_id in used] + objects


def _event_of(document: Any) -> dict[str, Any]:
    event = document.get("Event", document) if isinstance(document, dict) else None
    if not isinstance(event, dict) or not isinstance(event.get("info"), str):
        raise InputError(
            'not a MISP event: expected one event, {"Event": {...}} with its "info", as '
            "MISP exports it"
        )
    if not isinstance(event.get("uuid"), str):
        raise InputError("the MISP event has no uuid: its objects would get new ids each time")
    return event


def _originator(event: dict[str, Any]) -> str:
    orgc = event.get("Orgc")
    if not (isinstance(orgc, dict) and isinstance(orgc.get("uuid"), str) and orgc.get("name")):
        raise InputError(
            "the MISP event names no creator organisation (Orgc with name and uuid): "
            "its originator cannot be kept"
        )
    return f"identity--{orgc['uuid']}"


def _convert(document: Any) -> list[StixObject]:
    """misp-stix's objects as JSON dicts; InputError if it fails on any part of the event."""
    from misp_stix_converter import MISPtoSTIX21Parser

    parser = MISPtoSTIX21Parser()
    try:
        # misp-stix leaves its input alone; the copy keeps it so whatever it does.
        parser.parse_misp_event(json.loads(json.dumps(document)))
        objects = [
            json.loads(obj.serialize()) if hasattr(obj, "serialize") else dict(obj)
            for obj in parser.stix_objects
        ]
    except Exception as exc:  # misp-stix and stix2 raise many kinds on bad input
        raise InputError(f"misp-stix cannot convert the MISP event: {_one_line(exc)}") from None
    errors = [message for messages in parser.errors.values() for message in messages]
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InputError(
            f"misp-stix cannot convert part of the MISP event: {_one_line(errors[0])}{more}"
        )
    return objects


def _one_line(error: object) -> str:
    """One line of a message: misp-stix's errors hold a traceback between what failed (the
    first line) and why (the last)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    return lines[0] if len(lines) == 1 else f"{lines[0].rstrip(':')}: {lines[-1]}"


def _tlp_markings(objects: list[StixObject]) -> None:
    """Put TLP 2.0 ids in place of misp-stix's TLP markings and of the TLP tags it left as
    labels; drop its TLP marking-definitions."""
    for obj in objects:
        refs = [_as_tlp_2_0(ref) for ref in obj.get("object_marking_refs", [])]
        labels = []
        for label in obj.get("labels", []):
            marking_id = _tlp_id(label, obj["id"])
            if marking_id is None:
                labels.append(label)
            else:
                refs.append(marking_id)
        _set_list(obj, "labels", labels)
        _set_list(obj, "object_marking_refs", list(dict.fromkeys(refs)))
    objects[:] = [
        obj
        for obj in objects
        if not (obj["type"] == "marking-definition" and tlp_level(obj["id"]) is not None)
    ]


def _tlp_id(tag: str, where: str) -> str | None:
    """The TLP 2.0 id a MISP tag names, in any spelling; None for a tag that is no TLP tag."""
    name = tag.strip().lower()
    if name in MISP_TLP:
        return _TLP_2_0[MISP_TLP[name]]
    if name.startswith("tlp:"):
        raise InputError(
            f"MISP tag {tag!r} on {where} is no TLP level Liaison can enforce "
            f"({', '.join(MISP_TLP)})"
        )
    return None


def _as_tlp_2_0(marking_id: str) -> str:
    """The TLP 2.0 id for a TLP 1.0 one; any other id unchanged."""
    level = TLP_V1_LEVELS.get(marking_id)
    return _TLP_2_0[level] if level else marking_id


def _event_tlp(event: dict[str, Any]) -> list[str]:
    """The TLP 2.0 ids of the event's own TLP tags (misp-stix puts them on its report)."""
    tags = [tag.get("name") for tag in event.get("Tag") or [] if isinstance(tag, dict)]
    found = (_tlp_id(tag, "the event") for tag in tags if isinstance(tag, str))
    return list(dict.fromkeys(marking_id for marking_id in found if marking_id is not None))


def _spread_markings(objects: list[StixObject], event_markings: list[str]) -> None:
    by_id = {obj["id"]: obj for obj in objects}
    markable = [obj for obj in objects if obj["type"] not in _DEFINITIONS]
    for obj in markable:
        _add_markings(obj, event_markings)
    # An SCO is part of the observed-data (or SCO) that refers to it: the markings go down,
    # through chains such as network-traffic -> ipv4-addr, until nothing changes.
    changed = True
    while changed:
        changed = False
        for obj in markable:
            if obj["type"] == "observed-data":
                refs: list[str] = list(obj.get("object_refs", []))
            elif _is_sco(obj):
                refs = list(_refs_in(obj))
            else:
                continue
            for ref in refs:
                target = by_id.get(ref)
                if target is not None and _is_sco(target):
                    changed |= _add_markings(target, obj.get("object_marking_refs", []))
    for obj in markable:
        for key in _ABOUT_REFS.get(obj["type"], ()):
            value = obj.get(key)
            for ref in value if isinstance(value, list) else [value]:
                target = by_id.get(ref) if isinstance(ref, str) else None
                if target is not None:
                    _add_markings(obj, target.get("object_marking_refs", []))


def _set_originator(objects: list[StixObject], org: str) -> None:
    """Every SDO and SRO without an originator gets the event's Orgc (SCOs cannot have one)."""
    for obj in objects:
        if obj["type"] not in _DEFINITIONS and not _is_sco(obj):
            obj.setdefault("created_by_ref", org)


def _admiralty_of(labels: list[str]) -> Admiralty | None:
    """The grading the admiralty-scale tags among ``labels`` give; None if there are none."""
    reliability: set[str] = set()
    credibility: set[int] = set()
    for label in labels:
        match = _ADMIRALTY_TAG.fullmatch(label.strip())
        if match is None:
            continue
        predicate, value = match.group(1).lower(), match.group(2).upper()
        if predicate == "source-reliability" and value.isalpha():
            reliability.add("E" if value == "G" else value)
        elif predicate == "information-credibility" and value.isdigit():
            credibility.add(int(value))
    if not reliability and not credibility:
        return None
    # A missing half, or tags that disagree, is "cannot be judged".
    return Admiralty(
        reliability.pop() if len(reliability) == 1 else "F",
        credibility.pop() if len(credibility) == 1 else 6,
    )


def _is_sco(obj: StixObject) -> bool:
    """Cyber-observables are the objects with no ``created`` (SDOs, SROs and definitions
    all have one)."""
    return "created" not in obj


def _refs_in(value: Any) -> Iterator[str]:
    """Ids an SCO refers to (``*_ref``, ``*_refs``), at any depth, markings aside."""
    if isinstance(value, dict):
        for key, child in value.items():
            if key in ("object_marking_refs", "granular_markings"):
                continue
            if key.endswith("_ref") and isinstance(child, str):
                yield child
            elif key.endswith("_refs") and isinstance(child, list):
                yield from (ref for ref in child if isinstance(ref, str))
            else:
                yield from _refs_in(child)
    elif isinstance(value, list):
        for child in value:
            yield from _refs_in(child)


def _add_markings(obj: StixObject, markings: list[str]) -> bool:
    """Add ``markings`` to ``obj``; True if it gained any."""
    current = list(obj.get("object_marking_refs", []))
    new = [m for m in markings if m not in current]
    if new:
        obj["object_marking_refs"] = current + new
    return bool(new)


def _set_list(obj: StixObject, key: str, values: list[str]) -> None:
    if values:
        obj[key] = values
    else:
        obj.pop(key, None)
