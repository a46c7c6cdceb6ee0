"""The OASIS validator's verdict on each object, at as little cost as that verdict allows.

The verdict is exactly ``stix2validator.validate_instance`` on the object with STIX 2.1
options (tests/stix/test_validate.py compares it with the plain public call); only the cost
is ours. Measured on a feed-like corpus, stix2validator spends about half its time building
a jsonschema validator and a schema registry for every object and crawling the schema again
for every ``$ref``, and a process pays seconds to import it, most of them in
``rfc3987_syntax`` building a grammar. So here:

- stix2validator is imported on first use, without ``rfc3987_syntax`` (jsonschema's checker
  of the ``iri`` formats, which no STIX 2.1 schema uses);
- each schema's validator is built once per process, on a registry that already holds every
  schema file of its directory, crawled once (``_cache_validators``);
- large imports validate in forked workers, one per core (``validate_all``); a server in one
  process of its own that imports only this module (``ValidatorProcess``).
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

from liaison.children import end_with_parent

# Below this many objects, validating in-process beats starting a pool.
PARALLEL_THRESHOLD = 400
_CHUNK = 100
# jsonschema imports it, if installed, to check the "iri" and "iri-reference" formats.
_IRI_CHECKER = "rfc3987_syntax"
# Threads of a server may validate at once: the first import and its patch happen once.
_IMPORT = threading.Lock()


def _validator() -> tuple[Callable[..., Any], Any]:
    """stix2validator's ``validate_instance`` and the STIX 2.1 options, imported once."""
    with _IMPORT:
        return _import_validator()


@functools.cache
def _import_validator() -> tuple[Callable[..., Any], Any]:
    blocked = "jsonschema" not in sys.modules and _IRI_CHECKER not in sys.modules
    if blocked:
        # A None entry makes the import fail, so jsonschema registers no "iri" checker: no
        # STIX 2.1 schema names that format (tests/stix/test_validate.py checks), and building
        # the checker's grammar is most of the validator's import time.
        sys.modules[_IRI_CHECKER] = None  # type: ignore[assignment]
    try:
        import stix2validator.validator
        from stix2validator import ValidationOptions, validate_instance
    finally:
        if blocked:
            del sys.modules[_IRI_CHECKER]
    _cache_validators(stix2validator.validator)
    # The registry of the schemas every object needs, built now: inherited by forked workers.
    package = Path(stix2validator.validator.__file__).parent
    _schema_registry(stix2validator.validator, os.path.abspath(f"{package}/schemas-2.1/schemas/"))
    return validate_instance, ValidationOptions(version="2.1")


def _cache_validators(module: ModuleType) -> None:
    """Make ``module`` (stix2validator.validator) build each schema's validator once.

    Its ``load_validator`` makes a new jsonschema validator on a new registry for every
    object, and the registry crawls the whole schema again at every ``$ref``. The validator
    it returns for a schema path is always made from the same schema (stix2validator keeps
    the first one it patched for that path), so keeping one per path changes nothing but the
    cost; its registry here also holds, already crawled, every schema file of the directory,
    as ``module.retrieve_from_filesystem`` makes each, under the URI a ``$ref`` resolves to.
    """
    plain = module.load_validator
    if getattr(plain, "cached_by_liaison", False):
        return
    built: dict[tuple[str, str], Any] = {}

    def load_validator(schema_path: str, schema: dict[str, Any], schema_dir: str) -> Any:
        key = (schema_path, schema_dir)
        validator = built.get(key)
        if validator is None:
            from referencing.jsonschema import DRAFT202012

            made = plain(schema_path, schema, schema_dir)
            registry = (
                _schema_registry(module, schema_dir)
                .with_resource(schema_path, DRAFT202012.create_resource(made.schema))
                .crawl()
            )
            validator = built.setdefault(
                key, type(made)(made.schema, registry=registry, format_checker=made.format_checker)
            )
        return validator

    load_validator.cached_by_liaison = True  # type: ignore[attr-defined]
    module.load_validator = load_validator  # type: ignore[attr-defined]


@functools.cache
def _schema_registry(module: ModuleType, schema_dir: str) -> Any:
    """A registry of every schema file under ``schema_dir``, crawled; it retrieves anything
    else as stix2validator's own registry does."""
    from referencing import Registry

    retrieve = functools.partial(module.retrieve_from_filesystem, schema_dir=schema_dir)
    registry = Registry(retrieve=retrieve)  # type: ignore[call-arg]
    for path in sorted(Path(schema_dir).rglob("*.json")):
        uri = path.as_uri()
        try:
            registry = registry.with_resource(uri, retrieve(uri))
        except Exception:  # left to be retrieved (and to fail) as stix2validator would
            continue
    return registry.crawl()


