"""The peer's ledger entry each pulled version came with (taxii/sync.py).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "received_entries",
        sa.Column("object_id", sa.String(300), primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("partner", sa.String(3), primary_key=True),
        sa.Column("entry", sa.BigInteger, nullable=False),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("received_entries")
