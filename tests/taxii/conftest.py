"""A live TAXII server on a loopback port, over the demo's node, for each database."""

import contextlib
import functools
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from taxii2client.common import _HTTPConnection
from taxii2client.v21 import Collection

from liaison.demo import DEFAULT_ALLIANCE, DEFAULT_DOCUMENTS, DEFAULT_INTELLIGENCE, run_demo
from liaison.ledger import log
from liaison.store.engine import write_transaction
from liaison.store.schema import ledger_checkpoints, ledger_entries, ledger_head, ledger_nodes
from liaison.taxii.app import create_app
from liaison.taxii.credentials import IssuedCredentials, issue_credentials
from tests.conftest import HTTP_TIMEOUT, PATIENCE

ACCEPT = {"Accept": "application/taxii+json;version=2.1"}


@dataclass
class LiveServer:
    url: str
    node: object
    credentials: dict[str, IssuedCredentials]

    def client(self, partner: str | None = None, **headers: str) -> httpx.Client:
        auth = None
        if partner is not None:
            issued = self.credentials[partner]
            auth = (issued.username, issued.password)
        return httpx.Client(
            base_url=self.url, auth=auth, headers={**ACCEPT, **headers}, timeout=HTTP_TIMEOUT
        )

    def collection_id(self, alias: str) -> str:
        with self.client("USA") as client:
            listed = client.get("/api/collections/").json()["collections"]
        return next(c["id"] for c in listed if c["alias"] == alias)


@pytest.fixture(autouse=True)
def patient_taxii2client(monkeypatch: pytest.MonkeyPatch) -> None:
    """taxii2client (and the stix2 TAXIICollectionStore on it) waits up to PATIENCE: it passes
    no timeout to its requests session, which would wait forever on a hung server, and gives a
    POST's status 60 seconds to become final."""
    opened = _HTTPConnection.__init__

    def patient_init(self, *args, **kwargs) -> None:
        opened(self, *args, **kwargs)
        self.session.request = functools.partial(self.session.request, timeout=PATIENCE)

    monkeypatch.setattr(_HTTPConnection, "__init__", patient_init)
    monkeypatch.setattr(
        Collection,
        "add_objects",
        functools.partialmethod(Collection.add_objects, timeout=PATIENCE),
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live(settings) -> Iterator[LiveServer]:
    result = run_demo(settings, DEFAULT_DOCUMENTS, DEFAULT_ALLIANCE, DEFAULT_INTELLIGENCE)
    node = result.node
    with write_transaction(node.engine) as connection:
        issued = {
            code: issue_credentials(connection, code) for code in ("USA", "FRA", "TUR", "ALB")
        }
    try:
        with serving(node) as url:
            yield LiveServer(url, node, issued)
    finally:
        node.engine.dispose()  # close the pool before the database is dropped


@contextlib.contextmanager
def serving(node) -> Iterator[str]:
    """``node``'s TAXII server on a free loopback port, for the block's duration: its URL."""
    port = _free_port()
    config = uvicorn.Config(create_app(node), host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + PATIENCE
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the TAXII server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=PATIENCE)


def envelope_objects(response: httpx.Response) -> list[dict]:
    return json.loads(response.content).get("objects", [])


def rewrite_history(engine, change, keep=None):
    """What a node that rewrites its past would do: rebuild its whole log, consistently, from
    its first ``keep`` entries altered by ``change``; it signs new checkpoints with its key."""
    with engine.connect() as conn:
        bodies = [json.loads(e.body) for e in log.entries(conn, limit=keep)]
    with write_transaction(engine) as conn:
        for table in (ledger_entries, ledger_nodes, ledger_checkpoints):
            conn.execute(table.delete())
        conn.execute(ledger_head.update().values(size=0, frontier=b""))
        altered = [change(body) for body in bodies]
        log.append(
            conn,
            [
                log.Entry(
                    b["kind"],
                    {k: v for k, v in b.items() if k not in ("seq", "at", "kind")},
                    b.get("partner"),
                    b.get("object_id"),
                )
                for b in altered
            ],
        )
