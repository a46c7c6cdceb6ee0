from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from liaison.store.engine import create_engine
from liaison.store.migrate import current_revision, head_revision, upgrade
from liaison.store.schema import metadata


def test_migrations_create_exactly_the_schema(database_url):
    engine = create_engine(database_url)
    upgrade(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_upgrade_is_idempotent(database_url):
    engine = create_engine(database_url)
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_the_head_read_from_the_scripts_is_alembics():
    from alembic.script import ScriptDirectory

    from liaison.store.migrate import _config, head_revision

    assert head_revision() == ScriptDirectory.from_config(_config()).get_current_head()
