"""Peer nodes this node syncs with: where they are, which partner each one is, and the
credentials their operators issued to this node, encrypted at rest (taxii/peers.py).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "peers",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("partner", sa.String(3), nullable=False),
        sa.Column("username", sa.String(200), nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("added", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("peers")
