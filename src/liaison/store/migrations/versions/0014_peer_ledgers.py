"""What each peer's ledger looked like at the last sync: the size of the checkpoint checked,
and whether it extended the one held before (taxii/sync.py).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("peers") as batch:
        batch.add_column(sa.Column("ledger_size", sa.BigInteger))
        batch.add_column(sa.Column("ledger_state", sa.String(20)))
        batch.add_column(sa.Column("ledger_detail", sa.Text))
        batch.add_column(sa.Column("ledger_checked", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("peers") as batch:
        for name in ("ledger_checked", "ledger_detail", "ledger_state", "ledger_size"):
            batch.drop_column(name)
