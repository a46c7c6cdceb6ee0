"""Disclosures by object version: the versions a leak investigation reads.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_disclosures_object", "disclosures", ["object_id", "version"])


def downgrade() -> None:
    op.drop_index("ix_disclosures_object", table_name="disclosures")
