"""Tables of the store. Alembic migrations in ``store/migrations`` create exactly these
(a test compares the migrated database with this metadata)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Every version of every STIX object, as received. A version is keyed on its id and its
# `modified` (or `created`, or 0 for objects with neither) in microseconds since the epoch.
objects = sa.Table(
    "objects",
    metadata,
    sa.Column("id", sa.String(300), primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("modified", sa.String(40)),
    sa.Column("type", sa.String(250), nullable=False),
    sa.Column("spec_version", sa.String(10), nullable=False),
    sa.Column("created_by_ref", sa.String(300)),
    sa.Column("revoked", sa.Boolean, nullable=False),
    sa.Column("latest", sa.Boolean, nullable=False),
    sa.Column("date_added", sa.BigInteger, nullable=False),
    sa.Column("received_from", sa.String(3)),
    # Who may version, delete or re-mark it: the node's country for its own objects, the
    # partner's code for a partner's (docs/policy.md, "What is ours stays ours").
    sa.Column("owner", sa.String(3), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    # policy.classes.class_key(body).id: derived, rebuilt by `liaison policy rebuild`.
    sa.Column("release_class", sa.String(64)),
    sa.Index("ix_objects_date_added", "date_added", unique=True),
    sa.Index("ix_objects_type_latest", "type", "latest"),
    sa.Index("ix_objects_created_by_ref", "created_by_ref"),
    sa.Index("ix_objects_class_added", "release_class", "date_added", "latest"),
    sa.Index("ix_objects_added_class", "date_added", "release_class", "latest"),
)

# Versions an officer withdrew from partners (`liaison withdraw`): their release class names
# the partners, who are then withheld them. A policy fact, recorded in the ledger.
withdrawals = sa.Table(
    "withdrawals",
    metadata,
    sa.Column("object_id", sa.String(300), primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("partner", sa.String(3), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("entry", sa.BigInteger),
)

# One row: the last date_added handed out. Writers lock it, so date_added is unique and
# grows in commit order (what TAXII's added_after needs).
clock = sa.Table(
    "clock",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_added", sa.BigInteger, nullable=False),
)

node = sa.Table(
    "node",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("country", sa.String(3), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("identity_id", sa.String(300), nullable=False),
    sa.Column("public_key", sa.String(64), nullable=False),
)

partners = sa.Table(
    "partners",
    metadata,
    sa.Column("code", sa.String(3), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("identity_id", sa.String(300), nullable=False),
    # NULL for a known non-partner, which is cleared for nothing.
    sa.Column("clearance_scale", sa.String(20)),
    sa.Column("clearance_level", sa.String(40)),
    sa.Column("trust", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("agreement", sa.Text, nullable=False),
    # The partner's Ed25519 public key (hex), pinned in the alliance file; NULL: none pinned.
    sa.Column("public_key", sa.String(64)),
)

communities = sa.Table(
    "communities",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column(
        "community",
        sa.String(100),
        sa.ForeignKey("communities.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    # A country code: a partner's, or the node's own.
    sa.Column("member", sa.String(3), primary_key=True),
    sa.Column("joined", sa.Date, primary_key=True),
    sa.Column("left", sa.Date),
)


# Derived from the objects (rebuildable): one row per release class, its canonical key.
release_classes = sa.Table(
    "release_classes",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("key", sa.Text, nullable=False),
)

# One decision per (partner, class): what the partner may see of the class's objects.
grants = sa.Table(
    "grants",
    metadata,
    sa.Column("partner", sa.String(3), primary_key=True),
    sa.Column("class_id", sa.String(64), primary_key=True),
    sa.Column("decision", sa.String(20), nullable=False),
    sa.Column("cuts", sa.Text, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("policy_version", sa.Integer, nullable=False),
    sa.Index("ix_grants_class", "class_id"),
)

# One row: the policy version, the node's rules, and until when the grants hold (the next
# date on which a community membership starts or ends).
policy_state = sa.Table(
    "policy_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("rules", sa.Text, nullable=False),
    sa.Column("decided_on", sa.Date),
    sa.Column("valid_until", sa.Date),
    # Bumped by database triggers on every change of grants, partners, communities,
    # memberships or collections: what the release path caches is keyed on it (migration 0008).
    sa.Column("serial", sa.BigInteger, nullable=False, server_default="0"),
)

# Every change of policy, partner or community, in order (the ledger will sign these).
policy_changes = sa.Table(
    "policy_changes",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    # Its entry in the disclosure ledger.
    sa.Column("entry", sa.BigInteger),
)


# A partner's TAXII credentials: a username and password (HTTP Basic) and an API token, each
# stored only as an Argon2 hash. Issuing new ones revokes the old.
credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("partner", sa.String(3), nullable=False),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("token_hash", sa.Text, nullable=False),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("revoked", sa.BigInteger),
    sa.Index("ix_credentials_username", "username"),
)

# Client certificates (SHA-256 of the DER) that identify a partner under mutual TLS.
client_certificates = sa.Table(
    "client_certificates",
    metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("partner", sa.String(3), nullable=False),
    sa.Column("added", sa.BigInteger, nullable=False),
    sa.Column("revoked", sa.BigInteger),
)

# TAXII collections as the alliance file configures them: a type filter and who may read and
# write (partner codes or community names).
collections = sa.Table(
    "collections",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("alias", sa.String(100), nullable=False, unique=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("types", sa.Text, nullable=False),
    sa.Column("readers", sa.Text, nullable=False),
    sa.Column("writers", sa.Text, nullable=False),
)

# Every object version delivered to a partner, the first time that copy went to it.
disclosures = sa.Table(
    "disclosures",
    metadata,
    sa.Column("partner", sa.String(3), primary_key=True),
    sa.Column("object_id", sa.String(300), primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("release_class", sa.String(64), nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    # Its entry in the disclosure ledger.
    sa.Column("entry", sa.BigInteger),
    # The versions disclosed to anybody (`liaison leak investigate` reads their texts).
    sa.Index("ix_disclosures_object", "object_id", "version"),
    # `ledger verify` reads them in ledger order, to match them with their entries.
    sa.Index("ix_disclosures_entry", "entry"),
)

# The fingerprint slots of a text (fingerprint/prepared.py), keyed on the SHA-256 of the text:
# finding them costs far more than using them, and they depend on nothing else.
text_slots = sa.Table(
    "text_slots",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("slots", sa.Text, nullable=False),
)

# TAXII status resources of partners' POSTs.
statuses = sa.Table(
    "statuses",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("partner", sa.String(3), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created", sa.BigInteger, nullable=False),
)

# The ledger (ledger/log.py): canonical JSON entries in order, the hashes of the perfect
# subtrees of their RFC 9162 Merkle tree, its head (one row, locked by each appender), the
# checkpoints the node signed, and the cosignatures witnesses returned.
ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(40), nullable=False),
    # Copied out of the body for lookups; `liaison ledger verify` checks they agree.
    sa.Column("partner", sa.String(3)),
    sa.Column("object_id", sa.String(300)),
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("ix_ledger_entries_partner", "partner", "seq"),
    sa.Index("ix_ledger_entries_object", "object_id", "seq"),
)

ledger_nodes = sa.Table(
    "ledger_nodes",
    metadata,
    sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("index", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
)

ledger_head = sa.Table(
    "ledger_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    # The hashes of the tree's right frontier, concatenated (merkle.range_nodes(size)).
    sa.Column("frontier", sa.LargeBinary, nullable=False),
)

ledger_checkpoints = sa.Table(
    "ledger_checkpoints",
    metadata,
    sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
)

ledger_cosignatures = sa.Table(
    "ledger_cosignatures",
    metadata,
    sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("witness", sa.String(200), primary_key=True),
    sa.Column("signature", sa.Text, nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
)

# Who may cosign this node's checkpoints: a partner's key, as a C2SP verifier key.
ledger_witnesses = sa.Table(
    "ledger_witnesses",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("partner", sa.String(3), nullable=False),
    sa.Column("vkey", sa.Text, nullable=False),
    sa.Column("added", sa.BigInteger, nullable=False),
)

# Checkpoints of other nodes' ledgers this node has seen and checked, by their origin.
peer_checkpoints = sa.Table(
    "peer_checkpoints",
    metadata,
    sa.Column("origin", sa.String(200), primary_key=True),
    sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("seen", sa.BigInteger, nullable=False),
)

# Consecutive failed TAXII sign-ins per user name ("user") and per client address ("address"),
# shared by every server process (taxii.credentials.SignInThrottle). A name or address that is
# long or not printable is stored as "sha256:" and its hash. A counter with no failure for a
# day is forgotten (its row deleted).
sign_in_failures = sa.Table(
    "sign_in_failures",
    metadata,
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("subject", sa.String(200), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    # Microseconds since the epoch.
    sa.Column("last_failure", sa.BigInteger, nullable=False),
    sa.Index("ix_sign_in_failures_last", "last_failure"),
)


# Peer nodes (taxii/peers.py): a peer is a partner's node; ``secret`` holds the password and
# token its operator issued to this node, encrypted under a key derived from the node's key.
peers = sa.Table(
    "peers",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("partner", sa.String(3), nullable=False),
    sa.Column("username", sa.String(200), nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("added", sa.BigInteger, nullable=False),
    # The peer's ledger at the last sync: the checkpoint's size, "consistent" (it extends
    # every checkpoint held before), "rewritten" or "unverified", and why.
    sa.Column("ledger_size", sa.BigInteger),
    sa.Column("ledger_state", sa.String(20)),
    sa.Column("ledger_detail", sa.Text),
    sa.Column("ledger_checked", sa.BigInteger),
)

# The peer's ledger entry that recorded each version pulled from it, proved by a receipt
# (an inclusion proof in a checkpoint signed with the peer's key, of size ``tree_size``).
received_entries = sa.Table(
    "received_entries",
    metadata,
    sa.Column("object_id", sa.String(300), primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("partner", sa.String(3), primary_key=True),
    sa.Column("entry", sa.BigInteger, nullable=False),
    sa.Column("tree_size", sa.BigInteger, nullable=False),
)

# Where the last pull from each peer collection stopped (taxii/sync.py).
peer_cursors = sa.Table(
    "peer_cursors",
    metadata,
    sa.Column(
        "peer", sa.String(64), sa.ForeignKey("peers.name", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("collection", sa.String(200), primary_key=True),
    sa.Column("added_after", sa.String(40), nullable=False),
    sa.Column("updated", sa.BigInteger, nullable=False),
)

# Where the last push to each peer collection stopped: this node's ``date_added`` of the last
# version sent (taxii/sync.py).
peer_pushes = sa.Table(
    "peer_pushes",
    metadata,
    sa.Column(
        "peer", sa.String(64), sa.ForeignKey("peers.name", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("collection", sa.String(200), primary_key=True),
    sa.Column("date_added", sa.BigInteger, nullable=False),
    sa.Column("updated", sa.BigInteger, nullable=False),
)
