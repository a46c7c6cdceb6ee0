"""The OASIS validator's verdict on each object, using every core on large imports.

The verdict is exactly ``stix2validator.validate_instance`` on the object with STIX 2.1
options; only the scheduling is ours. Small imports validate in this process, where the cost
of starting workers would exceed the work.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from stix2validator import ValidationOptions, validate_instance

from liaison.children import end_with_parent

_OPTIONS = ValidationOptions(version="2.1")
# Below this many objects, validating in-process beats starting a pool.
PARALLEL_THRESHOLD = 400
_CHUNK = 100


def validation_errors(obj: dict[str, Any]) -> list[str]:
    """The validator's error messages for one object; empty when it is valid."""
    try:
        result = validate_instance(obj, _OPTIONS)
    except Exception as exc:  # the validator raises on some malformed shapes
        return [f"{obj.get('id', '?')}: {exc}"]
    if result.is_valid:
        return []
    messages = [_as_written(error.message, obj) for error in result.errors]
    return messages or ["invalid under the STIX 2.1 schema"]


# stix2-validator (3.3) words every non-boolean malware ``is_family`` as this, whatever the
# value was: quote the value the object holds instead.
_IS_FAMILY = "is_family: 'true' is not of type 'boolean'"


def _as_written(message: str, obj: dict[str, Any]) -> str:
    """The validator's ``message`` quoting the object's own values."""
    if message.endswith(_IS_FAMILY) and "is_family" in obj:
        value = obj["is_family"]
        written = repr(value) if isinstance(value, str) else json.dumps(value)
        quoted = f"is_family: {written} is not of type 'boolean'"
        return message.removesuffix(_IS_FAMILY) + quoted
    return message


def _validate_chunk(chunk: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [validation_errors(obj) for obj in chunk]


def validate_all(
    objects: Sequence[dict[str, Any]],
    workers: int = 0,
    on_progress: Callable[[int], None] | None = None,
) -> list[list[str]]:
    """Errors for each object, in order. ``workers=0`` uses one process per core;
    ``on_progress`` is called with the number of objects validated since its last call."""
    if workers == 0:
        workers = os.cpu_count() or 1
    chunks = [objects[i : i + _CHUNK] for i in range(0, len(objects), _CHUNK)]
    if workers <= 1 or len(objects) < PARALLEL_THRESHOLD:
        return _collect(map(_validate_chunk, chunks), on_progress)
    # fork: the workers inherit the already imported validator instead of importing it again.
    # The workers end with this process, even if it is killed: they are started here, in the
    # thread that waits for them, which lives until they are done.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=end_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
        return _collect(pool.map(_validate_chunk, chunks), on_progress)


def _collect(
    chunk_results: Iterable[list[list[str]]], on_progress: Callable[[int], None] | None
) -> list[list[str]]:
    results: list[list[str]] = []
    for chunk_result in chunk_results:
        results.extend(chunk_result)
        if on_progress:
            on_progress(len(chunk_result))
    return results


class ValidatorProcess:
    """A validator in a process of its own, for servers: validation is CPU-bound Python, and
    run in the server's process it would hold the GIL against every other request. Started
    with ``spawn`` (never ``fork`` a process that runs threads), on first use.

    The process ends with the server, even when the server is killed. It is started from a
    thread of this object's own, never from the request's: Linux's parent-death signal fires
    when the thread that started a child ends, and a server's request threads come and go."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._starter: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def __call__(self, objects: Sequence[dict[str, Any]]) -> list[list[str]]:
        if not objects:
            return []
        with self._lock:
            if self._pool is None or self._starter is None:
                self._starter = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="liaison-validator"
                )
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=end_with_parent,
                    initargs=(os.getpid(),),
                )
            pool, starter = self._pool, self._starter
        # The pool starts its process inside submit: submit on the starter's thread.
        submitted = starter.submit(pool.submit, _validate_chunk, list(objects)).result()
        return submitted.result()

    def close(self) -> None:
        with self._lock:
            pool, starter = self._pool, self._starter
            self._pool = self._starter = None
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if starter is not None:
            starter.shutdown()
