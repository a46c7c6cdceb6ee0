"""TAXII 2.1 media types and content negotiation."""

from __future__ import annotations

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"
_ACCEPTABLE = {"*/*", "application/*", "application/taxii+json"}


def _parts(value: str) -> tuple[str, dict[str, str]]:
    kind, *params = (part.strip() for part in value.split(";"))
    parsed = {}
    for param in params:
        name, _, val = param.partition("=")
        parsed[name.strip().lower()] = val.strip().strip('"')
    return kind.lower(), parsed


def accepts_taxii(accept: str | None) -> bool:
    """Whether an Accept header admits TAXII 2.1 JSON (a missing header does)."""
    if accept is None or not accept.strip():
        return True
    for item in accept.split(","):
        kind, params = _parts(item)
        if kind in _ACCEPTABLE and params.get("version", "2.1") == "2.1":
            return True
    return False


def is_taxii_content(content_type: str | None) -> bool:
    """Whether a request body's Content-Type is TAXII 2.1 JSON."""
    if not content_type:
        return False
    kind, params = _parts(content_type)
    return kind == "application/taxii+json" and params.get("version", "2.1") == "2.1"
