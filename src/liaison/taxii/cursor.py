"""The ``next`` cursor of a TAXII page: opaque to the client and tamper-proof.

It carries the ``date_added`` of the last version served and binds it to the partner, the
collection and the filters it was made for, under an HMAC-SHA256 keyed by a secret derived
from the node's signing key. Pagination therefore keeps no state in the server, survives a
restart, works across several API processes, and a cursor cannot be forged, altered or
replayed by another partner or for other filters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from liaison.errors import InputError


class BadCursor(InputError):
    title = "Invalid next"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _digest(scope: str) -> str:
    # The cursor names its scope without revealing it.
    return hashlib.sha256(scope.encode()).hexdigest()[:24]


class Cursors:
    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"liaison taxii cursor\x00" + key).digest()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def make(self, scope: str, last_added: int) -> str:
        """A cursor for the page after ``last_added`` within ``scope`` (partner, collection
        and filters, as one string)."""
        payload = json.dumps([_digest(scope), last_added], separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def read(self, scope: str, cursor: str) -> int:
        """The ``date_added`` a cursor made for ``scope`` resumes after; BadCursor otherwise."""
        try:
            encoded, mac = cursor.split(".", 1)
            payload = _unb64(encoded)
            if not hmac.compare_digest(_unb64(mac), self._mac(payload)):
                raise ValueError("signature")
            cursor_scope, last_added = json.loads(payload)
        except (ValueError, TypeError, json.JSONDecodeError):
            raise BadCursor("next is not a cursor this server issued") from None
        if cursor_scope != _digest(scope) or not isinstance(last_added, int):
            raise BadCursor("next was issued for other filters or another collection")
        return last_added
