"""Untrusted bytes to a list of STIX objects, or an InputError naming the problem.

Nothing here trusts the payload: the size is checked before it is decoded, nesting depth and
string sizes before any object is looked at, and the shape (a bundle or one object, each
with a ``type`` and an ``id``) before anything is validated or stored.
"""

from __future__ import annotations

import json
import re
from typing import Any

from liaison.errors import HostileStructure, MalformedJSON, NotStix, PayloadTooLarge
from liaison.settings import InputLimits

StixObject = dict[str, Any]

_ID = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]--[0-9a-fA-F-]{36}$")


def parse_payload(data: bytes, limits: InputLimits) -> list[StixObject]:
    """The objects of a STIX 2.1 bundle, or of a single object, in ``data``."""
    return objects_of(load_json(data, limits))


def load_json(data: bytes, limits: InputLimits, what: str = "payload") -> Any:
    """The JSON document in untrusted ``data`` (``what`` names it in errors), within the
    limits on size, nesting and strings."""
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            f"{what} of {len(data):,} bytes exceeds the limit of {limits.max_bytes:,} bytes"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedJSON(f"{what} is not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise MalformedJSON(f"{what} is empty")
    try:
        document = json.loads(text)
    except RecursionError:
        raise HostileStructure(
            f"{what} is nested deeper than the limit of {limits.max_nesting} levels"
        ) from None
    except json.JSONDecodeError as exc:
        raise MalformedJSON(
            f"{what} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    check_structure(document, limits)
    return document


def check_structure(document: Any, limits: InputLimits) -> None:
    """Refuse nesting deeper than the limit and strings longer than the limit."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            # UTF-8 is at most 4 bytes a character: only measure strings that might exceed.
            if len(value) * 4 > limits.max_string_bytes and (
                len(value.encode("utf-8")) > limits.max_string_bytes
            ):
                raise HostileStructure(
                    f"a string of {len(value.encode('utf-8')):,} bytes exceeds the limit of "
                    f"{limits.max_string_bytes:,} bytes"
                )
        elif isinstance(value, dict | list):
            if depth > limits.max_nesting:
                raise HostileStructure(
                    f"payload is nested deeper than the limit of {limits.max_nesting} levels"
                )
            children = value.items() if isinstance(value, dict) else enumerate(value)
            for key, child in children:
                if isinstance(key, str):
                    stack.append((key, depth))
                stack.append((child, depth + 1))


def looks_like_misp(document: Any) -> bool:
    """Whether a document that is no STIX is a MISP event: ``{"Event": {...}}`` as MISP
    exports it, a list of those, or the bare event (with its ``Attribute`` or ``Orgc``)."""
    if isinstance(document, list) and document:
        document = document[0]
    if not isinstance(document, dict) or "type" in document:
        return False
    return isinstance(document.get("Event"), dict) or bool({"Attribute", "Orgc"} & set(document))


def objects_of(document: Any) -> list[StixObject]:
    """The objects of a parsed STIX bundle or single object; NotStix for anything else."""
    if not isinstance(document, dict):
        raise NotStix("payload is not a STIX bundle or object: expected a JSON object")
    kind = document.get("type")
    if kind == "bundle":
        objects = document.get("objects", [])
        if not isinstance(objects, list):
            raise NotStix("bundle 'objects' is not a list")
        if not isinstance(document.get("id"), str) or not _ID.match(document["id"]):
            raise NotStix("bundle has no valid 'id'")
        for index, obj in enumerate(objects):
            _check_object(obj, f"object {index} of the bundle")
        return objects
    _check_object(document, "payload")
    return [document]


def _check_object(obj: Any, where: str) -> None:
    if not isinstance(obj, dict):
        raise NotStix(f"{where} is not a JSON object")
    kind = obj.get("type")
    ident = obj.get("id")
    if not isinstance(kind, str) or not kind:
        raise NotStix(f"{where} has no 'type': not a STIX object")
    if kind == "bundle":
        raise NotStix(f"{where} is a bundle inside a bundle")
    if not isinstance(ident, str) or not _ID.match(ident):
        raise NotStix(f"{where} has no valid STIX 'id'")
    if ident.split("--", 1)[0] != kind:
        raise NotStix(f"{where}: id {ident!r} does not match type {kind!r}")
