"""Child processes end with their parent, even when the parent is killed with SIGKILL.

Every process Liaison starts (the validator workers of a large import, the server's validator,
the worker processes of ``liaison serve --workers N``) calls :func:`end_with_parent` first.
On Linux the kernel then kills the child when its parent dies (``PR_SET_PDEATHSIG``); on
every system a daemon thread in the child also ends it once ``os.getppid()`` changes, which
happens when the parent dies and the child is handed to another process.

``PR_SET_PDEATHSIG`` fires when the *thread* that started the child ends, not only the
process: a child must be started from a thread that lives as long as the child is needed
(the main thread, or a thread kept for the purpose, as ``ValidatorProcess`` does).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# How often the portable fallback asks who the parent is.
POLL_SECONDS = 0.5


def end_with_parent(parent_pid: int, poll_seconds: float = POLL_SECONDS) -> None:
    """Tie this process's life to ``parent_pid``, the process that started it: call it first
    thing in the child (a ``ProcessPoolExecutor`` initializer, say). Returns at once; exits
    the process if the parent is already gone."""
    set_parent_death_signal()
    # The parent may have died before the signal was armed: then nothing would send it.
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(
        target=_watch_parent,
        args=(parent_pid, poll_seconds),
        name="liaison-parent-watch",
        daemon=True,
    ).start()


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies; False where the
    system has no such request (not Linux, or no ``prctl`` in its C library)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def _watch_parent(parent_pid: int, poll_seconds: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(poll_seconds)
    os._exit(1)
