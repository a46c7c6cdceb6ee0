import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from liaison import importer
from liaison.errors import InputError, NotStix, PayloadTooLarge
from liaison.importer import import_objects, import_payload
from liaison.settings import InputLimits
from liaison.stix.timestamps import now_micros
from liaison.store.objects import count_versions
from liaison.store.schema import clock, objects
from tests.conftest import PATIENCE
from tests.stix_factory import bundle, indicator, invalid_indicator

ROOT = Path(__file__).resolve().parents[1]


def stored_count(node) -> int:
    with node.engine.connect() as connection:
        return count_versions(connection)


def test_valid_objects_are_stored_invalid_ones_rejected_with_the_validators_message(node):
    before = stored_count(node)
    report = import_objects(node.engine, [indicator(1), invalid_indicator(2), indicator(3)])
    assert [s.status for s in report.statuses] == ["added", "rejected", "added"]
    assert any("'pattern' is a required property" in m for m in report.statuses[1].messages)
    assert stored_count(node) == before + 2
    status = report.as_taxii_status()
    assert (status["total_count"], status["success_count"], status["failure_count"]) == (3, 2, 1)
    assert status["failures"][0]["id"] == invalid_indicator(2)["id"]
    assert "pattern" in status["failures"][0]["message"]


def test_reimport_is_a_no_op(node):
    batch = [indicator(n) for n in range(5)]
    import_objects(node.engine, batch)
    before = stored_count(node)
    report = import_objects(node.engine, batch)
    assert [s.status for s in report.statuses] == ["present"] * 5
    assert report.as_taxii_status()["success_count"] == 5
    assert stored_count(node) == before


def test_only_what_is_not_stored_identically_is_validated(node, monkeypatch):
    stored = [indicator(n) for n in range(3)]
    import_objects(node.engine, stored)
    validated: list[str] = []
    plain = importer.validate_all

    def counting(objects, **kwargs):
        validated.extend(o["id"] for o in objects)
        return plain(objects, **kwargs)

    monkeypatch.setattr(importer, "validate_all", counting)
    changed = dict(stored[1], name="renamed, same version")  # same id and version, new text
    newer = indicator(2, modified="2018-01-01T00:00:00.000Z")
    batch = [stored[0], changed, newer, invalid_indicator(7), indicator(8)]
    report = import_objects(node.engine, batch)
    assert validated == [o["id"] for o in batch[1:]]
    statuses = [s.status for s in report.statuses]
    assert statuses == ["present", "present", "added", "rejected", "added"]

    # A server's validator (``validate=``) is spared the same way.
    sent: list[dict] = []

    def server_validator(objects):
        sent.extend(objects)
        return plain(objects)

    again = import_objects(node.engine, batch, validate=server_validator)
    assert sent == [changed, invalid_indicator(7)]
    assert [s.status for s in again.statuses] == ["present"] * 3 + ["rejected", "present"]
    assert again.statuses[3].messages == report.statuses[3].messages


def test_built_here_skips_the_validator(node, monkeypatch):
    monkeypatch.setattr(importer, "validate_all", lambda *_, **__: pytest.fail("validated"))
    report = import_objects(node.engine, [indicator(40)], validate=importer.built_here)
    assert [s.status for s in report.statuses] == ["added"]


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"not json", InputError),
        (b'{"type": "bundle"}', NotStix),
        (json.dumps(bundle(indicator(1))).encode() + b" " * 2048, PayloadTooLarge),
    ],
)
def test_refused_payload_writes_nothing(node, payload, error):
    before = stored_count(node)
    with pytest.raises(error):
        import_payload(node.engine, payload, InputLimits(max_bytes=2048))
    assert stored_count(node) == before


def _worker(node, *args: str) -> subprocess.Popen:
    env = dict(
        os.environ,
        LIAISON_HOME=str(node.settings.home),
        LIAISON_DATABASE_URL=node.settings.database_url,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "tests.import_worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_killed_import_leaves_nothing_partial(node):
    before = stored_count(node)
    worker = _worker(node, "0", "1200", "--pause", "30")
    assert worker.stdout.readline().strip() == "batch"  # 500 objects written, not committed
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=PATIENCE)
    assert stored_count(node) == before
    # The store is usable afterwards and the same import now succeeds whole.
    report = import_objects(node.engine, [indicator(n) for n in range(1200)])
    assert report.count("added") == 1200


@pytest.mark.slow
def test_date_added_is_unique_and_monotonic_under_concurrent_imports(node, tmp_path):
    # The last date_added lies an hour ahead, as after the system clock stepped back: both
    # writers must then continue from the stored value, so only its lock keeps them apart.
    with node.engine.begin() as connection:
        connection.execute(clock.update().values(last_added=now_micros() + 3_600_000_000))
    go = tmp_path / "go"
    slow = _worker(node, "0", "1200", "--pause", "0.7")
    fast = _worker(node, "5000", "600", "--wait-for", str(go))
    assert slow.stdout.readline().strip() == "batch"
    go.touch()  # the second import starts while the first holds its transaction open
    out_slow, _ = slow.communicate(timeout=120)
    out_fast, _ = fast.communicate(timeout=120)
    assert slow.returncode == 0 and fast.returncode == 0
    assert out_slow.strip().endswith("done 1200") and out_fast.strip().endswith("done 600")

    with node.engine.connect() as connection:
        rows = connection.execute(
            sa.select(objects.c.id, objects.c.date_added)
            .where(objects.c.type == "indicator")
            .order_by(objects.c.date_added)
        ).all()
    stamps = [r.date_added for r in rows]
    assert len(stamps) == 1800 and len(set(stamps)) == 1800
    order = {indicator(n)["id"]: n for n in [*range(1200), *range(5000, 5600)]}
    numbers = [order[r.id] for r in rows]
    # Each import's objects are contiguous and in their bundle order: writers never interleave.
    first_slow = numbers.index(0)
    slow_block = numbers[first_slow : first_slow + 1200]
    assert slow_block == list(range(1200))
    rest = numbers[:first_slow] + numbers[first_slow + 1200 :]
    assert rest == list(range(5000, 5600))
