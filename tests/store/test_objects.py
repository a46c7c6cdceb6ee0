import json

import sqlalchemy as sa

from liaison.store.engine import write_transaction
from liaison.store.objects import add_objects, latest_versions, versions_of
from liaison.store.schema import objects
from tests.stix_factory import indicator

V1 = "2017-05-25T11:05:00.000Z"
V2 = "2017-05-26T09:00:00.000Z"
V3 = "2017-05-27T09:00:00.000Z"


def add(node, batch, received_from=None):
    with write_transaction(node.engine) as connection:
        return add_objects(connection, batch, received_from=received_from).outcomes


def test_every_version_is_kept_and_the_newest_is_latest(node):
    first = indicator(1, modified=V1)
    oid = first["id"]
    assert add(node, [first]) == ["added"]
    assert add(node, [indicator(1, modified=V3, object_id=oid)]) == ["added"]
    # An older version arriving late is kept but does not become the latest.
    assert add(node, [indicator(1, modified=V2, object_id=oid)]) == ["added"]
    with node.engine.connect() as connection:
        versions = versions_of(connection, oid)
        latest = [s.object for s in latest_versions(connection, "indicator")]
    assert [v.object["modified"] for v in versions] == [V1, V2, V3]
    assert [o["modified"] for o in latest] == [V3]


def test_versions_in_one_batch(node):
    oid = indicator(1)["id"]
    batch = [indicator(1, modified=m, object_id=oid) for m in (V2, V1, V3)]
    assert add(node, batch) == ["added", "added", "added"]
    with node.engine.connect() as connection:
        latest = (
            connection.execute(
                sa.select(objects.c.modified).where(objects.c.id == oid, objects.c.latest.is_(True))
            )
            .scalars()
            .all()
        )
    assert latest == [V3]


def test_same_version_twice_is_present_not_duplicated(node):
    obj = indicator(1)
    assert add(node, [obj, obj]) == ["added", "present"]
    equivalent = dict(obj, modified="2017-05-25T11:05:00Z")  # same instant, other precision
    assert add(node, [equivalent]) == ["present"]
    with node.engine.connect() as connection:
        assert len(versions_of(connection, obj["id"])) == 1


def test_object_is_stored_as_received(node):
    obj = indicator(1)
    del obj["created_by_ref"]  # a partner's own object
    obj["description"] = "Trudeau à Bruxelles"
    add(node, [obj], received_from="USA")
    with node.engine.connect() as connection:
        (stored,) = versions_of(connection, obj["id"])
        body = connection.execute(sa.select(objects.c.body)).all()
    assert stored.object == obj
    assert stored.received_from == "USA"
    assert stored.owner == "USA"
    assert any(json.loads(b) == obj for (b,) in body)


def test_date_added_is_unique_and_grows_with_each_write(node):
    for n in range(5):
        add(node, [indicator(10 * n + k) for k in range(3)])
    with node.engine.connect() as connection:
        rows = connection.execute(
            sa.select(objects.c.id, objects.c.date_added).where(objects.c.type == "indicator")
        ).all()
    stamps = [r.date_added for r in rows]
    assert len(set(stamps)) == len(stamps) == 15
    by_name = {r.id: r.date_added for r in rows}
    in_write_order = [by_name[indicator(10 * n + k)["id"]] for n in range(5) for k in range(3)]
    assert in_write_order == sorted(in_write_order)


def test_objects_without_timestamps_have_one_version(node):
    sco = {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd",
        "value": "198.51.100.3",
    }
    assert add(node, [sco]) == ["added"]
    assert add(node, [sco]) == ["present"]


def test_a_failed_write_leaves_nothing(node):
    try:
        with write_transaction(node.engine) as connection:
            add_objects(connection, [indicator(1), indicator(2)])
            raise RuntimeError("crash before commit")
    except RuntimeError:
        pass
    with node.engine.connect() as connection:
        assert versions_of(connection, indicator(1)["id"]) == []


def test_a_large_write_refreshes_the_statistics(node, monkeypatch):
    import liaison.store.objects as stored
    from liaison.importer import import_objects
    from tests.stix_factory import indicator

    monkeypatch.setattr(stored, "ANALYZE_AFTER", 5)
    import_objects(node.engine, [indicator(n) for n in range(6)], validate=lambda o: [[]] * len(o))
    with node.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            query = "SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'objects'"
        else:
            query = "SELECT COUNT(*) FROM pg_stats WHERE tablename = 'objects'"
        assert connection.exec_driver_sql(query).scalar() > 0
