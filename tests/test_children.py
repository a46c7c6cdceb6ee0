"""Every process Liaison starts ends when its parent dies, even by SIGKILL.

Each test starts a parent, waits (without assuming any speed) until its children run, records
every descendant, kills the parent with SIGKILL and polls, up to a generous deadline, until
none of them is left.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest

from liaison.node import apply_alliance, init_node
from liaison.settings import Settings
from liaison.stix.validate import ValidatorProcess
from liaison.store.engine import write_transaction
from liaison.taxii.credentials import issue_credentials
from tests.conftest import HTTP_TIMEOUT, PATIENCE
from tests.stix_factory import bundle, indicator

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DEADLINE = PATIENCE  # seconds for the orphans to go: generous, the usual is well under one
START_DEADLINE = 180.0  # seconds for a parent to start its children on a busy machine

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads the process table from /proc"
)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process, or None if there is none."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone, or going, while we read
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses
    return fields[0], int(fields[1]), int(fields[19])


def descendants(pid: int) -> dict[int, tuple[int, int]]:
    """Every live descendant of ``pid``: pid -> (its parent's pid, its start time)."""
    table: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] not in "ZX":
                table[int(entry.name)] = (stat[1], stat[2])
    found: dict[int, tuple[int, int]] = {}
    parents = {pid}
    while parents:
        level = {p: v for p, v in table.items() if v[0] in parents and p not in found}
        found.update(level)
        parents = set(level)
    return found


def alive(pid: int, started: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[2] == started and stat[0] not in "ZX"


def wait_for(condition: Callable[[], bool], deadline: float, what: str | Callable[[], str]) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(
                f"after {deadline:.0f} s: {what if isinstance(what, str) else what()}"
            )
        time.sleep(0.05)


def kill_and_check_orphans(parent: subprocess.Popen, family: dict[int, tuple[int, int]]) -> None:
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=DEADLINE)
    wait_for(
        lambda: not any(alive(pid, started) for pid, (_, started) in family.items()),
        DEADLINE,
        lambda: (
            "still running after their parent was killed: "
            + ", ".join(_command(pid) for pid, (_, s) in family.items() if alive(pid, s))
        ),
    )


def spawned(
    family: dict[int, tuple[int, int]], parent: int | None = None, command: str = "spawn_main"
) -> list[int]:
    """The processes in ``family`` whose command line holds ``command`` (by default those
    multiprocessing started, not its resource tracker), or those of them whose parent is
    ``parent``."""
    return [
        pid
        for pid, (ppid, _) in family.items()
        if command in _command(pid) and parent in (None, ppid)
    ]


def _command(pid: int) -> str:
    try:
        return f"{pid} " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return str(pid)


