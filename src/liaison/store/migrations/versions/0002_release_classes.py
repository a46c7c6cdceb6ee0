"""Release classes, grants, the policy state and its change log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("objects") as batch:
        batch.add_column(sa.Column("release_class", sa.String(64)))
    op.create_index("ix_objects_class_added", "objects", ["release_class", "date_added"])
    op.create_table(
        "release_classes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("key", sa.Text, nullable=False),
    )
    op.create_table(
        "grants",
        sa.Column("partner", sa.String(3), primary_key=True),
        sa.Column("class_id", sa.String(64), primary_key=True),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("cuts", sa.Text, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("policy_version", sa.Integer, nullable=False),
    )
    op.create_index("ix_grants_class", "grants", ["class_id"])
    state = op.create_table(
        "policy_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("rules", sa.Text, nullable=False),
        sa.Column("decided_on", sa.Date),
        sa.Column("valid_until", sa.Date),
    )
    op.bulk_insert(state, [{"id": 1, "version": 0, "rules": "{}"}])
    op.create_table(
        "policy_changes",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("policy_changes", "policy_state", "grants", "release_classes"):
        op.drop_table(table)
    op.drop_index("ix_objects_class_added", "objects")
    with op.batch_alter_table("objects") as batch:
        batch.drop_column("release_class")
