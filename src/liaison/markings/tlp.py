"""TLP 2.0 as the official STIX 2.1 marking-definitions (OASIS cti-stix-common-objects,
extension-definition-specifications/tlp-2.0): fixed ids, one property extension."""

from __future__ import annotations

from typing import Any

TLP_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"

TLP_CLEAR = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
TLP_GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
TLP_AMBER = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
TLP_AMBER_STRICT = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
TLP_RED = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"

# id -> the extension's tlp_2_0 value
TLP_LEVELS: dict[str, str] = {
    TLP_CLEAR: "clear",
    TLP_GREEN: "green",
    TLP_AMBER: "amber",
    TLP_AMBER_STRICT: "amber+strict",
    TLP_RED: "red",
}


def tlp_name(marking_id: str) -> str | None:
    """``TLP:CLEAR`` and so on for a TLP 2.0 id; None for any other id."""
    level = TLP_LEVELS.get(marking_id)
    return f"TLP:{level.upper()}" if level else None


def tlp_definition(marking_id: str) -> dict[str, Any]:
    """The official marking-definition object for a TLP 2.0 id."""
    level = TLP_LEVELS[marking_id]
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": marking_id,
        "created": "2022-10-01T00:00:00.000Z",
        "name": f"TLP:{level.upper()}",
        "extensions": {TLP_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": level}},
    }
