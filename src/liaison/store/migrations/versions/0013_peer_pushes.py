"""Where each push to a peer collection stopped: the ``date_added`` of the last of this
node's versions sent (taxii/sync.py).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "peer_pushes",
        sa.Column(
            "peer", sa.String(64), sa.ForeignKey("peers.name", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("collection", sa.String(200), primary_key=True),
        sa.Column("date_added", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("peer_pushes")
