"""Documentation is part of the product: every command and setting has an entry."""

import re
from pathlib import Path

import typer

from liaison.cli import app
from liaison.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def command_paths() -> list[str]:
    paths = []

    def walk(command, prefix: str) -> None:
        children = getattr(command, "commands", None)
        if not children:
            paths.append(prefix)
            return
        for name, child in children.items():
            walk(child, f"{prefix} {name}".strip())

    walk(typer.main.get_command(app), "")
    return paths


def test_every_command_has_a_section_in_the_cli_docs():
    text = (DOCS / "cli.md").read_text()
    paths = command_paths()
    assert "alliance load" in paths and "import" in paths
    missing = [p for p in paths if not re.search(rf"^## `liaison {p}\b", text, re.MULTILINE)]
    assert missing == []


def test_every_setting_is_documented():
    text = (DOCS / "configuration.md").read_text()
    missing = [name for name in SETTINGS if f"`{name}`" not in text]
    assert missing == []


def test_readme_gives_the_two_setup_commands():
    text = (ROOT / "README.md").read_text()
    assert "make demo" in text and "make test" in text


def test_ci_runs_the_readmes_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
