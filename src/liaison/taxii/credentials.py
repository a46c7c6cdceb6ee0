"""Partners' TAXII credentials: issuing them, and checking what a client presents.

Each partner holds one live set: a username and password for HTTP Basic (TAXII's baseline)
and an API token for ``Authorization: Bearer``. Only Argon2 hashes are stored (argon2-cffi);
the secrets are shown once, when issued. Issuing a new set revokes the old one at once.

Argon2 is slow on purpose, so a verified secret is remembered in this process for a short
while; the credential row is still read on every request, so a revocation takes effect on the
next one.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from liaison.errors import UnknownPartner
from liaison.stix.timestamps import now_micros
from liaison.store.schema import credentials, partners

_HASHER = PasswordHasher()
TOKEN_PREFIX = "lsn_"


@dataclass(frozen=True)
class IssuedCredentials:
    partner: str
    username: str
    password: str
    token: str

    def as_json(self) -> dict[str, str]:
        return {
            "partner": self.partner,
            "username": self.username,
            "password": self.password,
            "token": self.token,
        }


def issue_credentials(connection: sa.Connection, partner: str) -> IssuedCredentials:
    """New credentials for ``partner``; its previous ones stop working."""
    known = connection.execute(sa.select(partners.c.code).where(partners.c.code == partner)).first()
    if known is None:
        raise UnknownPartner(f"{partner} is not a known partner")
    revoke_credentials(connection, partner)
    credential_id = secrets.token_hex(8)
    issued = IssuedCredentials(
        partner=partner,
        username=f"{partner.lower()}-{credential_id[:8]}",
        password=secrets.token_urlsafe(24),
        token=f"{TOKEN_PREFIX}{credential_id}_{secrets.token_urlsafe(32)}",
    )
    connection.execute(
        credentials.insert().values(
            id=credential_id,
            partner=partner,
            username=issued.username,
            password_hash=_HASHER.hash(issued.password),
            token_hash=_HASHER.hash(issued.token),
            created=now_micros(),
        )
    )
    return issued


def revoke_credentials(connection: sa.Connection, partner: str) -> int:
    """Revoke every live credential of ``partner``; how many there were."""
    result = connection.execute(
        credentials.update()
        .where(credentials.c.partner == partner, credentials.c.revoked.is_(None))
        .values(revoked=now_micros())
    )
    return result.rowcount


class Authenticator:
    """Maps what a client presents to a partner code, or None."""

    def __init__(self, cache_seconds: float = 300.0) -> None:
        self._verified: dict[tuple[str, str, str], float] = {}
        self._cache_seconds = cache_seconds

    def basic(self, connection: sa.Connection, username: str, password: str) -> str | None:
        row = connection.execute(
            sa.select(credentials.c.id, credentials.c.partner, credentials.c.password_hash).where(
                credentials.c.username == username, credentials.c.revoked.is_(None)
            )
        ).first()
        if row is None:
            return None
        return self._check(row.id, "password", row.password_hash, password, row.partner)

    def bearer(self, connection: sa.Connection, token: str) -> str | None:
        if not token.startswith(TOKEN_PREFIX) or "_" not in token[len(TOKEN_PREFIX) :]:
            return None
        credential_id = token[len(TOKEN_PREFIX) :].split("_", 1)[0]
        row = connection.execute(
            sa.select(credentials.c.partner, credentials.c.token_hash).where(
                credentials.c.id == credential_id, credentials.c.revoked.is_(None)
            )
        ).first()
        if row is None:
            return None
        return self._check(credential_id, "token", row.token_hash, token, row.partner)

    def _check(
        self, credential_id: str, kind: str, stored: str, presented: str, partner: str
    ) -> str | None:
        key = (credential_id, kind, hashlib.sha256(presented.encode()).hexdigest())
        now = time.monotonic()
        if self._verified.get(key, 0.0) > now:
            return partner
        try:
            _HASHER.verify(stored, presented)
        except (VerificationError, InvalidHashError):
            return None
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[key] = now + self._cache_seconds
        return partner
