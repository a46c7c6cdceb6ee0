"""Peer nodes: the partners' Liaison nodes this node syncs with, as a TAXII client.

A peer is one partner's node: its URL, the partner it is (whose public key, pinned in the
alliance file, verifies what it originated), and the credentials its operator issued to this
node (what that node's `liaison partner credentials CAN --json` printed). The password and
token are kept encrypted at rest: AES-256-GCM under a key derived (HKDF-SHA256) from the
node's signing key, with the peer's name, URL, partner and username as associated data, so a
row edited in the database or copied to another peer no longer decrypts.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from liaison.errors import ConfigError, InputError, NodeConflict, NotFound, UnknownPartner
from liaison.stix.timestamps import now_micros
from liaison.store.schema import partners, peers

_INFO = b"liaison peer credentials v1"
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class LedgerCheck:
    """The peer's ledger at the last sync (``taxii.sync.check_ledger``)."""

    size: int | None  # of the checkpoint checked; None when none could be
    state: str  # "consistent", "rewritten" or "unverified"
    detail: str | None
    checked: int

    def as_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "state": self.state,
            "detail": self.detail,
            "checked": self.checked,
        }


@dataclass(frozen=True)
class Peer:
    name: str
    url: str
    partner: str
    username: str
    added: int
    ledger: LedgerCheck | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "partner": self.partner,
            "username": self.username,
            "added": self.added,
            "ledger": self.ledger.as_json() if self.ledger else None,
        }


@dataclass(frozen=True)
class PeerSecret:
    """What a peer's operator issued to this node; never shown, never stored in clear."""

    password: str
    token: str


def read_credentials(text: str, node_country: str) -> tuple[str, PeerSecret]:
    """(username, secret) from what the peer's `liaison partner credentials CODE --json`
    printed, which must be credentials for this node's country."""
    try:
        issued = json.loads(text)
    except ValueError:
        raise InputError("the credentials file is not JSON") from None
    fields = ("partner", "username", "password", "token")
    if not isinstance(issued, dict) or not all(isinstance(issued.get(f), str) for f in fields):
        raise InputError(f"the credentials file needs the strings {', '.join(fields)}")
    if issued["partner"].upper() != node_country:
        raise InputError(
            f"these credentials were issued to {issued['partner']}, not to this node "
            f"({node_country})"
        )
    return issued["username"], PeerSecret(issued["password"], issued["token"])


def add_peer(
    connection: sa.Connection,
    key: Ed25519PrivateKey,
    name: str,
    url: str,
    partner: str,
    username: str,
    secret: PeerSecret,
) -> Peer:
    """Record a peer; its partner must be known, with its node's public key pinned."""
    if not NAME.fullmatch(name):
        raise InputError(f"peer name {name!r}: lowercase letters, digits, '.', '_' or '-'")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"peer URL {url!r}: expected http(s)://host[:port]")
    pinned = connection.execute(
        sa.select(partners.c.public_key).where(partners.c.code == partner)
    ).first()
    if pinned is None:
        raise UnknownPartner(f"no partner {partner}: add it to the alliance file first")
    if not pinned.public_key:
        raise ConfigError(
            f"{partner} has no public_key in the alliance file: pin its node's key first "
            "(what that node's `liaison node` shows)"
        )
    if connection.execute(sa.select(peers.c.name).where(peers.c.name == name)).first():
        raise InputError(f"a peer named {name} exists: remove it first")
    peer = Peer(name, url.rstrip("/"), partner, username, now_micros())
    sealed = _seal(key, peer, secret)
    connection.execute(
        peers.insert().values(
            name=peer.name,
            url=peer.url,
            partner=peer.partner,
            username=peer.username,
            secret=sealed,
            added=peer.added,
        )
    )
    return peer


def remove_peer(connection: sa.Connection, name: str) -> None:
    if not connection.execute(peers.delete().where(peers.c.name == name)).rowcount:
        raise NotFound(f"no peer named {name}")


def _peer(row: sa.Row) -> Peer:
    ledger = None
    if row.ledger_state is not None:
        ledger = LedgerCheck(
            row.ledger_size, row.ledger_state, row.ledger_detail, row.ledger_checked
        )
    return Peer(row.name, row.url, row.partner, row.username, row.added, ledger)


def list_peers(connection: sa.Connection) -> list[Peer]:
    rows = connection.execute(sa.select(peers).order_by(peers.c.name))
    return [_peer(row) for row in rows]


def get_peer(connection: sa.Connection, name: str) -> Peer:
    row = connection.execute(sa.select(peers).where(peers.c.name == name)).first()
    if row is None:
        raise NotFound(f"no peer named {name}: `liaison peers` lists them")
    return _peer(row)


def keep_ledger_check(connection: sa.Connection, name: str, check: LedgerCheck) -> None:
    connection.execute(
        peers.update()
        .where(peers.c.name == name)
        .values(
            ledger_size=check.size,
            ledger_state=check.state,
            ledger_detail=check.detail,
            ledger_checked=check.checked,
        )
    )


def peer_secret(connection: sa.Connection, key: Ed25519PrivateKey, name: str) -> PeerSecret:
    """The decrypted credentials of peer ``name``."""
    peer = get_peer(connection, name)
    sealed = connection.execute(sa.select(peers.c.secret).where(peers.c.name == name)).scalar()
    try:
        blob = base64.b64decode(sealed, validate=True)
        clear = AESGCM(_key(key)).decrypt(blob[:12], blob[12:], _bound(peer))
    except (ValueError, InvalidTag):
        raise NodeConflict(
            f"the stored credentials of peer {name} do not decrypt under this node's key "
            "(edited, or from another node): add the peer again"
        ) from None
    values = json.loads(clear)
    return PeerSecret(values["password"], values["token"])


def _seal(key: Ed25519PrivateKey, peer: Peer, secret: PeerSecret) -> str:
    nonce = os.urandom(12)
    clear = json.dumps({"password": secret.password, "token": secret.token}).encode()
    sealed = AESGCM(_key(key)).encrypt(nonce, clear, _bound(peer))
    return base64.b64encode(nonce + sealed).decode("ascii")


def _bound(peer: Peer) -> bytes:
    """What the ciphertext is bound to: the row it belongs to."""
    return json.dumps([peer.name, peer.url, peer.partner, peer.username]).encode()


def _key(key: Ed25519PrivateKey) -> bytes:
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(raw)
