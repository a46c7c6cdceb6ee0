"""Recording disclosures: one row per object version delivered to a partner, the first time
that exact copy goes to it. The signed Merkle log will be built on this one function."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from liaison.ledger.log import Entry, append, lock_head
from liaison.stix.timestamps import from_micros, now_micros
from liaison.store.engine import upsert
from liaison.store.schema import disclosures


@dataclass(frozen=True)
class Disclosure:
    partner: str
    object_id: str
    version: int
    release_class: str
    delivered: bytes  # the exact bytes of the object as sent
    # "<scheme>:<code id>" of the fingerprint the copy carries; None when it carries none.
    fingerprint: str | None = None

    @functools.cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.delivered).hexdigest()


def record_disclosures(connection: sa.Connection, delivered: Sequence[Disclosure]) -> list[int]:
    """Record what is being delivered, inside the caller's transaction: a row each and an
    entry each in the ledger; their ledger entries. A copy already recorded (same partner,
    version and bytes) is not recorded again, even when another request recorded it since
    the caller looked: the log's head is locked first, so the check sees every earlier
    appender's rows, and each disclosure entry has exactly one record."""
    if not delivered:
        return []
    by_key = {_key(d): d for d in delivered}
    lock_head(connection)
    known = _recorded(connection, list(by_key.values()))
    unique = [d for key, d in by_key.items() if key not in known]
    entries = append(connection, [disclosure_entry(d) for d in unique])
    at = now_micros()
    rows = [
        {
            "partner": d.partner,
            "object_id": d.object_id,
            "version": d.version,
            "digest": d.digest,
            "release_class": d.release_class,
            "at": at,
            "entry": entry,
        }
        for d, entry in zip(unique, entries, strict=True)
    ]
    if rows:
        connection.execute(upsert(connection, disclosures).on_conflict_do_nothing(), rows)
    known.update(zip(map(_key, unique), entries, strict=True))
    return [e for key in by_key if (e := known.get(key)) is not None]


def _key(d: Disclosure) -> tuple[str, str, int, str]:
    return (d.partner, d.object_id, d.version, d.digest)


def disclosure_entry(d: Disclosure) -> Entry:
    return Entry(
        "disclosure",
        {
            "partner": d.partner,
            "object_id": d.object_id,
            "version": from_micros(d.version),
            "release_class": d.release_class,
            "sha256": d.digest,
            **({"fingerprint": d.fingerprint} if d.fingerprint else {}),
        },
        partner=d.partner,
        object_id=d.object_id,
    )


def new_disclosures(
    connection: sa.Connection, delivered: Sequence[Disclosure]
) -> tuple[list[Disclosure], list[int]]:
    """Those of ``delivered`` not yet recorded (the exact copy has not gone to its partner),
    and the ledger entries of those that were."""
    if not delivered:
        return [], []
    known = _recorded(connection, delivered)
    keys = [_key(d) for d in delivered]
    new = [d for d, key in zip(delivered, keys, strict=True) if key not in known]
    entries = [e for key in keys if (e := known.get(key)) is not None]
    return new, entries


def entries_of(connection: sa.Connection, delivered: Sequence[Disclosure]) -> list[int | None]:
    """The ledger entry of each of ``delivered`` (None where it is not recorded)."""
    known = _recorded(connection, delivered) if delivered else {}
    return [known.get(_key(d)) for d in delivered]


def _recorded(
    connection: sa.Connection, delivered: Sequence[Disclosure]
) -> dict[tuple[str, str, int, str], int | None]:
    """The recorded copies among ``delivered``, each with its ledger entry."""
    partner_of = {d.partner for d in delivered}
    ids = sorted({d.object_id for d in delivered})
    known: dict[tuple[str, str, int, str], int | None] = {}
    for start in range(0, len(ids), 500):
        rows = connection.execute(
            sa.select(
                disclosures.c.partner,
                disclosures.c.object_id,
                disclosures.c.version,
                disclosures.c.digest,
                disclosures.c.entry,
            ).where(
                disclosures.c.partner.in_(partner_of),
                disclosures.c.object_id.in_(ids[start : start + 500]),
            )
        )
        known.update({(p, o, v, h): entry for p, o, v, h, entry in rows})
    return known


def disclosures_of(connection: sa.Connection, partner: str | None = None) -> list[sa.Row]:
    query = sa.select(disclosures).order_by(disclosures.c.at, disclosures.c.object_id)
    if partner is not None:
        query = query.where(disclosures.c.partner == partner)
    return list(connection.execute(query))
