"""TAXII: partners' credentials, collections, disclosures and POST statuses.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The placeholder column of revision 0001 gives way to the credentials table.
    with op.batch_alter_table("partners") as batch:
        batch.drop_column("credentials")
    op.create_table(
        "credentials",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("partner", sa.String(3), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("token_hash", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("revoked", sa.BigInteger),
    )
    op.create_index("ix_credentials_username", "credentials", ["username"])
    op.create_table(
        "client_certificates",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("partner", sa.String(3), nullable=False),
        sa.Column("added", sa.BigInteger, nullable=False),
        sa.Column("revoked", sa.BigInteger),
    )
    op.create_table(
        "collections",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("alias", sa.String(100), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("types", sa.Text, nullable=False),
        sa.Column("readers", sa.Text, nullable=False),
        sa.Column("writers", sa.Text, nullable=False),
    )
    op.create_table(
        "disclosures",
        sa.Column("partner", sa.String(3), primary_key=True),
        sa.Column("object_id", sa.String(300), primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("release_class", sa.String(64), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "statuses",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("partner", sa.String(3), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("statuses", "disclosures", "collections", "client_certificates", "credentials"):
        op.drop_table(table)
    with op.batch_alter_table("partners") as batch:
        batch.add_column(sa.Column("credentials", sa.Text))
