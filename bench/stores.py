"""Fresh nodes for the benchmarks: on SQLite files, or on databases of one PostgreSQL server."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench.import_throughput import fresh_database, postgres_server
from liaison.node import Node, init_node
from liaison.settings import Settings


def make_node(home: Path, url: str) -> Node:
    settings = Settings.from_env({"LIAISON_HOME": str(home), "LIAISON_DATABASE_URL": url})
    node, _ = init_node(settings)
    return node


@contextmanager
def node_stores(
    backend: str, count: int, prefix: str, admin_url: str | None = None
) -> Iterator[list[Node]]:
    """``count`` new nodes on ``backend``, removed afterwards. On PostgreSQL, each is a new
    database of the server ``admin_url`` names (default: an embedded server of their own)."""
    with ExitStack() as stack:
        homes = [
            Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
            for _ in range(count)
        ]
        if backend == "sqlite":
            urls = [f"sqlite:///{home / 'liaison.db'}" for home in homes]
        else:
            if admin_url is None:
                admin_url = stack.enter_context(postgres_server())
            urls = [stack.enter_context(fresh_database(admin_url)) for _ in range(count)]
        nodes: list[Node] = []
        try:
            for home, url in zip(homes, urls, strict=True):
                nodes.append(make_node(home, url))
            yield nodes
        finally:
            for node in nodes:
                node.engine.dispose()  # before the databases are dropped
