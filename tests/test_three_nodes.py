"""The README's "Three nodes" section, run as written: three Liaison nodes as separate
processes (Canada's and France's `liaison serve`, every command a `liaison` process of its
own), each with its own home, store and key. Canada shares a SECRET REL TO FVEY report with
the USA; the USA's node withholds it from France until Canada consents, then passes it on;
Canada sees the onward chain with a verified proof.

As in test_readme_tour.py, the working directory looks like the repository's root (each
top-level entry a symlink there), the venv's bin directory is first on PATH, and the servers
get free ports (CAN_PORT, FRA_PORT, which examples/three-nodes.sh reads) instead of 6001 and
6003. The section's block runs in one bash process, stopping at the first failing command;
the servers are stopped whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from liaison.node import open_node
from liaison.settings import Settings
from liaison.store.schema import objects

ROOT = Path(__file__).resolve().parents[1]
REPORT = "report--4c6f9d77-9ad1-504d-ae68-a36d376a6ee8"
DEADLINE = 900  # seconds: a bound for a hung command, not a speed test


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def section_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"^## Three nodes\n(.*?)(?=^## )", readme, re.MULTILINE | re.DOTALL)
    assert section, 'README.md has no "## Three nodes" section'
    (block,) = re.findall(r"^```sh\n(.*?)^```", section.group(1), re.MULTILINE | re.DOTALL)
    return block


def run(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=DEADLINE
    )


def home(cwd: Path, country: str) -> Settings:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    env["LIAISON_HOME"] = str(cwd / "three-nodes" / country)
    return Settings.from_env(env)


def test_three_nodes_share_a_report_under_the_originators_consent(tmp_path: Path) -> None:
    for entry in ROOT.iterdir():
        if entry.name not in (".git", "three-nodes"):
            (tmp_path / entry.name).symlink_to(entry)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.update(CAN_PORT=str(free_port()), FRA_PORT=str(free_port()), COLUMNS="200")
    script = (
        "set -eo pipefail\ntrap 'examples/three-nodes.sh stop' EXIT\n"
        + section_block()
        + "\nusa explain $ID --partner FRA --json > after.json\n"
    )
    done = run(script, tmp_path, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    # Before the consent the USA's node withheld it from France, and said why.
    assert "third-party rule: originator CAN has not consented to release to FRA" in done.stdout
    after = json.loads((tmp_path / "after.json").read_text())
    assert after["decision"] == "release"
    assert any(r["code"] == "consent" for r in after["reasons"])

    # France holds Canada's report, owned by Canada, received from the USA.
    fra = open_node(home(tmp_path, "fra"))
    with fra.engine.connect() as connection:
        owner, came_from = connection.execute(
            sa.select(objects.c.owner, objects.c.received_from).where(objects.c.id == REPORT)
        ).one()
    fra.engine.dispose()
    assert (owner, came_from) == ("CAN", "USA")

    # Canada sees the chain: its own disclosure to the USA, the USA's to France, covered by
    # its consent and proved by the USA's ledger.
    env["LIAISON_HOME"] = str(tmp_path / "three-nodes" / "can")
    chain = json.loads(
        subprocess.run(
            ["liaison", "onward", REPORT, "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=DEADLINE,
        ).stdout
    )
    links = {(r["from"], r["to"]): r for r in chain}
    assert ("CAN", "USA") in links
    onward = links[("USA", "FRA")]
    assert onward["consent"] and onward["verified"] and onward["covered"]
