"""Where each pull from a peer stopped, per collection: the ``added_after`` of the next run
(taxii/sync.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "peer_cursors",
        sa.Column(
            "peer", sa.String(64), sa.ForeignKey("peers.name", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("collection", sa.String(200), primary_key=True),
        sa.Column("added_after", sa.String(40), nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("peer_cursors")
