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
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from liaison.errors import InputError, UnknownPartner
from liaison.ledger.log import Entry, append
from liaison.stix.timestamps import now_micros
from liaison.store.schema import client_certificates, credentials, partners

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
    append(
        connection,
        [
            Entry(
                "credentials",
                {"partner": partner, "action": "issued", "username": issued.username},
                partner=partner,
            )
        ],
    )
    return issued


def revoke_credentials(connection: sa.Connection, partner: str) -> int:
    """Revoke every live credential of ``partner``; how many there were."""
    result = connection.execute(
        credentials.update()
        .where(credentials.c.partner == partner, credentials.c.revoked.is_(None))
        .values(revoked=now_micros())
    )
    if result.rowcount:
        append(
            connection,
            [Entry("credentials", {"partner": partner, "action": "revoked"}, partner=partner)],
        )
    return result.rowcount


def fingerprint_of(pem_or_der: bytes) -> str:
    """The SHA-256 fingerprint (hex) of a certificate's DER encoding."""
    try:
        certificate = x509.load_pem_x509_certificate(pem_or_der)
    except ValueError:
        try:
            certificate = x509.load_der_x509_certificate(pem_or_der)
        except ValueError:
            raise InputError("not an X.509 certificate (PEM or DER)") from None
    return certificate.fingerprint(hashes.SHA256()).hex()


def add_certificate(connection: sa.Connection, partner: str, fingerprint: str) -> None:
    """Let the client certificate with this SHA-256 fingerprint stand for ``partner``."""
    if (
        connection.execute(sa.select(partners.c.code).where(partners.c.code == partner)).first()
        is None
    ):
        raise UnknownPartner(f"{partner} is not a known partner")
    normalized = fingerprint.replace(":", "").strip().lower()
    if len(normalized) != 64 or any(c not in "0123456789abcdef" for c in normalized):
        raise InputError("a certificate fingerprint is 64 hex digits (SHA-256)")
    connection.execute(
        client_certificates.delete().where(client_certificates.c.fingerprint == normalized)
    )
    connection.execute(
        client_certificates.insert().values(
            fingerprint=normalized, partner=partner, added=now_micros()
        )
    )
    append(
        connection,
        [Entry("certificate", {"partner": partner, "sha256": normalized}, partner=partner)],
    )


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

    def certificate(self, connection: sa.Connection, fingerprint: str) -> str | None:
        normalized = fingerprint.replace(":", "").strip().lower()
        return connection.execute(
            sa.select(client_certificates.c.partner).where(
                client_certificates.c.fingerprint == normalized,
                client_certificates.c.revoked.is_(None),
            )
        ).scalar_one_or_none()

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
