"""A parent process that starts children as Liaison does, for tests that SIGKILL it.

    python -m tests.children_parent validator   # ValidatorProcess, first used from a thread
    python -m tests.children_parent fallback    # a child tied by the getppid watcher alone

Prints "ready" once its children run (tied to it), then waits to be killed.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time

from liaison import children
from liaison.stix.validate import ValidatorProcess
from tests.stix_factory import indicator, invalid_indicator


def validator() -> object:
    """The server's validator as the TAXII app uses it: first called from a request thread
    that then ends (the server's come and go), then again; the process must survive both."""
    check = ValidatorProcess()
    results: list[list[list[str]]] = []
    request = threading.Thread(target=lambda: results.append(check([indicator(1)])))
    request.start()
    request.join()
    results.append(check([invalid_indicator(2)]))
    assert results[0] == [[]] and results[1][0], results
    print("ready", flush=True)
    return check  # kept: a validator that is collected stops its process


def _fallback_child(parent_pid: int, armed: multiprocessing.synchronize.Event) -> None:
    # As on a system without prctl: only the watcher thread ties this child to its parent.
    children.set_parent_death_signal = lambda *_: False
    children.end_with_parent(parent_pid, poll_seconds=0.1)
    armed.set()
    while True:
        time.sleep(1)


def fallback() -> object:
    context = multiprocessing.get_context("spawn")
    armed = context.Event()
    child = context.Process(target=_fallback_child, args=(os.getpid(), armed))
    child.start()
    if not armed.wait(timeout=120):
        raise SystemExit("the child did not start")
    print("ready", flush=True)
    return child


def main() -> None:
    kept = {"validator": validator, "fallback": fallback}[sys.argv[1]]()
    while kept is not None:
        time.sleep(1)


if __name__ == "__main__":
    main()
