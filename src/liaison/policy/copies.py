"""The copy a partner receives: its grant's tearline applied, then the references to objects
it may not see cut, with one visibility lookup for a whole page of objects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from liaison.policy.grants import required_properties
from liaison.policy.tearline import apply_cuts, cut_references, references
from liaison.store.pages import GrantedVersion, visible_ids


@dataclass(frozen=True)
class ReleasedCopy:
    object: dict[str, Any]
    source: GrantedVersion
    cut_fields: tuple[str, ...]
    cut_references: tuple[str, ...]


def released_copies(
    connection: sa.Connection, partner: str, page: Sequence[GrantedVersion]
) -> list[ReleasedCopy]:
    """The copies of ``page`` for ``partner``; an object whose required references are all
    cut is left out (withheld)."""
    pointed = set().union(*(references(v.object) for v in page)) if page else set()
    visible = visible_ids(connection, partner, pointed)
    copies = []
    for version in page:
        copy = make_copy(version.object, version.cuts, visible)
        if copy is not None:
            obj, removed = copy
            copies.append(ReleasedCopy(obj, version, version.cuts, tuple(removed)))
    return copies


def make_copy(
    obj: dict[str, Any], cuts: Sequence[str], visible: set[str]
) -> tuple[dict[str, Any], list[str]] | None:
    """``obj`` with its tearline and reference cuts, and the references removed; None when
    what remains is not a complete object (a required reference was cut)."""
    torn = apply_cuts(obj, tuple(cuts)) if cuts else obj
    result, removed = cut_references(torn, visible, required_properties(obj.get("type")))
    if result is None:
        return None
    return result, removed
