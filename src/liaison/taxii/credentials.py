"""Partners' TAXII credentials: issuing them, and checking what a client presents.

Each partner holds one live set: a username and password for HTTP Basic (TAXII's baseline)
and an API token for ``Authorization: Bearer``. Only Argon2 hashes are stored (argon2-cffi);
the secrets are shown once, when issued. Issuing a new set revokes the old one at once.

Argon2 is slow on purpose, so a verified secret is remembered in this process for a short
while; the credential row is still read on every request, so a revocation takes effect on the
next one.

Signing in (docs/taxii.md, "Sign-in and throttling"): consecutive failures are counted per
user name and per client address in the store, so every server process sees them; past a
threshold, attempts are refused (429, Retry-After) before any secret is checked, for a backoff
that doubles with each further failure. An unknown or revoked name costs one Argon2 check
against a dummy hash of the same parameters, as a known one does, and at most a fixed number
of checks run at once in a process (a full house answers 503 at once instead of queueing).
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import ARGON2_VERSION
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from liaison.errors import (
    ChecksBusy,
    InputError,
    Throttled,
    UnknownPartner,
)
from liaison.ledger.log import Entry, append
from liaison.settings import Settings
from liaison.stix.timestamps import now_micros
from liaison.store.engine import upsert, write_transaction
from liaison.store.schema import client_certificates, credentials, partners, sign_in_failures

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


def issue_credentials(
    connection: sa.Connection, partner: str, hasher: PasswordHasher | None = None
) -> IssuedCredentials:
    """New credentials for ``partner``; its previous ones stop working. ``hasher``: the
    Argon2 parameters (tests pass cheap ones; the server's checks must use the same)."""
    hasher = hasher or _HASHER
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
            password_hash=hasher.hash(issued.password),
            token_hash=hasher.hash(issued.token),
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


USER = "user"
ADDRESS = "address"
Subject = tuple[str, str]  # (USER or ADDRESS, the name or address as stored)

# A counter with no failure for this long starts again from zero (and its row is deleted).
FORGET_AFTER = 24 * 3600.0
_MICROS = 1_000_000


def subject_of(kind: str, value: str) -> Subject:
    """How a user name or address is keyed in the store: as it is when short and printable,
    else by its SHA-256 (a client chooses what it presents)."""
    if len(value) <= 100 and value.isprintable():
        return (kind, value)
    return (kind, "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest())


def client_address(peer: str, forwarded_for: Sequence[str], trusted_proxies: Iterable[str]) -> str:
    """The address a request comes from: the socket peer; or, when the peer is one of the
    trusted proxies, the nearest address in X-Forwarded-For that is not a trusted proxy."""
    trusted = frozenset(trusted_proxies)
    if peer not in trusted:
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    return hops[0] if hops else peer


class SignInThrottle:
    """Consecutive failed sign-ins per user name and per client address, kept in the store
    so that every server process on it sees the same counts.

    After ``threshold`` consecutive failures a subject waits ``first_backoff`` seconds after
    its last failure, twice as long after each further one, at most ``max_backoff``. Attempts
    refused while it waits are not counted. A success resets the user name's counter (not the
    address's); a counter with no failure for ``forget_after`` seconds is forgotten. ``clock``
    gives seconds since the epoch (wall time: it is shared between processes)."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        threshold: int = 5,
        first_backoff: float = 1.0,
        max_backoff: float = 900.0,
        forget_after: float = FORGET_AFTER,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if threshold < 1:
            raise ValueError("the threshold is at least one failure")
        self.threshold = threshold
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.forget_after = forget_after
        self._engine = engine
        self._clock = clock

    def backoff(self, failures: int) -> float:
        """Seconds a subject with ``failures`` consecutive failures waits after the last."""
        if failures < self.threshold:
            return 0.0
        doublings = min(failures - self.threshold, 64)
        return min(self.first_backoff * 2.0**doublings, self.max_backoff)

    def _now(self) -> int:
        return int(self._clock() * _MICROS)

    def check(self, connection: sa.Connection, subjects: Sequence[Subject]) -> dict[Subject, int]:
        """The live failure counts of ``subjects`` (one indexed read); raises Throttled while
        any of them must wait."""
        if not subjects:
            return {}
        t = sign_in_failures.c
        rows = connection.execute(
            sa.select(t.kind, t.subject, t.failures, t.last_failure).where(
                sa.or_(*(sa.and_(t.kind == kind, t.subject == value) for kind, value in subjects))
            )
        ).all()
        now = self._now()
        forgotten = now - int(self.forget_after * _MICROS)
        live: dict[Subject, int] = {}
        until = now
        for row in rows:
            if row.last_failure < forgotten:
                continue
            live[(row.kind, row.subject)] = row.failures
            until = max(until, row.last_failure + int(self.backoff(row.failures) * _MICROS))
        if until > now:
            wait = math.ceil((until - now) / _MICROS)
            raise Throttled(f"too many failed sign-ins: try again in {wait} s", wait)
        return live

    def failed(self, subjects: Sequence[Subject]) -> None:
        """Count one more failure for each of ``subjects`` (one short write transaction, which
        also deletes forgotten counters)."""
        if not subjects:
            return
        now = self._now()
        forgotten = now - int(self.forget_after * _MICROS)
        t = sign_in_failures.c
        with write_transaction(self._engine) as connection:
            for kind, value in sorted(set(subjects)):
                insert = upsert(connection, sign_in_failures).values(
                    kind=kind, subject=value, failures=1, last_failure=now
                )
                connection.execute(
                    insert.on_conflict_do_update(
                        index_elements=[t.kind, t.subject],
                        set_={
                            "failures": sa.case(
                                (t.last_failure < forgotten, 1), else_=t.failures + 1
                            ),
                            "last_failure": now,
                        },
                    )
                )
            connection.execute(sign_in_failures.delete().where(t.last_failure < forgotten))

    def succeeded(self, live: dict[Subject, int]) -> None:
        """Reset the user name's counter after a success; no write when it had none."""
        users = [key for key in live if key[0] == USER]
        if not users:
            return
        t = sign_in_failures.c
        with write_transaction(self._engine) as connection:
            for kind, value in users:
                connection.execute(
                    sign_in_failures.delete().where(t.kind == kind, t.subject == value)
                )


def dummy_hash(hasher: PasswordHasher) -> str:
    """An Argon2 hash with ``hasher``'s parameters that no secret matches (a random digest):
    checking a secret against it costs what checking against a real one does."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode().rstrip("=")

    return (
        f"$argon2{hasher.type.name.lower()}$v={ARGON2_VERSION}"
        f"$m={hasher.memory_cost},t={hasher.time_cost},p={hasher.parallelism}"
        f"${b64(secrets.token_bytes(hasher.salt_len))}${b64(secrets.token_bytes(hasher.hash_len))}"
    )


def default_checks() -> int:
    """Password checks at once in one process by default: one per core it may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class Authenticator:
    """Maps what a client presents to a partner code, or None.

    ``throttle`` (None: none) counts failures; ``hasher`` gives the Argon2 parameters of the
    dummy hash (those the credentials were issued with); at most ``checks`` Argon2 checks run
    at once (0: one per core), and a check that finds every slot taken for ``wait`` seconds
    raises ChecksBusy instead of queueing."""

    def __init__(
        self,
        throttle: SignInThrottle | None = None,
        *,
        hasher: PasswordHasher | None = None,
        checks: int = 0,
        wait: float = 10.0,
        cache_seconds: float = 300.0,
    ) -> None:
        self._verified: dict[tuple[str, str, str], float] = {}
        self._cache_seconds = cache_seconds
        self.throttle = throttle
        self._hasher = hasher or _HASHER
        self._dummy = dummy_hash(self._hasher)
        self.checks = checks or default_checks()
        self._slots = threading.BoundedSemaphore(self.checks)
        self._wait = wait

    def basic(
        self, connection: sa.Connection, username: str, password: str, address: str | None = None
    ) -> str | None:
        subjects = [subject_of(USER, username)] if username else []
        if address is not None:
            subjects.append(subject_of(ADDRESS, address))
        live = self.throttle.check(connection, subjects) if self.throttle else {}
        found = None
        if username:
            row = None
            if _queryable(username):
                row = connection.execute(
                    sa.select(
                        credentials.c.id, credentials.c.partner, credentials.c.password_hash
                    ).where(credentials.c.username == username, credentials.c.revoked.is_(None))
                ).first()
            if row is None:
                # Unknown or revoked: the same Argon2 check as a known name costs.
                self._verify(self._dummy, password)
            else:
                found = self._check(row.id, "password", row.password_hash, password, row.partner)
        self._settle(subjects, live, found)
        return found

    def bearer(
        self, connection: sa.Connection, token: str, address: str | None = None
    ) -> str | None:
        subjects = [subject_of(ADDRESS, address)] if address is not None else []
        live = self.throttle.check(connection, subjects) if self.throttle else {}
        found = None
        # The token's shape is public: a malformed one is refused without a check.
        if token.startswith(TOKEN_PREFIX) and "_" in token[len(TOKEN_PREFIX) :]:
            credential_id = token[len(TOKEN_PREFIX) :].split("_", 1)[0]
            row = None
            if _queryable(credential_id):
                row = connection.execute(
                    sa.select(credentials.c.partner, credentials.c.token_hash).where(
                        credentials.c.id == credential_id, credentials.c.revoked.is_(None)
                    )
                ).first()
            if row is None:
                self._verify(self._dummy, token)
            else:
                found = self._check(credential_id, "token", row.token_hash, token, row.partner)
        self._settle(subjects, live, found)
        return found

    def certificate(self, connection: sa.Connection, fingerprint: str) -> str | None:
        normalized = fingerprint.replace(":", "").strip().lower()
        if not _queryable(normalized):
            return None
        return connection.execute(
            sa.select(client_certificates.c.partner).where(
                client_certificates.c.fingerprint == normalized,
                client_certificates.c.revoked.is_(None),
            )
        ).scalar_one_or_none()

    def _settle(self, subjects: list[Subject], live: dict[Subject, int], found: str | None) -> None:
        if self.throttle is None:
            return
        if found is None:
            self.throttle.failed(subjects)
        else:
            self.throttle.succeeded(live)

    def _check(
        self, credential_id: str, kind: str, stored: str, presented: str, partner: str
    ) -> str | None:
        # Only the right secret is ever remembered, so a hit tells nothing to one who lacks it.
        key = (credential_id, kind, hashlib.sha256(presented.encode()).hexdigest())
        now = time.monotonic()
        if self._verified.get(key, 0.0) > now:
            return partner
        if not self._verify(stored, presented):
            return None
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[key] = now + self._cache_seconds
        return partner

    def _verify(self, stored: str, presented: str) -> bool:
        """One Argon2 check, in one of the process's slots."""
        if not self._slots.acquire(timeout=self._wait):
            raise ChecksBusy("the server is busy checking credentials: try again shortly", 1)
        try:
            self._hasher.verify(stored, presented)
            return True
        except (VerificationError, InvalidHashError):
            return False
        finally:
            self._slots.release()


def authenticator_for(engine: sa.Engine, settings: Settings) -> Authenticator:
    """The server's authenticator under ``settings`` (the sign-in settings)."""
    throttle = (
        SignInThrottle(
            engine,
            threshold=settings.sign_in_failures,
            max_backoff=float(settings.sign_in_max_backoff),
        )
        if settings.sign_in_failures
        else None
    )
    return Authenticator(throttle, checks=settings.password_checks)


def _queryable(text: str) -> bool:
    # PostgreSQL text cannot hold NUL; no stored name, id or fingerprint has one.
    return "\x00" not in text
