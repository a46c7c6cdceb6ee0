"""Each partner's Ed25519 public key, pinned from the alliance file: what verifies the
signatures of the objects it originated (stix/signature.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("partners", sa.Column("public_key", sa.String(64)))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+): a batch rebuild would drop the table's triggers.
    op.drop_column("partners", "public_key")
