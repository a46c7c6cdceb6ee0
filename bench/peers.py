"""The peers a benchmark compares with (pymerkle, OpenTAXII), installed into virtual
environments of their own (from PyPI, or from a source path or URL pip understands) so that
their dependencies never meet Liaison's."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any


def peer_environment(directory: Path, requirements: Sequence[str]) -> Path:
    """A virtual environment in ``directory`` with ``requirements`` installed: its ``bin``.
    A requirement may be anything ``pip install`` takes: a name and version range, a local
    source tree, or a ``git+https://...@commit`` URL."""
    subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
    bin_dir = directory / "bin"
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run(
        [*pip, "--disable-pip-version-check", *requirements],
        check=True,
        capture_output=True,
        text=True,
    )
    return bin_dir


def stop_server(process: subprocess.Popen[bytes], log: IO[Any]) -> None:
    """Stop a server a benchmark started: SIGTERM, then SIGKILL after 30 s; close its log."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log.close()