@contextmanager
def started(args: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """A parent process in a session of its own, so that whatever it leaves behind when a
    test fails is killed with its group afterwards."""
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env or dict(os.environ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=DEADLINE)
        if process.stdout is not None:
            process.stdout.close()


def read_until_ready(process: subprocess.Popen) -> None:
    """Wait for the parent's "ready" line, in a thread, so a hung parent fails the test."""
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.strip() == "ready":
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(START_DEADLINE)
    assert lines and lines[-1].strip() == "ready", "".join(lines)


def liaison_command() -> list[str]:
    script = Path(sys.executable).with_name("liaison")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from liaison.cli import main; main()"]


def test_the_server_validator_outlives_the_thread_that_started_it():
    """Linux's parent-death signal fires when the starting *thread* ends: the validator's
    process must not be started from a request thread that may end at any time."""
    check = ValidatorProcess()
    try:
        first: list[list[list[str]]] = []
        request = threading.Thread(target=lambda: first.append(check([indicator(1)])))
        request.start()
        request.join()
        assert first == [[[]]]
        assert check([indicator(2)]) == [[]]
    finally:
        check.close()


def test_a_child_whose_parent_is_already_gone_exits():
    """The parent may die before the child ties itself to it: the child exits at once."""
    code = (
        "import os; from liaison.children import end_with_parent; "
        "end_with_parent(os.getppid() + 1); print('survived')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1 and "survived" not in result.stdout


def test_parent_death_signal_is_set_on_linux():
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    code = (
        "import ctypes, signal; from liaison.children import set_parent_death_signal as s; "
        "assert s(); libc = ctypes.CDLL(None); v = ctypes.c_int(); "
        "assert libc.prctl(2, ctypes.byref(v), 0, 0, 0) == 0; print(v.value)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == signal.SIGKILL


@pytest.mark.slow
def test_killed_parent_takes_the_server_validator_with_it():
    with started([sys.executable, "-m", "tests.children_parent", "validator"]) as parent:
        read_until_ready(parent)
        family = descendants(parent.pid)
        validators = spawned(family, parent.pid, command="liaison.stix.validate")
        assert validators, "the validator process is not running"
        kill_and_check_orphans(parent, family)


@pytest.mark.slow
def test_the_watcher_alone_ends_an_orphan():
    """Where there is no parent-death signal, the child's watcher thread ends it."""
    with started([sys.executable, "-m", "tests.children_parent", "fallback"]) as parent:
        read_until_ready(parent)
        family = descendants(parent.pid)
        assert spawned(family, parent.pid), "the child is not running"
        kill_and_check_orphans(parent, family)


@pytest.mark.slow
def test_killed_import_leaves_no_validator_workers(tmp_path):
    home = tmp_path / "home"
    init_node(Settings.from_env({"LIAISON_HOME": str(home)}))[0].engine.dispose()
    # About 10 ms of validation an object: tens of seconds of work for two workers, of
    # which the test waits only until they run.
    payload = tmp_path / "bundle.json"
    payload.write_text(json.dumps(bundle(*(indicator(n) for n in range(6000)))))
    env = dict(
        os.environ,
        LIAISON_HOME=str(home),
        LIAISON_VALIDATION_WORKERS="2",
        COLUMNS="80",
    )
    env.pop("LIAISON_DATABASE_URL", None)
    with started([*liaison_command(), "import", str(payload)], env=env) as parent:
        wait_for(
            lambda: len(descendants(parent.pid)) >= 2 or parent.poll() is not None,
            START_DEADLINE,
            "the import did not start its validator workers",
        )
        assert parent.poll() is None, parent.stdout.read() if parent.stdout else ""
        family = descendants(parent.pid)
        kill_and_check_orphans(parent, family)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_killed_server_leaves_no_workers_nor_validators(tmp_path):
    """`liaison serve --workers 2`: uvicorn's worker processes, and the validator process a
    worker starts on its first upload, all end with the server."""
    home = tmp_path / "home"
    node, _ = init_node(Settings.from_env({"LIAISON_HOME": str(home)}))
    apply_alliance(node, EXAMPLES / "alliance.toml")
    with write_transaction(node.engine) as connection:
        issued = issue_credentials(connection, "USA")
    node.engine.dispose()
    port = _free_port()
    env = dict(os.environ, LIAISON_HOME=str(home))
    env.pop("LIAISON_DATABASE_URL", None)
    command = [*liaison_command(), "serve", "--port", str(port), "--workers", "2"]
    accept = "application/taxii+json;version=2.1"
    with (
        started(command, env=env) as server,
        httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            auth=(issued.username, issued.password),
            headers={"Accept": accept, "Content-Type": accept},
            timeout=HTTP_TIMEOUT,
        ) as client,
    ):

        def answers() -> bool:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            try:
                return client.get("/api/collections/").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answers, START_DEADLINE, "the server did not answer")
        collections = client.get("/api/collections/").json()["collections"]
        cid = next(c["id"] for c in collections if c["alias"] == "intelligence")
        # No originator named: the objects are then USA's own, which USA may send.
        sent = [indicator(n) for n in range(3)]
        for obj in sent:
            del obj["created_by_ref"]
        envelope = {"objects": sent}
        response = client.post(f"/api/collections/{cid}/objects/", content=json.dumps(envelope))
        assert response.status_code == 202, response.text
        assert response.json()["success_count"] == 3, response.text
        family = descendants(server.pid)
        workers = spawned(family, server.pid)
        validators = [
            pid
            for worker in workers
            for pid in spawned(family, worker, command="liaison.stix.validate")
        ]
        assert len(workers) == 2 and len(validators) == 1, [_command(pid) for pid in family]
        kill_and_check_orphans(server, family)
