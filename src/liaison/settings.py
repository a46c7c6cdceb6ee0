"""Settings, read once from the environment.

Every setting is an environment variable named in ``SETTINGS``; ``docs/configuration.md``
documents each one (a test fails when one is missing there).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from liaison.errors import ConfigError

MIB = 1024 * 1024

# name -> default (None: derived from another setting)
SETTINGS: dict[str, str | None] = {
    "LIAISON_HOME": "./liaison-data",
    "LIAISON_DATABASE_URL": None,
    "LIAISON_MAX_BUNDLE_BYTES": str(20 * MIB),
    "LIAISON_MAX_NESTING": "32",
    "LIAISON_MAX_STRING_BYTES": str(4 * MIB),
    "LIAISON_VALIDATION_WORKERS": "0",
    "LIAISON_CLIENT_CERT_HEADER": "",
    "LIAISON_TRUSTED_PROXIES": "",
    "LIAISON_SIGN_IN_FAILURES": "5",
    "LIAISON_SIGN_IN_MAX_BACKOFF": "900",
    "LIAISON_PASSWORD_CHECKS": "0",
    "LIAISON_LEDGER_ANCHOR": None,
}

# The ledger's anchor file (docs/ledger.md), in LIAISON_HOME unless LIAISON_LEDGER_ANCHOR.
LEDGER_ANCHOR_FILE = "ledger-anchor.jsonl"


@dataclass(frozen=True)
class InputLimits:
    """What one payload may be before it is refused unread."""

    max_bytes: int = 20 * MIB
    max_nesting: int = 32
    max_string_bytes: int = 4 * MIB


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    limits: InputLimits
    # 0 means one per core; 1 validates in this process.
    validation_workers: int
    # Mutual TLS through a terminating proxy: the header in which it passes the verified
    # client certificate's SHA-256 fingerprint, and the proxy addresses trusted to set it.
    client_cert_header: str = ""
    trusted_proxies: frozenset[str] = frozenset()
    # TAXII sign-in (docs/taxii.md): consecutive failures per user name or client address
    # before attempts wait (0: no throttling), the longest wait in seconds, and the Argon2
    # checks run at once in one server process (0: one per core).
    sign_in_failures: int = 5
    sign_in_max_backoff: int = 900
    password_checks: int = 0
    # Where every signed ledger checkpoint is also kept; None: LEDGER_ANCHOR_FILE in home.
    ledger_anchor: Path | None = None

    @property
    def ledger_anchor_file(self) -> Path:
        if self.ledger_anchor is not None:
            return self.ledger_anchor
        return self.home / LEDGER_ANCHOR_FILE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            value = env.get(name)
            if value is None:
                value = SETTINGS[name]
            assert value is not None
            return value

        def get_int(name: str) -> int:
            raw = get(name)
            try:
                value = int(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
            if value < 0:
                raise ConfigError(f"{name} must not be negative, not {value}")
            return value

        home = Path(get("LIAISON_HOME")).expanduser()
        url = env.get("LIAISON_DATABASE_URL") or f"sqlite:///{(home / 'liaison.db').resolve()}"
        if not (url.startswith("sqlite:///") or url.startswith("postgresql+psycopg://")):
            raise ConfigError(
                "LIAISON_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL"
            )
        anchor = env.get("LIAISON_LEDGER_ANCHOR", "").strip()
        limits = InputLimits(
            max_bytes=get_int("LIAISON_MAX_BUNDLE_BYTES"),
            max_nesting=get_int("LIAISON_MAX_NESTING"),
            max_string_bytes=get_int("LIAISON_MAX_STRING_BYTES"),
        )
        if get_int("LIAISON_SIGN_IN_MAX_BACKOFF") < 1:
            raise ConfigError("LIAISON_SIGN_IN_MAX_BACKOFF must be at least 1 (seconds)")
        return cls(
            home=home,
            database_url=url,
            limits=limits,
            validation_workers=get_int("LIAISON_VALIDATION_WORKERS"),
            client_cert_header=get("LIAISON_CLIENT_CERT_HEADER").strip(),
            trusted_proxies=frozenset(
                a.strip() for a in get("LIAISON_TRUSTED_PROXIES").split(",") if a.strip()
            ),
            sign_in_failures=get_int("LIAISON_SIGN_IN_FAILURES"),
            sign_in_max_backoff=get_int("LIAISON_SIGN_IN_MAX_BACKOFF"),
            password_checks=get_int("LIAISON_PASSWORD_CHECKS"),
            ledger_anchor=Path(anchor).expanduser() if anchor else None,
        )
