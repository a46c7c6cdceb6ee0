"""The README's tour, run as written: the sibling of test_docs.py for the README's commands.

Every command of the `sh` blocks of README.md's "A tour" section runs in order, in one bash
process (the tour's shell variables carry over), on a fresh node: a temporary LIAISON_HOME,
no LIAISON_DATABASE_URL (SQLite) and no other LIAISON_* setting. The working directory looks
like the repository's root (each of its top-level entries is a symlink there), so the tour's
relative paths (`examples/bundle.json`) resolve as in a clone, while what it writes (`fra.json`,
`leaked.txt`) stays out of the checkout.

What differs from a user at a terminal, and only this:

- `. .venv/bin/activate` is skipped; the bin directory of the Python running the tests (the
  venv's) is first on PATH instead.
- `liaison serve` (which the tour starts in the background with `&`) gets a free port instead
  of 6000, in every command that names that port, and the test waits until the server answers
  before the next command (a user types slower than a server starts).
- When `jq` is not installed, a shim first on PATH runs the few jq filters the tour uses
  (JQ_SHIM below); a filter it does not know fails the test, saying so.

Each command must exit 0, or the code its comment names (`# ... exit code 1`). A command is a
line, with the lines that continue it (after a trailing backslash or pipe); lines that start
with `#` are comments.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ACTIVATE = ". .venv/bin/activate"
TOUR_PORT = "6000"
DEADLINE = 900  # seconds for the whole tour: a bound for a hung command, not a speed test
SERVER_DEADLINE = 180  # seconds for `liaison serve` to answer

# The jq filters the tour uses, for machines without jq: `jq [-r] FILTER [FILE]`.
JQ_SHIM = r'''#!PYTHON
"""jq for the README tour's test, when jq is not installed: only the tour's filters."""
import json
import re
import sys

args = sys.argv[1:]
raw = "-r" in args
args = [a for a in args if a != "-r"]
program, files = args[0], args[1:]
data = json.load(open(files[0]) if files else sys.stdin)
select = re.fullmatch(
    r'\.\[\] \| select\(\.name \| startswith\("([^"]*)"\)\) \| \.id', program
)
if program == "length":
    results = [len(data)]
elif program == ".copy":
    results = [data["copy"]]
elif program == ".description":
    results = [data["description"]]
elif program == '.username + ":" + .password':
    results = [data["username"] + ":" + data["password"]]
elif select:
    results = [o["id"] for o in data if o.get("name", "").startswith(select.group(1))]
else:
    sys.exit(f"jq shim (tests/test_readme_tour.py): unsupported filter {program!r}")
for value in results:
    if raw and isinstance(value, str):
        print(value)
    else:
        print(json.dumps(value, indent=2, ensure_ascii=False))
'''

# Run after `liaison serve ... &`: poll until the server answers, up to SERVER_DEADLINE.
WAIT_FOR_SERVER = """\
import sys, time, urllib.error, urllib.request
deadline = time.monotonic() + float(sys.argv[2])
while True:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/taxii2/", timeout=5)
        break
    except urllib.error.HTTPError:
        break  # it answers (401 without credentials)
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("liaison serve did not answer")
        time.sleep(0.2)
