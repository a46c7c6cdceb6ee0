"""What a marking-definition says: the one entry point the policy uses to read markings.

Understood: the TLP 2.0 marking-definitions (and the TLP 1.0 ones, mapped to 2.0), statement
markings (no handling rule), Liaison's handling extension (``handling.py``) and ISA/ACS 3.0
markings (``acs.py``). Anything else is unknown, and an unknown marking makes the policy
withhold.
"""

from __future__ import annotations

from typing import Any

from liaison.markings.acs import read_acs
from liaison.markings.handling import (
    ACS_EXTENSION,
    LIAISON_EXTENSION,
    STATEMENT,
    Handling,
    UnknownMarking,
    read_liaison,
    tlp_level,
)


def read_marking(marking_id: str, definition: dict[str, Any] | None) -> Handling:
    """The handling that ``definition`` (the marking-definition object, None if the store
    does not hold it) states; UnknownMarking if it is not one the policy understands."""
    level = tlp_level(marking_id)
    if level is not None:
        return Handling(tlp=level)
    if definition is None:
        raise UnknownMarking(f"unknown marking {marking_id}: its definition is not held")
    extensions = definition.get("extensions") or {}
    if isinstance(extensions.get(LIAISON_EXTENSION), dict):
        return read_liaison(marking_id, extensions[LIAISON_EXTENSION])
    if isinstance(extensions.get(ACS_EXTENSION), dict):
        return read_acs(marking_id, extensions[ACS_EXTENSION])
    if definition.get("definition_type") == "statement" and not extensions:
        return STATEMENT
    raise UnknownMarking(f"unknown marking {marking_id}")
