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
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from liaison.policy.grants import required_properties
from liaison.policy.tearline import apply_cuts, cut_references, references
from liaison.store.pages import (
    Granted,
    GrantedVersion,
    VisibleVersion,
    granted_classes,
    visible_versions,
)

MAX_CHAIN = 16
# Required by STIX for some types, yet never a reason to withhold a copy.
_NOT_DECIDING = frozenset({"created_by_ref", "object_marking_refs"})


# An object's required reference sets: at least one member of each must be sent.
Needs = Sequence[AbstractSet[str]]
# A stored version: (id, version, date_added). Its body never changes under this key (a
# version removed and stored again is added at another time).
VersionKey = tuple[str, int, int]


class VersionFacts:
    """What stored versions point at (their references, and their required reference
    sets), remembered by version so that a repeated page does not parse and walk the same
    bodies again. An entry never goes stale: it describes one immutable version, and what
    the partner may see is decided anew on every request. Bounded: past ``size`` entries
    it starts again empty."""

    def __init__(self, size: int = 200_000) -> None:
        self._size = size
        self._references: dict[VersionKey, frozenset[str]] = {}
        self._required: dict[VersionKey, tuple[frozenset[str], ...]] = {}

    def references(self, version: GrantedVersion) -> frozenset[str]:
        key = (version.id, version.version, version.date_added)
        found = self._references.get(key)
        if found is None:
            found = self._remember(self._references, key, frozenset(references(version.object)))
        return found

    def required(self, key: VersionKey, body: str) -> tuple[frozenset[str], ...]:
        found = self._required.get(key)
        if found is None:
            needed = tuple(frozenset(r) for r in required_references(json.loads(body)))
            found = self._remember(self._required, key, needed)
        return found

    def _remember(self, table: dict[VersionKey, Any], key: VersionKey, value: Any) -> Any:
        if len(table) >= self._size:
            table.clear()
        table[key] = value
        return value


@dataclass(frozen=True)
class ReleasedCopy:
    source: GrantedVersion
    cut_fields: tuple[str, ...]
    cut_references: tuple[str, ...]
    cut: dict[str, Any] | None = None  # the copy, when anything was cut from the version

    @property
    def object(self) -> dict[str, Any]:
        """The copy: the version as stored when nothing was cut."""
        return self.source.object if self.cut is None else self.cut


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
    requiring: Callable[[set[str]], Mapping[str, Needs]],
) -> set[str]:
    """Which of ``ids`` would be sent whole: granted (by ``granted``), and each required
    reference still pointing at something sent (``requiring`` gives the required reference
    sets of granted objects: ``required_references`` of each body). Required references are
    followed ``MAX_CHAIN`` levels deep, a level per lookup; an object whose chain goes
    deeper is not sent (fail closed). Cycles are fine: two granted notes citing each other
    are both sent.

    Only what can change a decision is followed: the references of ``ids``, and of objects in
    a required set that nothing already settles. A set holding a granted object without
    required references of its own (an indicator, a malware) is satisfied by it, whatever
    its other members turn out to be; a report citing ten indicators and a report costs one
    lookup, not the closure of everything that report cites."""
    wanted = set(ids)
    seen: set[str] = set()
    allowed: set[str] = set()
    needs: dict[str, Needs] = {}
    followed: set[str] = set()
    frontier = set(wanted)
    for _ in range(MAX_CHAIN):
        frontier -= seen
        if not frontier:
            break
        seen |= frontier
        found = granted(frontier)
        allowed |= found
        for oid, needed in requiring(found).items():
            if needed:
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


def _deciding(wanted: set[str], needs: Mapping[str, Needs], settled: set[str]) -> set[str]:
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


def sendable_ids(
    connection: sa.Connection,
    partner: str,
    ids: Iterable[str],
    facts: VersionFacts | None = None,
    granted: Granted | None = None,
) -> set[str]:
    """``sendable`` with the stored grants of ``partner`` (``granted``, when the caller read
    them in this snapshot): one lookup per level of required references, each giving the
    newest version of each id the partner may see (whose references are the ones that count
    for that partner)."""
    facts = facts or VersionFacts()
    classes = granted_classes(connection, partner) if granted is None else granted
    seen: dict[str, VisibleVersion] = {}

    def granted(found: set[str]) -> set[str]:
        # Only objects with required references need their body (reports, notes,
        # relationships...); an indicator or a malware is sendable as it is.
        visible = visible_versions(connection, found, classes, _bodiless())
        seen.update(visible)
        return set(visible)

    def requiring(found: set[str]) -> dict[str, tuple[frozenset[str], ...]]:
        kept = ((i, seen[i]) for i in found if i in seen)
        return {
            i: facts.required((i, v.version, v.date_added), v.body)
            for i, v in kept
            if v.body is not None and _requires(v.type)
        }

    return sendable(ids, granted, requiring)


def _bodiless() -> frozenset[str]:
    """The STIX 2.1 types registered now whose required references can never decide whether
    a copy is complete (indicators, malware...): their bodies need not be read. A type
    registered later is read (and ``_requires`` decides), never skipped."""
    import stix2  # noqa: F401  (as in ``required_properties``: the package whole first)
    from stix2.registry import STIX2_OBJ_MAPS

    kinds = STIX2_OBJ_MAPS["2.1"]
    return frozenset(k for g in ("objects", "observables") for k in kinds[g] if not _requires(k))


def _requires(kind: str) -> bool:
    """Whether objects of type ``kind`` have required references that decide a copy."""
    required = required_properties(kind) - _NOT_DECIDING
    return any(key.endswith(("_ref", "_refs")) for key in required)


def released_copies(
    connection: sa.Connection,
    partner: str,
    page: Sequence[GrantedVersion],
    facts: VersionFacts | None = None,
    granted: Granted | None = None,
) -> list[ReleasedCopy]:
    """The copies of ``page`` for ``partner``; an object whose required references are all
    cut is left out (withheld). ``facts`` remembers what the versions point at, for the
    next page that holds them; ``granted``: the partner's grants as the page was read."""
    facts = facts or VersionFacts()
    pointed = [facts.references(v) for v in page]
    visible = sendable_ids(connection, partner, set().union(*pointed), facts, granted)
    copies = []
    for version, refs in zip(page, pointed, strict=True):
        if not version.cuts and refs <= visible:  # nothing to cut: the version as stored
            copies.append(ReleasedCopy(version, (), ()))
            continue
        copy = make_copy(version.object, version.cuts, visible)
        if copy is not None:
            obj, removed = copy
            cut = None if obj is version.object else obj
            copies.append(ReleasedCopy(version, version.cuts, tuple(removed), cut))
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
