"""The CLI as a user runs it: a node of its own in a temporary LIAISON_HOME."""

import pytest


@pytest.fixture
def run(cli):
    return cli


@pytest.fixture
def demo(run):
    result = run("demo")
    assert result.exit_code == 0, result.stderr
    return run
