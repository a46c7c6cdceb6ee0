"""National and alliance classification scales, and which level of one equals which of another.

A release decision compares an object's classification with what a partner may receive, and the
two are often on different scales (CAN SECRET against a NATO NS ceiling). The scales and the
equivalence ladder are data, in ``classification.toml`` next to this module, so that reviewers
can check them against the policies they come from without reading code. This module loads and
checks that data once, at import, and answers questions about it with small pure functions.

Equivalence is deliberately narrow: two levels are equivalent only when both have the same rank
on the common ladder (0 unclassified ... 4 top secret). A level without a rank (CAN PROTECTED B,
GBR OFFICIAL-SENSITIVE ...) and a rank the other scale lacks (GBR has no CONFIDENTIAL) give
"no-equivalent": the node must not guess, a person decides. Where a partner's own rules say how
it protects a rank its scale lacks (the UK protects foreign CONFIDENTIAL as SECRET), the alliance
file records that rule for the partner; ``protection`` checks such a rule against the scales
here, and ``protected_as`` applies it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Literal

__all__ = [
    "RUNGS",
    "SCALES",
    "Comparison",
    "Level",
    "compare",
    "equivalent",
    "level",
    "levels",
    "parse_level",
    "protected_as",
    "protection",
    "rung",
]

Comparison = Literal["within", "exceeds", "no-equivalent"]


@dataclass(frozen=True)
class Level:
    """One level of one scale, as the data file defines it.

    ``order`` ranks the level within its own scale only; ``rank`` places it on the common
    ladder, None when the level has no counterpart on any other scale.
    """

    scale: str
    name: str
    long_name: str
    order: int
    rank: int | None

    def __str__(self) -> str:
        """The storage form, ``SCALE:NAME``, which parse_level reads back to this level."""
        return f"{self.scale}:{self.name}"

    def describe(self) -> str:
        """The level for people: NATO and EU long names already say whose level it is
        ("NATO CONFIDENTIAL"); a national name needs its country ("SECRET (CAN)")."""
        if self.scale in _LONG_NAMES_CARRY_SCALE:
            return self.long_name
        return f"{self.name} ({self.scale})"


@dataclass(frozen=True)
class _Scale:
    """A loaded scale with the look-ups the public functions need."""

    code: str
    levels: tuple[Level, ...]
    by_key: Mapping[str, Level]
    by_rank: Mapping[int, Level]
    long_names_carry_scale: bool


_SEPARATORS = re.compile(r"[\s\-_:/]+")
_LEVEL_FIELDS = frozenset({"name", "long_name", "rank", "aliases"})
_SCALE_FIELDS = frozenset({"aliases", "long_names_carry_scale", "levels"})


def _key(text: str) -> str:
    """The matching form of a name or scale code.

    Case and the spelling of separators never distinguish two levels ("OFFICIAL: SENSITIVE",
    "official-sensitive"), so people and partner systems need not match our punctuation.
    """
    return _SEPARATORS.sub(" ", text).strip().casefold()


def _load_level(code: str, order: int, item: Mapping[str, Any], ranks: frozenset[int]) -> Level:
    """One level entry; unknown fields are refused so a typo ("rnak") cannot silently drop a
    rank."""
    unknown = set(item) - _LEVEL_FIELDS
    if unknown:
        raise ValueError(f"{code}: unknown level fields {sorted(unknown)}")
    name = item["name"]
    rank = item.get("rank")
    if rank is not None and (type(rank) is not int or rank not in ranks):
        raise ValueError(f"{code}:{name}: rank {rank!r} is not on the ladder {sorted(ranks)}")
    return Level(code, name, item.get("long_name", name), order, rank)


def _load_scale(code: str, entry: Mapping[str, Any], ranks: frozenset[int]) -> _Scale:
    """One scale, checked so that every equivalence answer is unambiguous.

    Ranks must rise strictly with order: this gives at most one level per rank (so equivalence
    is symmetric) and keeps the ladder consistent with each scale's own ordering.
    """
    unknown = set(entry) - _SCALE_FIELDS
    if unknown:
        raise ValueError(f"{code}: unknown scale fields {sorted(unknown)}")
    levels: list[Level] = []
    by_key: dict[str, Level] = {}
    by_rank: dict[int, Level] = {}
    for order, item in enumerate(entry["levels"]):
        lvl = _load_level(code, order, item, ranks)
        if lvl.rank is not None:
            if by_rank and lvl.rank <= max(by_rank):
                raise ValueError(f"{lvl}: rank {lvl.rank} does not rise above the levels below")
            by_rank[lvl.rank] = lvl
        for spelling in (lvl.name, lvl.long_name, *item.get("aliases", ())):
            other = by_key.setdefault(_key(spelling), lvl)
            if other != lvl:
                raise ValueError(f"{code}: {spelling!r} would name both {other} and {lvl}")
        levels.append(lvl)
    if not levels:
        raise ValueError(f"{code}: a scale needs at least one level")
    return _Scale(
        code=code,
        levels=tuple(levels),
        by_key=by_key,
        by_rank=by_rank,
        long_names_carry_scale=bool(entry.get("long_names_carry_scale", False)),
    )


def _load(document: Mapping[str, Any]) -> tuple[dict[str, _Scale], dict[str, str]]:
    """All scales, in file order, and the map from every accepted scale spelling to its code."""
    ranks = frozenset(_ladder(document))
    scales: dict[str, _Scale] = {}
    codes: dict[str, str] = {}
    for code, entry in document["scales"].items():
        scales[code] = _load_scale(code, entry, ranks)
        for spelling in (code, *entry.get("aliases", ())):
            other = codes.setdefault(_key(spelling), code)
            if other != code:
                raise ValueError(f"scale spelling {spelling!r} would name both {other} and {code}")
    return scales, codes


def _ladder(document: Mapping[str, Any]) -> dict[int, str]:
    """The common ladder, rank -> rung name ("confidential"); names are unique, so a rule can
    name a rung ("CONFIDENTIAL") rather than a number."""
    ladder = {int(rank): str(name) for rank, name in document["ranks"].items()}
    names = [_key(name) for name in ladder.values()]
    if len(names) != len(set(names)):
        raise ValueError("two ranks of the ladder have the same name")
    return dict(sorted(ladder.items()))


def _read_data() -> dict[str, Any]:
    """The TOML shipped inside the package (hatchling includes it in the wheel)."""
    text = files("liaison.markings").joinpath("classification.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


_DATA = _read_data()
_SCALES, _SCALE_CODES = _load(_DATA)
_LONG_NAMES_CARRY_SCALE = frozenset(s.code for s in _SCALES.values() if s.long_names_carry_scale)

SCALES: tuple[str, ...] = tuple(_SCALES)
# The common ladder, rank -> rung name, lowest first: {0: "unclassified", ..., 4: "top secret"}.
RUNGS: Mapping[int, str] = _ladder(_DATA)
_RUNG_BY_KEY = {_key(name): rank for rank, name in RUNGS.items()}


def _scale(scale: str) -> _Scale:
    """The scale a code or alias names; a ValueError for any other text."""
    code = _SCALE_CODES.get(_key(scale))
    if code is None:
        raise ValueError(f"unknown classification scale '{scale}'")
    return _SCALES[code]


def _find(scale: str, name: str) -> Level | None:
    """The level a scale spelling and level spelling name, or None."""
    code = _SCALE_CODES.get(_key(scale))
    if code is None:
        return None
    return _SCALES[code].by_key.get(_key(name))


def levels(scale: str) -> tuple[Level, ...]:
    """Every level of a scale, lowest first: for pick lists, and for checks over all levels."""
    return _scale(scale).levels


def level(scale: str, name: str) -> Level:
    """The level of ``scale`` called ``name`` (short name, long name or alias, any case)."""
    found = _find(scale, name)
    if found is None:
        raise ValueError(f"unknown classification '{scale}:{name}'")
    return found


def parse_level(text: str) -> Level:
    """A level from its storage form ``SCALE:NAME`` or a looser spelling of it.

    The scale is required: "SECRET" alone means different things to different partners. Only
    the first colon separates scale from name, because AUS "OFFICIAL: SENSITIVE" has its own.
    """
    scale, colon, name = text.partition(":")
    found = _find(scale, name) if colon else None
    if found is None:
        raise ValueError(f"unknown classification '{text}'")
    return found


def equivalent(level: Level, scale: str) -> Level | None:
    """The level of ``scale`` equivalent to ``level``.

    On its own scale a level is itself. Across scales it is the level of the same rank, and
    None when ``level`` has no rank or ``scale`` has no level of that rank: no equivalent is
    ever invented by rounding up or down.
    """
    target = _scale(scale)
    if target.code == level.scale:
        return level
    if level.rank is None:
        return None
    return target.by_rank.get(level.rank)


def compare(level: Level, clearance: Level) -> Comparison:
    """Whether ``level`` is within ``clearance`` (e.g. what a partner may receive).

    The level is first moved onto the clearance's scale; when that is impossible the answer
    is "no-equivalent" rather than a guess either way, because both guesses are dangerous:
    "within" would over-release, "exceeds" would hide that the question needs a person.
    """
    counterpart = equivalent(level, clearance.scale)
    if counterpart is None:
        return "no-equivalent"
    return "within" if counterpart.order <= clearance.order else "exceeds"


def rung(name: str) -> int:
    """The rank of the ladder rung called ``name`` ("CONFIDENTIAL", "top-secret", any case)."""
    rank = _RUNG_BY_KEY.get(_key(name))
    if rank is None:
        raise ValueError(
            f"{name!r} is not a rung of the classification ladder ({', '.join(RUNGS.values())})"
        )
    return rank


def protection(scale: str, rank: int, name: str) -> Level:
    """The level of ``scale`` named by the rule "a partner on ``scale`` protects levels of rank
    ``rank``, which its scale lacks, as its level ``name``" (``SECRET`` or ``GBR:SECRET``); a
    ValueError saying why when this node cannot apply that rule.

    The rule must fill a gap: a scale with a level of that rank already has its equivalent.
    And it must not protect the level less than a lower rank: a stand-in at or below the
    scale's level of a lower rank would release (say) CONFIDENTIAL to whoever is cleared for
    RESTRICTED.
    """
    target = _scale(scale)
    rung_name = RUNGS[rank].upper()
    if rank in target.by_rank:
        raise ValueError(
            f"the {target.code} scale has its own {rung_name} level "
            f"({target.by_rank[rank].name}); a rule is only for ranks it lacks"
        )
    found = _own_level(target, name)
    if found is None:
        raise ValueError(f"{rung_name} = {name!r} is not a level of the {target.code} scale")
    lower = [lvl for r, lvl in target.by_rank.items() if r < rank and lvl.order >= found.order]
    if lower:
        raise ValueError(
            f"{rung_name} = {name!r} would protect it no better than {lower[-1].name}, the "
            f"{target.code} level of a lower rank"
        )
    return found


def protected_as(level: Level, scale: str, rules: Mapping[str, str]) -> Level | None:
    """The level of ``scale`` at which a partner protects ``level`` under its rules ``rules``
    (ladder rung -> level of ``scale``, as checked by ``protection``), when ``level`` has
    no equivalent on ``scale``; None when it has one, when it has no rank, or when the rules
    say nothing of its rank.
    """
    if level.rank is None or equivalent(level, scale) is not None:
        return None
    target = _scale(scale)
    for name, stand_in in rules.items():
        if rung(name) == level.rank:
            return _own_level(target, stand_in)
    return None


def _own_level(target: _Scale, name: str) -> Level | None:
    """The level of ``target`` that ``name`` names, bare ("SECRET") or with that scale's code
    ("GBR:SECRET"); None for a level of another scale or of none."""
    found = target.by_key.get(_key(name))
    head, colon, tail = name.partition(":")
    if found is None and colon and _SCALE_CODES.get(_key(head)) == target.code:
        found = target.by_key.get(_key(tail))
    return found
