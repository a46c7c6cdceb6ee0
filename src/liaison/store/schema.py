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
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("ix_objects_date_added", "date_added", unique=True),
    sa.Index("ix_objects_type_latest", "type", "latest"),
    sa.Index("ix_objects_created_by_ref", "created_by_ref"),
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
    # Filled by `liaison partner credentials` (TAXII issue); never a plaintext secret.
    sa.Column("credentials", sa.Text),
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
