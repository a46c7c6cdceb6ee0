"""OpenTAXII as the peer of the TAXII benchmark: installed from its source into a virtual
environment of its own, configured for TAXII 2.1, loaded with a benchmark's objects and served
by gunicorn as its documentation runs it.

PyPI's opentaxii 0.9.3 serves TAXII 1 only; TAXII 2.1 is on its GitHub master, which pins
SQLAlchemy 1.4, so it never shares Liaison's environment. Everything that runs inside that
environment (creating the API root, the collection and the account; loading objects) is the
script ``_PEER_SCRIPT`` below, written to the peer's work directory and run by the peer's own
Python: nothing in this checkout imports OpenTAXII.

Loading writes straight into OpenTAXII's TAXII 2 table (``opentaxii_stixobject``) through its
own SQLAlchemy model, row for row what its ``Taxii2SQLDatabaseAPI.add_objects`` writes (the
same ``date_added`` from the clock, ``version`` from ``get_object_version``, the object minus
id, type and spec_version as ``serialized_data``), in transactions of a batch each instead of
one existence query per object: the fastest fair way in.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.peers import peer_environment, stop_server

COMMIT = "1506bb7f54c2da3e839ccdfd5c5bcd16c928a9ac"
DEFAULT_SOURCE = f"git+https://github.com/eclecticiq/OpenTAXII@{COMMIT}"
# Installed beside it, as its own deployment files pin them: requirements-docker.txt
# (gunicorn) and requirements-postgres.txt (the PostgreSQL driver).
COMPANIONS = ("gunicorn==22.0.0", "psycopg2-binary>=2.9.1")
# The API root id of OpenTAXII's own TAXII 2 example (examples/taxii2/data-setup.sh).
API_ROOT = "b96631e7-f1c1-43dd-b9d6-55d634f31c41"
USERNAME = "bench-reader"
TAXII = "application/taxii+json;version=2.1"
ACCEPT = {"Accept": TAXII}
# Seconds gunicorn lets a worker take over a request before it kills it (its docs: 300).
WORKER_TIMEOUT = 300

_PEER_SCRIPT = r'''
"""Runs inside OpenTAXII's environment: `setup` or `load` (see bench/opentaxii.py)."""
import datetime
import json
import sys
import time
import uuid


def setup(api_root, username, password):
    from opentaxii.cli import app
    from opentaxii.entities import Account

    with app.app_context():
        api = app.taxii_server.servers.taxii2.persistence.api
        api.add_api_root(
            title="bench", description="bench.taxii_pages", default=True, is_public=False,
            api_root_id=api_root,
        )
        collection = api.add_collection(
            api_root_id=api_root, title="Intelligence", description="bench.taxii_pages",
            alias="intel", is_public=False, is_public_write=False,
        )
        account = Account(
            id=None, username=username, is_admin=False,
            permissions={str(collection.id): ["read", "write"]},
        )
        app.taxii_server.auth.api.update_account(account, password)
        print(collection.id, flush=True)


def load(db_url, collection_id):
    """One JSON array of objects a line on stdin; after each, the seconds its insert took
    (its JSON decoding excluded) on stdout."""
    import sqlalchemy
    from opentaxii.persistence.sqldb import taxii2models
    from opentaxii.taxii2.utils import get_object_version

    engine = sqlalchemy.create_engine(db_url)
    table = taxii2models.STIXObject.__table__
    collection = uuid.UUID(collection_id)
    last = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    tick = datetime.timedelta(microseconds=1)
    for line in sys.stdin:
        if not line.strip():
            break
        objects = json.loads(line)
        start = time.perf_counter()
        rows = []
        for obj in objects:
            # What add_objects stores, with date_added from the clock, strictly increasing.
            last = max(datetime.datetime.now(datetime.timezone.utc), last + tick)
            rows.append({
                "pk": uuid.uuid4(),
                "id": obj["id"],
                "collection_id": collection,
                "type": obj["id"].split("--")[0],
                "spec_version": obj["spec_version"],
                "date_added": last,
                "version": get_object_version(obj),
                "serialized_data": {
                    k: v for k, v in obj.items() if k not in ("id", "type", "spec_version")
                },
            })
        with engine.begin() as connection:
            connection.execute(table.insert(), rows)
        print(f"{time.perf_counter() - start:.6f}", flush=True)
    engine.dispose()


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup(*sys.argv[2:5])
    else:
        load(*sys.argv[2:4])
