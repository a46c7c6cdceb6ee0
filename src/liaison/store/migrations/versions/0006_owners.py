"""Owners of object versions, and versions withdrawn from partners.

Every version has an owner: the agency whose object it is (the node's country for its own,
the submitting partner's code for a partner's). Rows stored before this revision get the
partner that sent them, else the partner whose identity is their ``created_by_ref``, else the
node. Their release classes are recomputed by ``liaison upgrade`` (the class now names the
owner).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("objects") as batch:
        batch.add_column(sa.Column("owner", sa.String(3), nullable=False, server_default=""))
    op.execute(
        "UPDATE objects SET owner = COALESCE(received_from,"
        " (SELECT code FROM partners WHERE partners.identity_id = objects.created_by_ref),"
        " (SELECT country FROM node WHERE node.id = 1), '')"
    )
    with op.batch_alter_table("objects") as batch:
        batch.alter_column("owner", server_default=None)
    op.create_table(
        "withdrawals",
        sa.Column("object_id", sa.String(300), primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("partner", sa.String(3), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("entry", sa.BigInteger),
    )


def downgrade() -> None:
    op.drop_table("withdrawals")
    with op.batch_alter_table("objects") as batch:
        batch.drop_column("owner")
