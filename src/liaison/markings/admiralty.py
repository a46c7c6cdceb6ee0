"""The Admiralty grading (NATO AJP-2.1): source reliability A-F and information credibility 1-6.

Analysts grade reporting as, e.g., "B2"; STIX carries only a 0-100 ``confidence``. STIX 2.1
makes the conversion normative: section 3.2 says the Appendix A mappings MUST be used when a
confidence value is presented in one of those scales. So the credibility <-> confidence
conversion below follows the table of STIX Version 2.1 (OASIS Standard), Appendix A: Confidence
Scales, "Admiralty Credibility", unchanged in STIX 2.1 Errata 01; tests check it against
tests/vectors/stix21_confidence_admiralty.json. Source reliability has no STIX mapping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from liaison.markings.handling import LIAISON_EXTENSION

__all__ = [
    "CREDIBILITY",
    "RELIABILITY",
    "Admiralty",
    "confidence_of",
    "credibility_of",
    "parse_admiralty",
]

RELIABILITY: dict[str, str] = {
    "A": "completely reliable",
    "B": "usually reliable",
    "C": "fairly reliable",
    "D": "not usually reliable",
    "E": "unreliable",
    "F": "reliability cannot be judged",
}

CREDIBILITY: dict[int, str] = {
    1: "confirmed by other sources",
    2: "probably true",
    3: "possibly true",
    4: "doubtful",
    5: "improbable",
    6: "truth cannot be judged",
}

# STIX 2.1 Appendix A, Admiralty Credibility table: credibility -> (STIX confidence value,
# lowest and highest confidence read back as that credibility). Credibility 6 is "Not
# Specified" / "N/A" there: the confidence property is left out, and no value maps to 6.
_STIX_TABLE: dict[int, tuple[int, int, int]] = {
    5: (10, 0, 19),
    4: (30, 20, 39),
    3: (50, 40, 59),
    2: (70, 60, 79),
    1: (90, 80, 100),
}

_CODE = re.compile(r"\s*([A-Fa-f])\s*-?\s*([1-6])\s*")


def _is_credibility(value: object) -> bool:
    """True for 1..6 as a real int (bool is an int to Python, never a grade to us)."""
    return type(value) is int and value in CREDIBILITY


@dataclass(frozen=True)
class Admiralty:
    """A grade such as B2; construction refuses anything outside A-F and 1-6."""

    reliability: str
    credibility: int

    def __post_init__(self) -> None:
        if not isinstance(self.reliability, str) or self.reliability not in RELIABILITY:
            raise ValueError(f"unknown source reliability {self.reliability!r}")
        if not _is_credibility(self.credibility):
            raise ValueError(f"unknown information credibility {self.credibility!r}")

    @property
    def code(self) -> str:
        """The compact form analysts write and parse_admiralty reads: "B2"."""
        return f"{self.reliability}{self.credibility}"

    def describe(self) -> str:
        """For people: "B2: usually reliable source, probably true"."""
        source = RELIABILITY[self.reliability]
        source = "source " + source if self.reliability == "F" else source + " source"
        return f"{self.code}: {source}, {CREDIBILITY[self.credibility]}"


def parse_admiralty(text: str) -> Admiralty:
    """A grade from "B2", "b2" or " B-2 "; anything else is a ValueError, never a guess."""
    match = _CODE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not an Admiralty grade: {text!r}")
    return Admiralty(match.group(1).upper(), int(match.group(2)))


def confidence_of(credibility: int) -> int | None:
    """The STIX ``confidence`` for an Admiralty credibility, per STIX 2.1 Appendix A.

    None for 6 (truth cannot be judged): the appendix gives "Not Specified", i.e. the object
    should carry no confidence property at all, which is not the same as confidence 0.
    """
    if not _is_credibility(credibility):
        raise ValueError(f"unknown information credibility {credibility!r}")
    row = _STIX_TABLE.get(credibility)
    return None if row is None else row[0]


def credibility_of(confidence: int) -> int:
    """The Admiralty credibility a STIX ``confidence`` (0-100) reads as, per STIX 2.1 Appendix A.

    Never 6: a confidence that is present has been judged. A value outside 0-100 is invalid
    STIX and raises rather than being clamped.
    """
    if type(confidence) is not int or not 0 <= confidence <= 100:
        raise ValueError(f"STIX confidence must be an integer 0-100, not {confidence!r}")
    for credibility, (_, low, high) in _STIX_TABLE.items():
        if low <= confidence <= high:
            return credibility
    raise AssertionError(f"Appendix A table does not cover {confidence}")  # pragma: no cover


def grade(obj: dict[str, Any], grading: Admiralty) -> dict[str, Any]:
    """A copy of ``obj`` carrying ``grading``: exactly, in Liaison's extension, and as STIX
    ``confidence`` by the specification's Admiralty Credibility mapping (no confidence for
    credibility 6, "truth cannot be judged")."""
    graded = dict(obj)
    extensions = dict(graded.get("extensions") or {})
    body = dict(extensions.get(LIAISON_EXTENSION) or {"extension_type": "property-extension"})
    body["admiralty"] = grading.code
    extensions[LIAISON_EXTENSION] = body
    graded["extensions"] = extensions
    confidence = confidence_of(grading.credibility)
    if confidence is None:
        graded.pop("confidence", None)
    else:
        graded["confidence"] = confidence
    return graded


def grading_of(obj: dict[str, Any]) -> Admiralty | None:
    """The Admiralty grading of ``obj``: the exact code where Liaison's extension carries it;
    else, from ``confidence`` alone, credibility with reliability F ("cannot be judged")."""
    body = (obj.get("extensions") or {}).get(LIAISON_EXTENSION) or {}
    code = body.get("admiralty") if isinstance(body, dict) else None
    if isinstance(code, str):
        return parse_admiralty(code)
    confidence = obj.get("confidence")
    if isinstance(confidence, int) and not isinstance(confidence, bool):
        return Admiralty("F", credibility_of(confidence))
    return None
