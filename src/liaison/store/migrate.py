"""Schema migrations (Alembic), run by `liaison init` and `liaison upgrade`."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

# Every command checks the store's revision when it opens the node: that check reads the
# table and the scripts itself, for Alembic takes a third of a second to import; only a
# migration imports Alembic.
if TYPE_CHECKING:
    from alembic.config import Config

_SCRIPTS = Path(__file__).parent / "migrations"
_VERSION_TABLE = "alembic_version"  # Alembic's default
_REVISION = re.compile(r"^(down_)?revision\s*=\s*(?:None|\"([^\"]*)\")", re.MULTILINE)


def _config(connection: sa.Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest)."""
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)


def current_revision(engine: sa.Engine) -> str | None:
    """The store's revision, as Alembic records it; None for a store without a schema."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(_VERSION_TABLE):
            return None
        table = sa.table(_VERSION_TABLE, sa.column("version_num"))
        return connection.execute(sa.select(table.c.version_num)).scalar()


@cache
def head_revision() -> str | None:
    """The newest revision of the scripts: the one no other revises."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for script in (_SCRIPTS / "versions").glob("*.py"):
        for down, name in _REVISION.findall(script.read_text()):
            (revised if down else revisions).add(name)
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None
