"""What the release path keeps between requests: a serial that every change of grants or
rights bumps (database triggers, so that no writer can forget it), and the fingerprint slots
found in each text; disclosures by ledger entry, the order `ledger verify` reads them in.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The tables a partner's rights and grants are read from (release/rights.py).
WATCHED = ("grants", "collections", "communities", "memberships", "partners")


def upgrade() -> None:
    op.add_column(
        "policy_state", sa.Column("serial", sa.BigInteger, nullable=False, server_default="0")
    )
    op.create_table(
        "text_slots",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("slots", sa.Text, nullable=False),
    )
    op.create_index("ix_disclosures_entry", "disclosures", ["entry"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION liaison_bump_serial() RETURNS trigger AS $$ BEGIN "
            "UPDATE policy_state SET serial = serial + 1; RETURN NULL; END $$ LANGUAGE plpgsql"
        )
        for table in WATCHED:
            op.execute(
                f"CREATE TRIGGER {table}_serial AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION liaison_bump_serial()"
            )
    else:
        # SQLite has row triggers only; these tables hold thousands of rows, not millions.
        for table in WATCHED:
            for event in ("INSERT", "UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_serial_{event.lower()} AFTER {event} ON {table} "
                    "BEGIN UPDATE policy_state SET serial = serial + 1; END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER {table}_serial ON {table}")
        op.execute("DROP FUNCTION liaison_bump_serial()")
    else:
        for table in WATCHED:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER {table}_serial_{event}")
    op.drop_table("text_slots")
    op.drop_index("ix_disclosures_entry", table_name="disclosures")
    with op.batch_alter_table("policy_state") as batch:
        batch.drop_column("serial")