"""


def tour_commands(readme: str) -> list[str]:
    """The commands of the `sh` blocks of the "A tour" section, in order."""
    section = re.search(r"^## A tour\n(.*?)(?=^## )", readme, re.MULTILINE | re.DOTALL)
    assert section, 'README.md has no "## A tour" section'
    blocks = re.findall(r"^```sh\n(.*?)^```", section.group(1), re.MULTILINE | re.DOTALL)
    assert blocks, 'README.md\'s "A tour" section has no ```sh block'
    commands: list[str] = []
    pending = ""
    for line in "\n".join(blocks).splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line + "\n"
        if code_of(line).endswith(("\\", "|")):
            continue
        commands.append(pending.rstrip("\n"))
        pending = ""
    assert not pending, f"the tour ends inside a command: {pending!r}"
    return commands


def code_of(line: str) -> str:
    """A line without its trailing comment (the tour's commands have no ` #` inside quotes)."""
    return line.split(" #", 1)[0].strip()


def expected_exit(command: str) -> int:
    named = re.search(r"#.*\bexit code (\d+)\b", command)
    return int(named.group(1)) if named else 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tour_script(commands: list[str], port: int, python: str) -> str:
    """One bash script: each command, then a check of its exit code."""
    lines = ["set -o pipefail", "trap 'kill $(jobs -p) 2>/dev/null' EXIT"]
    for number, command in enumerate(commands, 1):
        if command == ACTIVATE:
            continue
        command = re.sub(rf"(--port |127\.0\.0\.1:){TOUR_PORT}\b", rf"\g<1>{port}", command)
        shown = shlex.quote(f"$ {command}")
        lines.append(f"printf '\\n%s\\n' {shown}; printf '\\n%s\\n' {shown} >&2")
        lines.append(command)
        lines.append("status=$?")
        expected = expected_exit(command)
        lines.append(
            f'if [ "$status" -ne {expected} ]; then echo "TOUR FAILED: command {number} exited'
            f' $status, not {expected}" >&2; exit 99; fi'
        )
        if re.match(r"liaison serve\b", command) and code_of(command).endswith("&"):
            wait = shlex.quote(WAIT_FOR_SERVER)
            lines.append(
                f"{shlex.quote(python)} -c {wait} {port} {SERVER_DEADLINE}"
                ' || { echo "TOUR FAILED: liaison serve did not answer" >&2; exit 99; }'
            )
    lines.append('echo "TOUR DONE" >&2')
    return "\n".join(lines) + "\n"


def written_files(commands: list[str]) -> set[str]:
    """The files the tour writes (`-o FILE`, `> FILE`)."""
    return {name for c in commands for name in re.findall(r"(?:\s-o|>)\s*([\w.-]+)", c)}


def clone_like(directory: Path, written: set[str]) -> None:
    """``directory`` made to look like the repository's root, through symlinks; not the files
    the tour writes (a user's `fra.json` in the checkout stays as it is)."""
    directory.mkdir()
    left_out = {".git", ".pytest_cache", ".ruff_cache", "liaison-data", *written}
    for entry in ROOT.iterdir():
        if entry.name not in left_out:
            (directory / entry.name).symlink_to(entry)


def test_the_readme_tour_can_be_parsed():
    commands = tour_commands(README.read_text())
    assert commands[0] == ACTIVATE
    assert any(c.startswith("liaison import examples/") for c in commands)
    assert any(re.match(r"liaison serve\b.*&$", code_of(c)) for c in commands)
    assert {"fra.json", "leaked.txt"} <= written_files(commands)
    for command in commands:
        assert all(len(line) < 100 for line in command.splitlines()), command
        outside = re.search(r"(^|[\s=<>'\"])\.\./", code_of(command))
        assert not outside, f"a clone has nothing outside itself: {command}"


@pytest.mark.slow
def test_the_readme_tour_runs_as_written(tmp_path: Path):
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "liaison").exists():
        pytest.skip(f"no liaison command beside {sys.executable}")
    if shutil.which("bash") is None or shutil.which("curl") is None:
        pytest.skip("the tour needs bash and curl")
    path = [str(bin_dir)]
    if shutil.which("jq") is None:
        shim = tmp_path / "shim"
        shim.mkdir()
        jq = shim / "jq"
        jq.write_text(JQ_SHIM.replace("PYTHON", sys.executable, 1))
        jq.chmod(0o755)
        path.append(str(shim))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    env["LIAISON_HOME"] = str(tmp_path / "home")
    env["PATH"] = os.pathsep.join([*path, env.get("PATH", "")])
    env["NO_COLOR"] = "1"
    commands = tour_commands(README.read_text())
    workdir = tmp_path / "clone"
    clone_like(workdir, written_files(commands))
    script = tmp_path / "tour.sh"
    script.write_text(tour_script(commands, free_port(), sys.executable))
    out_path, err_path = tmp_path / "tour.out", tmp_path / "tour.err"
    # Files, not pipes: a server left behind must not keep the test waiting for end of file.
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(
            ["bash", str(script)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            pass
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    stderr = err_path.read_text(errors="replace")
    report = textwrap.indent(
        stderr[-6000:] + "\n--- stdout (end) ---\n" + out_path.read_text(errors="replace")[-4000:],
        "  ",
    )
    assert process.returncode == 0 and "TOUR DONE" in stderr, f"the README tour failed:\n{report}"
