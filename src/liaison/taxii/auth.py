"""Authentication backend of the TAXII server: who is asking (a partner's code), from HTTP
Basic, a bearer token, or a client certificate a trusted proxy vouches for."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request

from liaison.taxii.context import context_of
from liaison.taxii.credentials import client_address
from liaison.taxii.errors import TaxiiError
from liaison.taxii.media import TAXII_MEDIA_TYPE, accepts_taxii


@contextmanager
def connection(request: Request) -> Iterator[sa.Connection]:
    """A read connection for the handler's work: one snapshot from its rights to its
    response. Opened inside the handler, never held while a request waits for a thread, so
    a process holds at most two connections per request thread (a read and a write)."""
    with context_of(request).node.engine.connect() as conn:
        yield conn
        # It wrote nothing: ended by COMMIT, not by the pool's ROLLBACK, after which psycopg
        # forgets the statements it prepared and PostgreSQL would plan each page anew.
        conn.commit()


def partner(request: Request) -> str:
    """The code of the partner whose credentials the request carries; 401 otherwise.
    Throttled (429) or busy (503) sign-ins raise SignInRefused before any secret is checked."""
    if not accepts_taxii(request.headers.get("accept")):
        raise TaxiiError(406, "Not acceptable", f"this server speaks {TAXII_MEDIA_TYPE}")
    context = context_of(request)
    settings = context.node.settings
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    found: str | None = None
    peer = request.client.host if request.client else ""
    # Failures count per address too: a trusted proxy's X-Forwarded-For names it.
    address = client_address(
        peer, request.headers.getlist("x-forwarded-for"), settings.trusted_proxies
    )
    if scheme.lower() == "basic":
        try:
            username, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            username, password = "", ""
        with connection(request) as conn:
            found = context.sign_in.basic(conn, username, password, address)
    elif scheme.lower() == "bearer":
        with connection(request) as conn:
            found = context.sign_in.bearer(conn, value.strip(), address)
    elif not header and settings.client_cert_header:
        # Mutual TLS, terminated by a proxy that passes the verified certificate's
        # fingerprint; only proxies the node trusts may speak for a client.
        presented = request.headers.get(settings.client_cert_header, "")
        if presented and peer in settings.trusted_proxies:
            with connection(request) as conn:
                found = context.sign_in.certificate(conn, presented)
    if found is None:
        raise TaxiiError(401, "Unauthorized", "valid credentials are required")
    return found


Partner = Annotated[str, Depends(partner)]
