"""The copy a partner receives: its grant's tearline applied, then the references to objects
it may not see cut, with a bounded number of visibility lookups for a whole page.

An object may be granted and still not be sent: when every target of a required reference
(a report's ``object_refs``, a relationship's ``source_ref``) is withheld, the copy would be
incomplete, so it is withheld too, and references to it must be cut in turn. Visibility is
therefore resolved through chains of required references, ``MAX_CHAIN`` levels deep; what is
not resolved by then is treated as not visible (fail closed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from liaison.policy.grants import required_properties
from liaison.policy.tearline import apply_cuts, cut_references, references
from liaison.store.pages import GrantedVersion, visible_texts

MAX_CHAIN = 16
# Required by STIX for some types, yet never a reason to withhold a copy.
_NOT_DECIDING = frozenset({"created_by_ref", "object_marking_refs"})


@dataclass(frozen=True)
class ReleasedCopy:
    object: dict[str, Any]
    source: GrantedVersion
    cut_fields: tuple[str, ...]
    cut_references: tuple[str, ...]


def required_references(obj: dict[str, Any]) -> list[set[str]]:
    """For each required reference property of ``obj``, the ids it points at: at least one of
    each set must be visible for a copy to be complete."""
    required = required_properties(obj.get("type"))
    found = []
    for key, value in obj.items():
        if key not in required or key in _NOT_DECIDING:
            continue
        if key.endswith("_refs") and isinstance(value, list):
            found.append({v for v in value if isinstance(v, str)})
        elif key.endswith("_ref") and isinstance(value, str):
            found.append({value})
    return found


def sendable(
    ids: Iterable[str],
    granted: Callable[[set[str]], set[str]],
    bodies: Callable[[set[str]], dict[str, dict[str, Any]]],
) -> set[str]:
    """Which of ``ids`` would be sent whole: granted (by ``granted``), and each required
    reference still pointing at something sent. Required references are followed
    ``MAX_CHAIN`` levels deep, a level per lookup; an object whose chain goes deeper is not
    sent (fail closed). Cycles are fine: two granted notes citing each other are both sent.

    Only what can change a decision is followed: the references of ``ids``, and of objects in
    a required set that nothing already settles. A set holding a granted object without
    required references of its own (an indicator, a malware) is satisfied by it, whatever
    its other members turn out to be; a report citing ten indicators and a report costs one
    lookup, not the closure of everything that report cites."""
    wanted = set(ids)
    seen: set[str] = set()
    allowed: set[str] = set()
    needs: dict[str, list[set[str]]] = {}
    followed: set[str] = set()
    frontier = set(wanted)
    for _ in range(MAX_CHAIN):
        frontier -= seen
        if not frontier:
            break
        seen |= frontier
        found = granted(frontier)
        allowed |= found
        for oid, body in bodies(found).items():
            if needed := required_references(body):
                needs[oid] = needed
        settled = allowed - needs.keys()  # granted, and needing nothing
        deciding = _deciding(wanted, needs, settled)
        following = (deciding & needs.keys()) - followed
        followed |= following
        frontier = set().union(*(refs for oid in following for refs in needs[oid]))
    # Remove what cannot be complete until nothing changes (the greatest such set remains).
    # An object whose references were not followed can only fall out of sets that a settled
    # object satisfies: no decision about ``ids`` depends on it.
    changed = True
    while changed:
        changed = False
        for oid, needed in needs.items():
            if oid in allowed and any(not (refs & allowed) for refs in needed):
                allowed.discard(oid)
                changed = True
    return allowed & wanted


def _deciding(wanted: set[str], needs: dict[str, list[set[str]]], settled: set[str]) -> set[str]:
    """The objects whose fate decides that of ``wanted``: those, and the members of each of
    their required sets that no settled object satisfies, and so on."""
    found: set[str] = set()
    stack = list(wanted)
    while stack:
        oid = stack.pop()
        if oid in found:
            continue
        found.add(oid)
        stack.extend(m for refs in needs.get(oid, ()) if not (refs & settled) for m in refs)
    return found


def sendable_ids(connection: sa.Connection, partner: str, ids: Iterable[str]) -> set[str]:
    """``sendable`` with the stored grants of ``partner``: one lookup per level of required
    references, each giving the newest version of each id the partner may see (whose
    references are the ones that count for that partner)."""
    seen: dict[str, tuple[str, str]] = {}

    def granted(found: set[str]) -> set[str]:
        visible = visible_texts(connection, partner, found)
        seen.update(visible)
        return set(visible)

    def bodies(found: set[str]) -> dict[str, dict[str, Any]]:
        # Only objects with required references need their body read (reports, notes,
        # relationships...); an indicator or a malware is sendable as it is.
        kept = ((i, seen[i]) for i in found if i in seen)
        return {i: json.loads(text) for i, (kind, text) in kept if _requires(kind)}

    return sendable(ids, granted, bodies)


def _requires(kind: str) -> bool:
    """Whether objects of type ``kind`` have required references that decide a copy."""
    required = required_properties(kind) - _NOT_DECIDING
    return any(key.endswith(("_ref", "_refs")) for key in required)


def released_copies(
    connection: sa.Connection, partner: str, page: Sequence[GrantedVersion]
) -> list[ReleasedCopy]:
    """The copies of ``page`` for ``partner``; an object whose required references are all
    cut is left out (withheld)."""
    pointed = set().union(*(references(v.object) for v in page)) if page else set()
    visible = sendable_ids(connection, partner, pointed)
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
