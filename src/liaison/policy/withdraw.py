"""Withdrawing earlier versions from partners: the officer's tool for a version marked more
tightly than the ones before it.

Each partner sees the newest version it may see (docs/policy.md), so when v2 of a report is
CAN EYES ONLY a NATO partner keeps receiving v1. When v1 must go too, an officer withdraws
it: the withdrawn versions get a release class that names the partners, withheld from them
with the reason ``withdrawn``, and the change is a policy entry in the ledger. What was
already delivered stays delivered (and recorded); withdrawal stops every later delivery.
An agency is never withdrawn its own object.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from liaison.errors import InputError, NotFound, UnknownPartner
from liaison.policy.classes import class_key
from liaison.policy.grants import record_change, register_classes
from liaison.stix.timestamps import from_micros, now_micros
from liaison.store.alliance import read_partners
from liaison.store.schema import grants, objects, withdrawals


@dataclass(frozen=True)
class Withdrawal:
    object_id: str
    versions: tuple[str, ...]  # the versions' timestamps
    partners: tuple[str, ...]
    reason: str
    policy_version: int

    def as_json(self) -> dict[str, object]:
        return {
            "object": self.object_id,
            "versions": list(self.versions),
            "partners": list(self.partners),
            "reason": self.reason,
            "policy_version": self.policy_version,
        }


def withdraw(
    connection: sa.Connection,
    object_id: str,
    reason: str,
    versions: Sequence[int] = (),
    partners: Sequence[str] = (),
) -> Withdrawal:
    """Withdraw ``versions`` of ``object_id`` (default: all but the newest) from ``partners``
    (default: those that may not see the newest version, and may see an earlier one)."""
    if not reason.strip():
        raise InputError("a withdrawal needs a reason (--reason)")
    rows = connection.execute(
        sa.select(
            objects.c.version,
            objects.c.modified,
            objects.c.owner,
            objects.c.body,
            objects.c.release_class,
        )
        .where(objects.c.id == object_id)
        .order_by(objects.c.version)
    ).all()
    if not rows:
        raise NotFound(f"no object {object_id} in the store")
    owner = rows[0].owner
    held = {row.version: row for row in rows}
    chosen = sorted(set(versions)) if versions else [v for v in held if v != max(held)]
    missing = [v for v in chosen if v not in held]
    if missing:
        raise NotFound(f"{object_id} has no version {from_micros(missing[0])}")
    known = {p.country for p in read_partners(connection)}
    unknown = sorted(set(partners) - known)
    if unknown:
        raise UnknownPartner(f"{unknown[0]} is not a known partner")
    codes = sorted(set(partners)) if partners else _shut_out(connection, rows, chosen)
    codes = [code for code in codes if code != owner]
    if not chosen or not codes:
        raise InputError(
            f"nothing to withdraw: no earlier version of {object_id} goes to a "
            "partner that may not see the newest (name --version and --partner)"
        )
    at = now_micros()
    for version in chosen:
        already = set(
            connection.execute(
                sa.select(withdrawals.c.partner).where(
                    withdrawals.c.object_id == object_id, withdrawals.c.version == version
                )
            ).scalars()
        )
        new = [code for code in codes if code not in already]
        if new:
            connection.execute(
                withdrawals.insert(),
                [
                    {
                        "object_id": object_id,
                        "version": version,
                        "partner": code,
                        "reason": reason,
                        "at": at,
                    }
                    for code in new
                ],
            )
        key = class_key(json.loads(held[version].body), owner, withdrawn=(*already, *new))
        register_classes(connection, {key.id: key})
        connection.execute(
            objects.update()
            .where(objects.c.id == object_id, objects.c.version == version)
            .values(release_class=key.id)
        )
    stamps = tuple(held[v].modified or from_micros(v) for v in chosen)
    version = record_change(
        connection,
        "withdraw",
        {"object": object_id, "versions": list(stamps), "partners": codes, "reason": reason},
    )
    return Withdrawal(object_id, stamps, tuple(codes), reason, version)


def _shut_out(connection: sa.Connection, rows: Sequence[sa.Row], chosen: list[int]) -> list[str]:
    """The partners that may see one of the ``chosen`` versions but not the newest."""
    newest = rows[-1]
    classes = {row.version: row.release_class for row in rows}
    seeing: dict[str, set[str]] = {}
    wanted = {classes[v] for v in chosen} | {newest.release_class}
    for partner, class_id in connection.execute(
        sa.select(grants.c.partner, grants.c.class_id).where(
            grants.c.class_id.in_(sorted(wanted)), grants.c.decision != "withhold"
        )
    ):
        seeing.setdefault(class_id, set()).add(partner)
    earlier = set().union(*(seeing.get(classes[v], set()) for v in chosen))
    return sorted(earlier - seeing.get(newest.release_class, set()))
