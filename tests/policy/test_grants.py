"""The compiled side: classes registered once, grants re-decided on change, derived data
rebuilt from the objects alone."""

from datetime import date

import sqlalchemy as sa

from liaison.importer import import_objects
from liaison.markings.handling import marking_definition
from liaison.node import apply_alliance
from liaison.policy.grants import rebuild, redecide, refresh
from liaison.store.engine import write_transaction
from liaison.store.pages import granted_versions
from liaison.store.schema import grants, policy_changes, policy_state, release_classes
from tests.conftest import EXAMPLES


def note(n, markings, author):
    return {
        "type": "note",
        "spec_version": "2.1",
        "id": f"note--00000000-0000-4000-8000-{n:012d}",
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "created_by_ref": author,
        "content": f"note {n}",
        "object_refs": [author],
        "object_marking_refs": markings,
    }


def setup(node, count=20):
    apply_alliance(node, EXAMPLES / "alliance.toml")
    fvey = marking_definition(node.identity_id, "CAN:SECRET", ["FVEY"])
    nato = marking_definition(node.identity_id, "NATO:NC", ["NATO"])
    notes = [note(n, [fvey["id"] if n % 2 else nato["id"]], node.identity_id) for n in range(count)]
    report = import_objects(node.engine, [fvey, nato, *notes])
    assert report.count("added") == count + 2
    return fvey, nato, notes


def visible(node, partner):
    with node.engine.connect() as connection:
        return {v.object["id"] for v in granted_versions(connection, partner)}


def test_objects_share_classes_and_grants(node):
    _, _, notes = setup(node, 20)
    with node.engine.connect() as connection:
        classes = connection.execute(sa.select(sa.func.count()).select_from(release_classes))
        # identity, two markings (one definition class), two note classes
        assert classes.scalar_one() == 4
        per_partner = connection.execute(
            sa.select(sa.func.count()).select_from(grants).where(grants.c.partner == "USA")
        ).scalar_one()
    assert per_partner == 4
    fvey_notes = {n["id"] for i, n in enumerate(notes) if i % 2}
    assert fvey_notes <= visible(node, "USA")
    assert not fvey_notes & visible(node, "FRA")
    assert {n["id"] for i, n in enumerate(notes) if not i % 2} <= visible(node, "FRA")


def test_partner_change_redecides_classes_and_is_recorded(node):
    setup(node)
    with write_transaction(node.engine) as connection:
        connection.execute(sa.text("UPDATE partners SET status = 'suspended' WHERE code = 'USA'"))
        changes = redecide(connection, partners=["USA"])
    assert {c.partner for c in changes} == {"USA"}
    assert {c.after for c in changes} == {"withhold"}
    assert visible(node, "USA") == set()
    with node.engine.connect() as connection:
        logged = connection.execute(sa.select(policy_changes.c.kind)).scalars().all()
    assert logged == ["alliance"]


def albania_leaves_efp_in_2999(tmp_path):
    """The demo alliance, with ALB leaving the eFP Latvia mission on 2999-01-01."""
    path = tmp_path / "alliance.toml"
    path.write_text(
        (EXAMPLES / "alliance.toml")
        .read_text()
        .replace(
            '{ country = "ALB", joined = 2017-06-19 },',
            '{ country = "ALB", joined = 2017-06-19, left = 2999-01-01 },',
        )
    )
    return path


def test_grants_expire_at_the_next_membership_date(node, tmp_path):
    apply_alliance(node, albania_leaves_efp_in_2999(tmp_path))
    mission = marking_definition(node.identity_id, "NATO:NC", ["eFP Latvia"])
    import_objects(node.engine, [mission, note(1, [mission["id"]], node.identity_id)])
    assert note(1, [], "")["id"] in visible(node, "ALB")
    with node.engine.connect() as connection:
        assert connection.execute(sa.select(policy_state.c.valid_until)).scalar_one() == date(
            2999, 1, 1
        )
    with write_transaction(node.engine) as connection:
        assert refresh(connection, today=date(2998, 12, 31)) == []
        changes = refresh(connection, today=date(2999, 1, 1))
    assert changes and note(1, [], "")["id"] not in visible(node, "ALB")


def test_rebuild_gives_the_same_grants(node):
    setup(node)

    def snapshot():
        with node.engine.connect() as connection:
            return sorted(
                connection.execute(
                    sa.select(grants.c.partner, grants.c.class_id, grants.c.decision, grants.c.cuts)
                ).all()
            )

    before = snapshot()
    with write_transaction(node.engine) as connection:
        connection.execute(grants.delete())
        connection.execute(sa.text("UPDATE objects SET release_class = NULL"))
    assert visible(node, "USA") == set()
    with write_transaction(node.engine) as connection:
        assert rebuild(connection) == 4
    assert snapshot() == before


def test_a_marking_defined_after_its_objects_is_read_once_it_arrives(node):
    apply_alliance(node, EXAMPLES / "alliance.toml")
    fvey = marking_definition(node.identity_id, "CAN:SECRET", ["FVEY"])
    early = note(1, [fvey["id"]], node.identity_id)
    import_objects(node.engine, [early])
    assert early["id"] not in visible(node, "USA")  # unknown marking: withheld
    import_objects(node.engine, [fvey])
    assert early["id"] in visible(node, "USA")
    assert early["id"] not in visible(node, "FRA")


def test_redeciding_one_partner_keeps_the_others_expiry(node, tmp_path):
    apply_alliance(node, albania_leaves_efp_in_2999(tmp_path))
    with write_transaction(node.engine) as connection:
        # Only USA is re-decided after ALB's exit date: ALB's grants must still expire.
        redecide(connection, partners=["USA"], at=date(2999, 6, 1))
        assert connection.execute(sa.select(policy_state.c.valid_until)).scalar_one() == date(
            2999, 1, 1
        )
