"""The disclosure ledger: entries, Merkle nodes, head, checkpoints, witnesses, peers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("disclosures", "policy_changes"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("entry", sa.BigInteger))
    op.create_table(
        "ledger_entries",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("partner", sa.String(3)),
        sa.Column("object_id", sa.String(300)),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_ledger_entries_partner", "ledger_entries", ["partner", "seq"])
    op.create_index("ix_ledger_entries_object", "ledger_entries", ["object_id", "seq"])
    op.create_table(
        "ledger_nodes",
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    head = op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("frontier", sa.LargeBinary, nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "size": 0, "frontier": b""}])
    op.create_table(
        "ledger_checkpoints",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ledger_cosignatures",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("witness", sa.String(200), primary_key=True),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ledger_witnesses",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("partner", sa.String(3), nullable=False),
        sa.Column("vkey", sa.Text, nullable=False),
        sa.Column("added", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "peer_checkpoints",
        sa.Column("origin", sa.String(200), primary_key=True),
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("seen", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "peer_checkpoints",
        "ledger_witnesses",
        "ledger_cosignatures",
        "ledger_checkpoints",
        "ledger_head",
        "ledger_nodes",
        "ledger_entries",
    ):
        op.drop_table(table)
    for table in ("disclosures", "policy_changes"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("entry")
