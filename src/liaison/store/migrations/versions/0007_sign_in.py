"""Sign-in throttling: consecutive failed TAXII sign-ins per user name and client address.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("subject", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sign_in_failures_last", "sign_in_failures", ["last_failure"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_failures_last", table_name="sign_in_failures")
    op.drop_table("sign_in_failures")
