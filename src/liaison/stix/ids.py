"""Deterministic STIX ids for things the node names itself (its identity, its partners')."""

from __future__ import annotations

import uuid

# Liaison's own UUIDv5 namespace; changing it would change every derived id.
LIAISON_NAMESPACE = uuid.UUID("b362055d-c43b-4c11-b6e4-1ee05fd0d22e")


def derived_id(stix_type: str, name: str) -> str:
    """``<stix_type>--<uuid5(LIAISON_NAMESPACE, stix_type + ':' + name)>``."""
    return f"{stix_type}--{uuid.uuid5(LIAISON_NAMESPACE, f'{stix_type}:{name}')}"