def validation_errors(obj: dict[str, Any]) -> list[str]:
    """The validator's error messages for one object; empty when it is valid."""
    validate_instance, options = _validator()
    try:
        result = validate_instance(obj, options)
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


def validate_batch(objects: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Errors for each object, in order, validated in this process."""
    return [validation_errors(obj) for obj in objects]


def validate_all(
    objects: Sequence[dict[str, Any]],
    workers: int = 0,
    on_progress: Callable[[int], None] | None = None,
) -> list[list[str]]:
    """Errors for each object, in order. ``workers=0`` uses one process per core;
    ``on_progress`` is called with the number of objects validated since its last call."""
    if not objects:
        return []
    if workers == 0:
        workers = os.cpu_count() or 1
    chunks = [objects[i : i + _CHUNK] for i in range(0, len(objects), _CHUNK)]
    if workers <= 1 or len(objects) < PARALLEL_THRESHOLD:
        return _collect(map(validate_batch, chunks), on_progress)
    # Imported here, the validator (and its schema registry) is inherited by every worker.
    _validator()
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
        return _collect(pool.map(validate_batch, chunks), on_progress)


def _collect(
    chunk_results: Iterable[list[list[str]]], on_progress: Callable[[int], None] | None
) -> list[list[str]]:
    results: list[list[str]] = []
    for chunk_result in chunk_results:
        results.extend(chunk_result)
        if on_progress:
            on_progress(len(chunk_result))
    return results


class ValidatorError(RuntimeError):
    """The validator process ended before it answered."""


class ValidatorProcess:
    """A validator in a process of its own, for servers: validation is CPU-bound Python, and
    run in the server's process it would hold the GIL against every other request.

    The process is started on first use and serves every later call, one batch at a time.
    It runs this module (``python -m liaison.stix.validate``), so it imports only what
    validation needs: a ``multiprocessing`` child would import the server's ``__main__``
    again, the whole command line. If it dies, the call that was waiting fails and the next
    call starts a new one. ``workers`` is as for ``validate_all``: above 1 (0: one per
    core), the process forks workers to share a large batch.

    The process ends with the server, even when the server is killed. It is started from a
    thread of this object's own, never from the request's: Linux's parent-death signal fires
    when the thread that started a child ends, and a server's request threads come and go."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._child: _Child | None = None
        self._starter: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def __call__(self, objects: Sequence[dict[str, Any]]) -> list[list[str]]:
        if not objects:
            return []
        with self._lock:
            if self._child is None or not self._child.alive:
                if self._child is not None:
                    self._child.close()
                if self._starter is None:
                    self._starter = ThreadPoolExecutor(
                        max_workers=1, thread_name_prefix="liaison-validator"
                    )
                self._child = self._starter.submit(_Child, self.workers).result()
            return self._child.validate(list(objects))

    def close(self) -> None:
        with self._lock:
            child, starter = self._child, self._starter
            self._child = self._starter = None
        if child is not None:
            child.close()
        if starter is not None:
            starter.shutdown()


# How long a closed validator process is given to end before it is killed.
_CLOSE_SECONDS = 5.0
_MODULE = "liaison.stix.validate"


class _Child:
    """One ``python -m liaison.stix.validate`` process and the two pipes to it."""

    def __init__(self, workers: int) -> None:
        to_child, requests = os.pipe()
        replies, from_child = os.pipe()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    _MODULE,
                    *map(str, (os.getpid(), to_child, from_child, workers)),
                ],
                pass_fds=(to_child, from_child),
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            os.close(requests)
            os.close(replies)
            raise
        finally:
            os.close(to_child)  # the child's ends: it has its own copies
            os.close(from_child)
        self.requests = Connection(requests, readable=False)
        self.replies = Connection(replies, writable=False)
        self.failed = False

    @property
    def alive(self) -> bool:
        return not self.failed and self.process.poll() is None

    def validate(self, objects: list[dict[str, Any]]) -> list[list[str]]:
        try:
            self.requests.send(objects)
            return self.replies.recv()
        except (EOFError, OSError) as exc:
            self.failed = True
            raise ValidatorError(
                f"the validator process ended (exit code {self.process.poll()})"
            ) from exc

    def close(self) -> None:
        self.failed = True
        self.requests.close()  # the child reads the end of its requests and exits
        self.replies.close()
        try:
            self.process.wait(timeout=_CLOSE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _serve(parent: int, requests_fd: int, replies_fd: int, workers: int) -> None:
    """The validator process: a batch of objects in, their errors out, until the end."""
    end_with_parent(parent)
    requests = Connection(requests_fd, writable=False)
    replies = Connection(replies_fd, readable=False)
    _validator()  # ready before the first batch
    while True:
        try:
            objects = requests.recv()
        except EOFError:
            return
        replies.send(validate_all(objects, workers))


if __name__ == "__main__":
    _serve(*(int(arg) for arg in sys.argv[1:5]))
