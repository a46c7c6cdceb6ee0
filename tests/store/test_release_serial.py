"""The policy serial (migration 0008): every change of the tables a partner's rights are
read from bumps it, by database trigger, so a cache keyed on it cannot miss a change."""

from datetime import date

import sqlalchemy as sa

from liaison.store.engine import write_transaction
from liaison.store.schema import (
    collections,
    communities,
    grants,
    memberships,
    partners,
    policy_state,
    statuses,
)


def serial(node):
    with node.engine.connect() as connection:
        return connection.execute(sa.select(policy_state.c.serial)).scalar_one()


def changes(node, *statements):
    before = serial(node)
    with write_transaction(node.engine) as connection:
        for statement in statements:
            connection.execute(statement)
    return serial(node) - before


PARTNER = {
    "code": "ZZZ",
    "name": "Zedland",
    "identity_id": "identity--00000000-0000-4000-8000-000000000001",
    "trust": "low",
    "status": "active",
    "agreement": "",
}


def test_every_write_to_a_watched_table_bumps_the_serial(node):
    assert changes(node, partners.insert().values(**PARTNER)) > 0
    assert changes(node, partners.update().values(trust="high")) > 0
    community = {"name": "ZED", "kind": "community", "description": ""}
    assert changes(node, communities.insert().values(**community)) > 0
    member = {"community": "ZED", "member": "ZZZ", "joined": date(2020, 1, 1)}
    assert changes(node, memberships.insert().values(**member)) > 0
    assert changes(node, memberships.delete()) > 0
    collection = {"id": "c", "title": "C", "description": "", "alias": "c"}
    collection |= {"types": "[]", "readers": '["ZZZ"]', "writers": "[]"}
    assert changes(node, collections.insert().values(**collection)) > 0
    assert changes(node, collections.delete()) > 0
    grant = {"partner": "ZZZ", "class_id": "x", "decision": "withhold", "reasons": "[]"}
    grant |= {"cuts": "[]", "policy_version": 1}
    assert changes(node, grants.insert().values(**grant)) > 0
    assert changes(node, grants.delete()) > 0
    assert changes(node, communities.delete().where(communities.c.name == "ZED")) > 0
    assert changes(node, partners.delete().where(partners.c.code == "ZZZ")) > 0


def test_other_writes_leave_it(node):
    status = {"id": "s", "partner": "ZZZ", "body": "{}", "created": 0}
    assert changes(node, statuses.insert().values(**status)) == 0
