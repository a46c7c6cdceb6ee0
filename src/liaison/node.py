"""The node: this agency's STIX identity, its Ed25519 signing key and its store.

The private key lives in ``$LIAISON_HOME/node.key`` (PKCS#8 PEM, mode 0600) and is never
overwritten; the store keeps the node's country, identity and public key, so a key that does
not belong to the store is detected.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liaison.errors import ConfigError, NodeConflict, NodeNotInitialised
from liaison.markings.tlp import TLP_CLEAR
from liaison.settings import Settings
from liaison.stix.ids import derived_id
from liaison.stix.timestamps import stix_now

# Every command imports this module (its defaults are in `liaison init --help`): what opens
# the store and the key (SQLAlchemy, Alembic, cryptography, the policy) is imported by the
# function that needs it, so that `liaison --help` does not pay for it.
if TYPE_CHECKING:
    import sqlalchemy as sa
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    from liaison.store.alliance import AllianceChanges

KEY_FILE = "node.key"
DEFAULT_COUNTRY = "CAN"
DEFAULT_NAME = "Canadian intelligence liaison node"


@dataclass(frozen=True)
class Node:
    country: str
    name: str
    identity_id: str
    public_key: Ed25519PublicKey
    engine: sa.Engine
    settings: Settings

    @property
    def key_fingerprint(self) -> str:
        return key_fingerprint(self.public_key)

    @property
    def public_key_hex(self) -> str:
        """The public key as partners pin it (``public_key`` in their alliance files)."""
        return _public_hex(self.public_key)

    def identity(self) -> dict[str, Any]:
        """The node's STIX identity object (latest version)."""
        from liaison.store.objects import versions_of

        with self.engine.connect() as connection:
            versions = versions_of(connection, self.identity_id)
        return versions[-1].object


def key_fingerprint(public_key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()


def _public_hex(public_key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def identity_object(country: str, name: str, created: str) -> dict[str, Any]:
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": derived_id("identity", f"agency:{country}"),
        "created": created,
        "modified": created,
        "name": name,
        "identity_class": "organization",
        "sectors": ["government-national"],
        # Who the node is is no secret to its partners.
        "object_marking_refs": [TLP_CLEAR],
    }


def load_signing_key(home: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = home / KEY_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NodeConflict(
            f"the node's signing key {path} is missing: restore it from backup"
        ) from None
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise NodeConflict(f"{path} is not an Ed25519 private key")
    return key


def _create_key(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # O_EXCL: never overwrite a key, even if another init raced us to it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def init_node(
    settings: Settings, country: str = DEFAULT_COUNTRY, name: str = DEFAULT_NAME
) -> tuple[Node, bool]:
    """Create the node, or check and open the existing one. True if it was created now."""
    import sqlalchemy as sa

    from liaison.alliance import country_code
    from liaison.ledger.log import Entry, append, origin_of
    from liaison.policy.grants import register_classes
    from liaison.store import schema
    from liaison.store.engine import create_engine, write_transaction
    from liaison.store.migrate import upgrade
    from liaison.store.objects import add_objects

    try:
        country = country_code(country)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.database_url)
    upgrade(engine)
    key_path = settings.home / KEY_FILE
    with write_transaction(engine) as connection:
        row = connection.execute(sa.select(schema.node)).first()
        if row is not None:
            if row.country != country:
                raise NodeConflict(
                    f"this store already belongs to the node of {row.country}, not {country}"
                )
            node = _open(engine, settings, row)
            return node, False
        key = load_signing_key(settings.home) if key_path.exists() else _create_key(key_path)
        identity = identity_object(country, name, stix_now())
        connection.execute(
            schema.node.insert().values(
                id=1,
                country=country,
                name=name,
                identity_id=identity["id"],
                public_key=_public_hex(key.public_key()),
            )
        )
        register_classes(connection, add_objects(connection, [identity]).classes)
        public = key.public_key()
        append(
            connection,
            [
                Entry(
                    "node-key",
                    {
                        "country": country,
                        "public_key": _public_hex(public),
                        "origin": origin_of(country, public),
                    },
                )
            ],
        )
    return open_node(settings), True


def open_node(settings: Settings) -> Node:
    """The initialised node of ``settings``; NodeNotInitialised if there is none, in which
    case nothing was created (no home, no database file)."""
    import sqlalchemy as sa

    from liaison.store import schema
    from liaison.store.engine import create_engine
    from liaison.store.migrate import current_revision, head_revision

    require_store(settings)
    engine = create_engine(settings.database_url)
    try:
        revision = current_revision(engine)
    except sa.exc.OperationalError as exc:
        raise NodeNotInitialised(f"cannot open the store: {exc.orig}") from None
    if revision is None:
        raise NodeNotInitialised(
            f"no node in {settings.home} ({_safe_url(engine)}): run `liaison init` first"
        )
    if revision != head_revision():
        raise NodeNotInitialised(
            f"the store is at schema {revision}, this version needs {head_revision()}: "
            "run `liaison upgrade`"
        )
    with engine.connect() as connection:
        row = connection.execute(sa.select(schema.node)).first()
    if row is None:
        raise NodeNotInitialised("the store has no node: run `liaison init` first")
    return _open(engine, settings, row)


def require_store(settings: Settings) -> None:
    """NodeNotInitialised, before anything is created, if the SQLite store does not exist."""
    from liaison.store.engine import sqlite_file

    path = sqlite_file(settings.database_url)
    if path is not None and not path.is_file():
        raise NodeNotInitialised(
            f"no node in {settings.home} ({path} does not exist): run `liaison init` first"
        )


def _open(engine: sa.Engine, settings: Settings, row: sa.Row) -> Node:
    from liaison.ledger import anchor

    key = load_signing_key(settings.home)
    if _public_hex(key.public_key()) != row.public_key:
        raise NodeConflict(f"the signing key in {settings.home / KEY_FILE} is not this node's key")
    # Whatever signs a checkpoint through this store also keeps it in the anchor file.
    anchor.bind(engine, settings.ledger_anchor_file)
    return Node(
        country=row.country,
        name=row.name,
        identity_id=row.identity_id,
        public_key=key.public_key(),
        engine=engine,
        settings=settings,
    )


def _safe_url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def apply_alliance(node: Node, path: Path) -> AllianceChanges:
    """Apply an alliance file to the node's store (its node must be this node), record the
    change and re-decide every release class."""
    from liaison.alliance import load_alliance_file
    from liaison.policy.grants import record_change, redecide, set_rules
    from liaison.store.alliance import save_alliance
    from liaison.store.engine import write_transaction

    alliance = load_alliance_file(path)
    if alliance.node.country != node.country:
        raise ConfigError(
            f"{path} describes the node of {alliance.node.country}, but this node is {node.country}"
        )
    with write_transaction(node.engine) as connection:
        changes = save_alliance(
            connection, alliance.partners, alliance.communities, alliance.collections
        )
        rules_changed = set_rules(connection, alliance.rules)
        if changes.any or rules_changed:
            record_change(
                connection,
                "alliance",
                {
                    "file": str(path),
                    "added": changes.added,
                    "updated": changes.updated,
                    "removed": changes.removed,
                    "rules": alliance.rules.model_dump(mode="json"),
                },
            )
            redecide(connection)
        return changes
