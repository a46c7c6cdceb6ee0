"""Small, valid STIX 2.1 objects for tests."""

from __future__ import annotations

import uuid
from typing import Any

from liaison.markings.tlp import TLP_CLEAR

AUTHOR = "identity--11111111-1111-4111-8111-111111111111"


def indicator(
    n: int = 0, modified: str = "2017-05-25T11:05:00.000Z", object_id: str | None = None
) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": object_id or f"indicator--{uuid.uuid5(uuid.NAMESPACE_URL, f'ind-{n}')}",
        "created": "2017-05-25T11:05:00.000Z",
        "modified": modified,
        "created_by_ref": AUTHOR,
        "name": f"indicator {n}",
        "pattern": f"[ipv4-addr:value = '198.51.100.{n % 250}']",
        "pattern_type": "stix",
        "valid_from": "2017-05-25T11:05:00Z",
        "object_marking_refs": [TLP_CLEAR],
    }


def bundle(*objects: dict[str, Any]) -> dict[str, Any]:
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": list(objects)}


def invalid_indicator(n: int = 0) -> dict[str, Any]:
    obj = indicator(n)
    del obj["pattern"]
    return obj
