"""Objects and their versions, the date_added clock, the node, partners and communities.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "objects",
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
    )
    op.create_index("ix_objects_date_added", "objects", ["date_added"], unique=True)
    op.create_index("ix_objects_type_latest", "objects", ["type", "latest"])
    op.create_index("ix_objects_created_by_ref", "objects", ["created_by_ref"])

    clock = op.create_table(
        "clock",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_added", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(clock, [{"id": 1, "last_added": 0}])

    op.create_table(
        "node",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("country", sa.String(3), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("identity_id", sa.String(300), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
    )
    op.create_table(
        "partners",
        sa.Column("code", sa.String(3), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("identity_id", sa.String(300), nullable=False),
        sa.Column("clearance_scale", sa.String(20)),
        sa.Column("clearance_level", sa.String(40)),
        sa.Column("trust", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("agreement", sa.Text, nullable=False),
        sa.Column("credentials", sa.Text),
    )
    op.create_table(
        "communities",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
    )
    op.create_table(
        "memberships",
        sa.Column(
            "community",
            sa.String(100),
            sa.ForeignKey("communities.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("member", sa.String(3), primary_key=True),
        sa.Column("joined", sa.Date, primary_key=True),
        sa.Column("left", sa.Date),
    )


def downgrade() -> None:
    for table in ("memberships", "communities", "partners", "node", "clock", "objects"):
        op.drop_table(table)
