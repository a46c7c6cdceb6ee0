"""What a partner may do: the collections it may read or write and the release classes it is
granted, read once per policy serial.

``policy_state.serial`` is bumped by database triggers on every change of grants, partners,
communities, memberships and collections (migration 0008), so a cached answer is used only
while nothing it was read from has changed; membership dates make it a function of the day
too. Each request reads the serial in its own snapshot, before its page: what it serves is
consistent with the grants that snapshot holds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from liaison.alliance import Collection
from liaison.policy.decide import PolicyContext
from liaison.policy.grants import refresh
from liaison.store.alliance import read_collections, read_communities
from liaison.store.engine import write_transaction
from liaison.store.pages import Granted, granted_classes
from liaison.store.schema import policy_state


@dataclass(frozen=True)
class Access:
    """A collection and what one partner may do with it."""

    collection: Collection
    can_read: bool
    can_write: bool


@dataclass(frozen=True)
class Rights:
    partner: str
    collections: dict[str, Access]  # every collection, readable and writable or not
    granted: Granted


class RightsCache:
    """Rights per partner, valid for one (serial, day); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[int, date] | None = None
        self._rights: dict[str, Rights] = {}

    def of(self, engine: sa.Engine, connection: sa.Connection, partner: str) -> Rights:
        """``partner``'s rights as ``connection``'s snapshot holds them. When a membership
        date has passed since the grants were decided, they are decided again first (a
        write, once per such date), and ``connection`` starts a new snapshot to read them."""
        today = date.today()
        serial, valid_until = connection.execute(
            sa.select(policy_state.c.serial, policy_state.c.valid_until)
        ).one()
        if valid_until is not None and today >= valid_until:
            with write_transaction(engine) as writer:
                refresh(writer, today)
            connection.commit()
            serial = connection.execute(sa.select(policy_state.c.serial)).scalar_one()
        key = (serial, today)
        with self._lock:
            if self._key == key and partner in self._rights:
                return self._rights[partner]
        rights = read_rights(connection, partner, today)
        with self._lock:
            if self._key != key:
                self._key, self._rights = key, {}
            self._rights[partner] = rights
        return rights


def read_rights(connection: sa.Connection, partner: str, today: date) -> Rights:
    context = PolicyContext("", {}, tuple(read_communities(connection)))
    names = context.communities_of(partner, today) | {partner}
    collections = {
        c.id: Access(c, bool(names & set(c.read)), bool(names & set(c.write)))
        for c in read_collections(connection)
    }
    return Rights(partner, collections, granted_classes(connection, partner))
