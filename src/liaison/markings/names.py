"""What a person reads for a marking: ``TLP:AMBER``, ``CAN:SECRET REL TO FVEY``, never a
``marking-definition--`` id when the store can say better. JSON keeps the ids."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from liaison.markings.handling import Handling, UnknownMarking, tlp_level
from liaison.markings.read import read_marking


def handling_name(handling: Handling) -> str:
    """``CAN:SECRET REL TO FVEY CAN EYES ONLY``: the rules in the order markings are written."""
    parts = [
        f"TLP:{handling.tlp.upper()}" if handling.tlp else None,
        handling.classification,
        f"REL TO {', '.join(sorted(handling.releasable_to))}"
        if handling.releasable_to is not None
        else None,
        " ".join(sorted(handling.caveats)) or None,
    ]
    return " ".join(p for p in parts if p)


def marking_name(marking_id: str, definition: dict[str, Any] | None = None) -> str:
    """The name of a marking: from its TLP id, else from the handling its definition states
    (Liaison's extension or ISA/ACS), else the definition's own name or statement; the id
    when none of these says anything."""
    level = tlp_level(marking_id)
    if level is not None:
        return f"TLP:{level.upper()}"
    if definition is None:
        return marking_id
    try:
        handling = read_marking(marking_id, definition)
    except UnknownMarking:
        handling = None
    if handling is not None and not handling.is_empty:
        return handling_name(handling)
    name = definition.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    statement = (definition.get("definition") or {}).get("statement")
    if isinstance(statement, str) and statement.strip():
        return statement.strip()
    return marking_id


def marking_names(connection: sa.Connection, refs: Iterable[str]) -> dict[str, str]:
    """The name of each marking in ``refs``, from the definitions the store holds."""
    from liaison.store.objects import latest_bodies  # the store reads markings too

    wanted = set(refs)
    definitions = latest_bodies(connection, (r for r in wanted if tlp_level(r) is None))
    return {ref: marking_name(ref, definitions.get(ref)) for ref in wanted}


def refs_of(obj: dict[str, Any]) -> list[str]:
    """The markings an object refers to: its own, then its granular ones."""
    refs = list(obj.get("object_marking_refs") or [])
    for granular in obj.get("granular_markings") or []:
        if isinstance(granular, dict) and isinstance(granular.get("marking_ref"), str):
            refs.append(granular["marking_ref"])
    return [r for r in refs if isinstance(r, str)]
