"""Bringing records made before the ledger existed into it, once, on `liaison upgrade`.

Disclosures and policy changes recorded by an older version have no ledger entry; each gets
one, oldest first, so that `liaison ledger verify` holds for the whole history. Their entries
carry the time of the backfill (``at``) and the original time (``recorded``).
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from liaison.ledger.disclosures import Disclosure, disclosure_entry
from liaison.ledger.log import Entry, append
from liaison.stix.timestamps import from_micros
from liaison.store.schema import disclosures, policy_changes


def backfill(connection: sa.Connection) -> int:
    """Append an entry for every disclosure and policy change that has none, inside the
    caller's write transaction; how many were appended."""
    changes = connection.execute(
        sa.select(policy_changes)
        .where(policy_changes.c.entry.is_(None))
        .order_by(policy_changes.c.seq)
    ).all()
    for row in changes:
        (entry,) = append(
            connection,
            [
                Entry(
                    "policy",
                    {
                        "version": row.version,
                        "change": row.kind,
                        "detail": json.loads(row.detail),
                        "recorded": from_micros(row.at),
                    },
                )
            ],
        )
        connection.execute(
            policy_changes.update().where(policy_changes.c.seq == row.seq).values(entry=entry)
        )
    rows = connection.execute(
        sa.select(disclosures)
        .where(disclosures.c.entry.is_(None))
        .order_by(disclosures.c.at, disclosures.c.partner, disclosures.c.object_id)
    ).all()
    for row in rows:
        record = Disclosure(row.partner, row.object_id, row.version, row.release_class, b"")
        base = disclosure_entry(record)
        fields = {**base.fields, "sha256": row.digest, "recorded": from_micros(row.at)}
        (entry,) = append(connection, [Entry("disclosure", fields, row.partner, row.object_id)])
        connection.execute(
            disclosures.update()
            .where(
                disclosures.c.partner == row.partner,
                disclosures.c.object_id == row.object_id,
                disclosures.c.version == row.version,
                disclosures.c.digest == row.digest,
            )
            .values(entry=entry)
        )
    return len(changes) + len(rows)