'''


def install(directory: Path, source: str) -> Path:
    """OpenTAXII from ``source`` (a path or a pip URL) with its companions, in a virtual
    environment in ``directory`` (reused when one is there): its ``bin``."""
    bin_dir = directory / "bin"
    if (bin_dir / "gunicorn").exists() and _has_opentaxii(bin_dir):
        return bin_dir
    return peer_environment(directory, (source, *COMPANIONS))


def _has_opentaxii(bin_dir: Path) -> bool:
    found = subprocess.run(
        [str(bin_dir / "python"), "-c", "import opentaxii.persistence.sqldb.taxii2models"],
        capture_output=True,
    )
    return found.returncode == 0


def driver_url(url: str) -> str:
    """A SQLAlchemy URL for OpenTAXII's SQLAlchemy 1.4: PostgreSQL through psycopg2."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass
class Instance:
    """One configured OpenTAXII: its work directory, configuration, databases, collection
    and the account's password."""

    bin_dir: Path
    workdir: Path
    config: Path
    data_url: str
    collection: str
    password: str

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "OPENTAXII_CONFIG": str(self.config)}

    @property
    def objects_path(self) -> str:
        return f"/taxii2/{API_ROOT}/collections/{self.collection}/objects/"

    @property
    def manifest_path(self) -> str:
        return f"/taxii2/{API_ROOT}/collections/{self.collection}/manifest/"

    def status_path(self, job: str) -> str:
        return f"/taxii2/{API_ROOT}/status/{job}/"


def configure(bin_dir: Path, workdir: Path, data_url: str, auth_url: str) -> Instance:
    """A new OpenTAXII in ``workdir``: its configuration (TAXII 2 persistence on
    ``data_url``, accounts on ``auth_url``, TAXII 1 off), one API root, one private collection
    and one account that may read and write it."""
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "peer.py"
    script.write_text(_PEER_SCRIPT)
    config = {
        "domain": "127.0.0.1",
        "support_basic_auth": True,
        "return_server_error_details": False,
        "auth_api": {
            "class": "opentaxii.auth.sqldb.SQLDatabaseAPI",
            "parameters": {
                "db_connection": driver_url(auth_url),
                "create_tables": True,
                "secret": secrets.token_hex(32),
                # Its tokens live ttl minutes (the code reads seconds as minutes): a day.
                "token_ttl_secs": 1440,
            },
        },
        "taxii1": None,
        "taxii2": {
            "persistence_api": {
                "class": "opentaxii.persistence.sqldb.Taxii2SQLDatabaseAPI",
                "parameters": {"db_connection": driver_url(data_url), "create_tables": True},
            },
            "title": "OpenTAXII for bench.taxii_pages",
            "public_discovery": False,
            "max_content_length": 209_715_200,
        },
        "logging": {"opentaxii": "warning", "root": "warning"},
    }
    path = workdir / "opentaxii.yml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    password = secrets.token_urlsafe(16)
    instance = Instance(bin_dir, workdir, path, driver_url(data_url), "", password)
    done = subprocess.run(
        [str(bin_dir / "python"), str(script), "setup", API_ROOT, USERNAME, password],
        env=instance.env,
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"OpenTAXII setup failed: {done.stderr.strip()[-500:]}")
    instance.collection = done.stdout.split()[-1]
    return instance


class Loader:
    """OpenTAXII's loading process: ``send`` a batch, get the seconds its insert took."""

    def __init__(self, instance: Instance) -> None:
        self.log = (instance.workdir / "load.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(instance.bin_dir / "python"),
                str(instance.workdir / "peer.py"),
                "load",
                instance.data_url,
                instance.collection,
            ],
            env=instance.env,
            cwd=instance.workdir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.seconds = 0.0
        self.loaded = 0

    def send(self, objects: Sequence[dict[str, Any]]) -> float:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(objects, separators=(",", ":")) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"OpenTAXII's loader stopped: see {self.log.name}")
        seconds = float(answer)
        self.seconds += seconds
        self.loaded += len(objects)
        return seconds

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.write("\n")
            self.process.stdin.close()
        self.process.wait(timeout=120)
        self.log.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn serving one OpenTAXII with one sync worker, as its documentation runs it
    (``gunicorn opentaxii.http:app --config python:opentaxii.http``), on a loopback port."""

    def __init__(self, instance: Instance, timeout: float = WORKER_TIMEOUT) -> None:
        self.instance = instance
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (instance.workdir / "gunicorn.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(instance.bin_dir / "gunicorn"),
                "opentaxii.http:app",
                "--workers",
                "1",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--config",
                "python:opentaxii.http",
                "--timeout",
                str(int(timeout)),
            ],
            env=instance.env,
            cwd=instance.workdir,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.token = self._sign_in()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _sign_in(self) -> str:
        """A JWT from /management/auth, OpenTAXII's primary way to authenticate (Basic is its
        fallback): once the server answers."""
        deadline = time.monotonic() + 120
        credentials = {"username": USERNAME, "password": self.instance.password}
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"OpenTAXII exited: see {self.log.name}")
            try:
                response = httpx.post(f"{self.url}/management/auth", json=credentials, timeout=10)
                if response.status_code == 200:
                    return response.json()["token"]
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"OpenTAXII did not start: see {self.log.name}")
            time.sleep(0.2)

    def client(self, timeout: float) -> httpx.Client:
        headers = {**ACCEPT, "Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def stop(self) -> None:
        stop_server(self.process, self.log)


def stored_reports(data_url: str) -> tuple[list[str], list[str]]:
    """Each report's newest version in OpenTAXII's table, in date_added order (what its
    pages of reports list): their date_added in TAXII's format, and their ids."""
    import sqlalchemy as sa

    url = data_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT id, date_added, version FROM opentaxii_stixobject WHERE type = 'report'"
                )
            ).all()
    finally:
        engine.dispose()
    newest: dict[str, tuple[Any, Any]] = {}
    for oid, added, version in rows:
        if oid not in newest or version > newest[oid][1]:
            newest[oid] = (added, version)
    ordered = sorted((_taxii_time(added), oid) for oid, (added, _) in newest.items())
    return [stamp for stamp, _ in ordered], [oid for _, oid in ordered]


def _taxii_time(value: Any) -> str:
    """A stored date_added (a datetime, or SQLite's text) in TAXII's format."""
    text = value.isoformat(sep=" ") if hasattr(value, "isoformat") else str(value)
    text = text.split("+")[0]
    if "." not in text:
        text += ".000000"
    return text.replace(" ", "T") + "Z"
