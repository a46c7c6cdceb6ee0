"""Producing the released copy: the tearline (fields cut by granular markings) and the cut
of references to objects the partner may not see."""

from __future__ import annotations

import copy
import re
from typing import Any

from liaison.errors import LiaisonError

# References that name the originator and the markings: the recipient must see them.
_KEPT_REFERENCES = {"created_by_ref", "object_marking_refs"}
_INDEX = re.compile(r"^\[(\d+)\]$")


class SelectorError(LiaisonError):
    """A granular-marking selector that does not point into the object."""


def apply_cuts(obj: dict[str, Any], selectors: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """A copy of ``obj`` without the selected fields, and without the granular markings
    whose every selector was cut (those that remain keep only surviving selectors)."""
    result = copy.deepcopy(obj)
    # Remove list items from the highest index down, so earlier removals do not shift them.
    for selector in sorted(selectors, key=_sort_key, reverse=True):
        _remove(result, selector.split("."))
    cut = set(selectors)
    kept = []
    for entry in result.get("granular_markings") or []:
        remaining = [s for s in entry.get("selectors", []) if not _covered(s, cut)]
        if remaining:
            kept.append({**entry, "selectors": remaining})
    if "granular_markings" in result:
        if kept:
            result["granular_markings"] = kept
        else:
            del result["granular_markings"]
    return result


def _covered(selector: str, cut: set[str]) -> bool:
    return any(selector == c or selector.startswith(c + ".") for c in cut)


def _sort_key(selector: str) -> tuple:
    return tuple(
        (1, int(m.group(1))) if (m := _INDEX.match(part)) else (0, part)
        for part in selector.split(".")
    )


def _remove(node: Any, path: list[str]) -> None:
    head, rest = path[0], path[1:]
    index = _INDEX.match(head)
    if index is not None:
        position = int(index.group(1))
        if not isinstance(node, list) or position >= len(node):
            raise SelectorError(f"selector part {head} does not point into the object")
        if rest:
            _remove(node[position], rest)
        else:
            del node[position]
        return
    if not isinstance(node, dict) or head not in node:
        raise SelectorError(f"selector part {head} does not point into the object")
    if rest:
        _remove(node[head], rest)
    else:
        del node[head]


def references(obj: dict[str, Any]) -> set[str]:
    """Every object id that ``obj`` points at through a top-level ``*_ref`` or ``*_refs``
    property, except its originator and its markings."""
    found: set[str] = set()
    for key, value in obj.items():
        if key in _KEPT_REFERENCES:
            continue
        if key.endswith("_refs") and isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
        elif key.endswith("_ref") and isinstance(value, str):
            found.add(value)
    return found


def cut_references(
    obj: dict[str, Any], visible: set[str], required: frozenset[str]
) -> tuple[dict[str, Any] | None, list[str]]:
    """``obj`` without references to ids outside ``visible``, and the ids removed; None
    when a required reference property would be removed or left empty. Only top-level
    properties change, so ``obj`` itself is returned when nothing is cut, and a shallow copy
    otherwise: callers must not modify the result in place."""
    result = obj
    removed: list[str] = []
    for key, value in obj.items():
        if key in _KEPT_REFERENCES:
            continue
        if key.endswith("_refs") and isinstance(value, list):
            gone = [v for v in value if v not in visible]
            if not gone:
                continue
            removed.extend(gone)
            kept = [v for v in value if v in visible]
            if not kept and key in required:
                return None, removed
            result = dict(result) if result is obj else result
            if kept:
                result[key] = kept
            else:
                del result[key]
        elif key.endswith("_ref") and isinstance(value, str) and value not in visible:
            removed.append(value)
            if key in required:
                return None, removed
            result = dict(result) if result is obj else result
            del result[key]
    return result, removed
