"""A command imports only the libraries it uses (issue 14): `liaison --help` and `liaison node`
start without the validator, spaCy, the TAXII server or the ingestion libraries, any of which
takes longer to import than the command takes to run.

Each command runs in a fresh interpreter, which writes the names of the modules it imported as
it exits. What is imported is asserted, never how long it took: a busy machine stretches
times, not imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PATIENCE

# `liaison ARGS` as its console script runs it; at exit, every imported module's name goes
# to the file named first.
RUNNER = """
import atexit, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
sys.argv = ["liaison", *sys.argv[2:]]
from liaison.cli import main
main()
"""

# Each takes from a tenth of a second to seconds to import: only the commands that use one
# may import it.
HEAVY = {
    "spacy",  # entity extraction: ingest, and reading fingerprint slots
    "stix2validator",  # validation: import, ingest, demo, the TAXII server
    "jsonschema",  # ... through the validator
    "rfc3987_syntax",  # ... through jsonschema: alone seconds of CPU
    "stix2",  # required properties of a type, the types there are
    "datasketch",  # same-story grouping in ingest (with scipy)
    "scipy",
    "numpy",  # leak investigation and fingerprints
    "fastapi",  # the TAXII server
    "starlette",
    "uvicorn",
    "trafilatura",  # reading HTML
    "lxml",
    "feedparser",  # reading feeds
    "dateparser",  # dates written in documents
    "misp_stix_converter",  # import --from misp
    "httpx",  # ledger audit
    "psycopg",  # a PostgreSQL store
}
# What opens the store and the signing key: the help needs none of it.
STORE = {"sqlalchemy", "alembic", "cryptography"}


def imported(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `liaison ARGS`; its result and the top-level packages it imported."""
    out = tmp_path / "modules.txt"
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(out), *args],
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    return result, {name.split(".")[0] for name in out.read_text().split()}


@pytest.mark.slow
def test_help_imports_no_library_of_any_command(tmp_path):
    result, modules = imported(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    assert "typer" in modules  # the list is the command's
    assert modules & (HEAVY | STORE) == set()


@pytest.mark.slow
def test_node_imports_only_what_opens_the_node(run, tmp_path):
    assert run("init").exit_code == 0
    result, modules = imported(tmp_path, "node", "--json")
    assert result.returncode == 0, result.stderr
    assert '"type": "identity"' in result.stdout
    assert "sqlalchemy" in modules  # it did open the store
    assert modules & HEAVY == set()


@pytest.mark.slow
def test_leak_investigation_imports_no_validator_nor_ingestion(run, tmp_path):
    """A plain-text leak, matching nothing: numpy, but neither the validator, nor spaCy
    (slots are read only in matched copies), nor what reads HTML or feeds."""
    assert run("init").exit_code == 0
    leak = tmp_path / "leak.txt"
    leak.write_text("Nothing this node ever disclosed, typed out by somebody.\n")
    result, modules = imported(tmp_path, "leak", "investigate", str(leak))
    assert result.returncode == 1, result.stderr
    assert "matches nothing this node disclosed" in result.stderr
    assert "numpy" in modules
    assert modules & HEAVY == {"numpy"}
