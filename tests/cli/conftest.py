"""The CLI as a user runs it: a node of its own in a temporary LIAISON_HOME."""

import pytest
from typer.testing import CliRunner

from liaison.cli import app


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("LIAISON_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LIAISON_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(app, [str(a) for a in args], input=input)

    return invoke


@pytest.fixture
def demo(run):
    result = run("demo")
    assert result.exit_code == 0, result.stderr
    return run
