"""The install: every import declared in pyproject.toml, and the lock agreeing with it.

`make install` installs requirements.lock (exact versions with hashes), then Liaison without
its dependencies: a dependency declared but not locked, or locked at a version the declared
range refuses, would go unnoticed until a fresh install. `make lock` fixes either.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
OWN = {"liaison", "tests", "bench", "__future__"}


def declared() -> tuple[list[Requirement], list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    main = [Requirement(r) for r in project["dependencies"]]
    test = [Requirement(r) for r in project["optional-dependencies"]["test"]]
    return main, test


def locked() -> dict[str, list[tuple[Requirement, list[str]]]]:
    """name -> each (pinned requirement, its hashes) in the lock; a universal lock may pin a
    name once per environment marker."""
    pins: dict[str, list[tuple[Requirement, list[str]]]] = {}
    current: list[str] | None = None
    for line in LOCK.read_text().splitlines():
        text = line.split(" #", 1)[0].strip().rstrip("\\").strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("--hash="):
            assert current is not None, f"a hash before any requirement: {line}"
            current.append(text.removeprefix("--hash="))
            continue
        assert not text.startswith("-"), f"an option in the lock: {line}"
        requirement = Requirement(text)
        current = []
        pins.setdefault(canonicalize_name(requirement.name), []).append((requirement, current))
    return pins


def pins_here(
    pins: dict[str, list[tuple[Requirement, list[str]]]], name: str
) -> list[tuple[Requirement, list[str]]]:
    """The pins of ``name`` that apply to the running Python."""
    return [
        (req, hashes)
        for req, hashes in pins.get(canonicalize_name(name), [])
        if req.marker is None or req.marker.evaluate()
    ]


def version_of(requirement: Requirement) -> str:
    (spec,) = requirement.specifier
    assert spec.operator == "==", f"not an exact pin: {requirement}"
    return spec.version


def test_every_locked_requirement_is_an_exact_pin_with_hashes():
    pins = locked()
    assert len(pins) > 50
    for entries in pins.values():
        for requirement, hashes in entries:
            version_of(requirement)
            assert hashes and all(h.startswith("sha256:") for h in hashes), requirement
    assert "liaison" not in pins  # installed from the working tree, without dependencies


def test_every_declared_dependency_is_locked_within_its_range():
    pins = locked()
    main, test = declared()
    for requirement in [*main, *test]:
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        here = pins_here(pins, requirement.name)
        assert len(here) == 1, (
            f"{requirement.name} is not locked once for this Python: run make lock"
        )
        version = version_of(here[0][0])
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{requirement.name} is locked at {version}, outside {requirement.specifier}: "
            "run make lock"
        )


def test_the_extras_of_declared_dependencies_are_locked():
    """psycopg[binary] brings psycopg-binary: an extra's requirements are in the lock too."""
    pins = locked()
    main, test = declared()
    for requirement in [*main, *test]:
        for extra in requirement.extras:
            try:
                requires = metadata.requires(requirement.name) or []
            except metadata.PackageNotFoundError:
                pytest.fail(f"{requirement.name} is not installed: run make install")
            environment = {**default_environment(), "extra": extra}
            for needed in map(Requirement, requires):
                if needed.marker is not None and needed.marker.evaluate(environment):
                    assert pins_here(pins, needed.name), (
                        f"{needed.name}, of {requirement.name}[{extra}], is not locked"
                    )


def test_every_locked_package_is_one_the_lock_needs():
    """No leftovers: every pin applying here is declared or required by another pin (the
    metadata of the installed distributions tells which)."""
    pins = locked()
    main, test = declared()
    # (distribution, one of its extras or ""), from the declared ones down.
    wanted = [(canonicalize_name(r.name), e) for r in [*main, *test] for e in {"", *r.extras}]
    seen: set[tuple[str, str]] = set()
    while wanted:
        name, extra = wanted.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        if not pins_here(pins, name):
            continue  # not for this Python; reported by the test above if declared
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            pytest.fail(f"{name} is locked but not installed: run make install")
        environment = {**default_environment(), "extra": extra}
        for needed in map(Requirement, requires):
            if needed.marker is None or needed.marker.evaluate(environment):
                wanted.extend((canonicalize_name(needed.name), e) for e in {"", *needed.extras})
    here = {name for name in pins if pins_here(pins, name)}
    assert here - {name for name, _ in seen} == set(), "locked but needed by nothing: make lock"


def third_party_imports(folder: str) -> dict[str, str]:
    """Top-level module -> a file importing it, for every absolute import of ``folder``
    that is neither the standard library nor the project's own."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in OWN:
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize(
    ("folders", "extras"), [(("src/liaison",), False), (("tests", "bench"), True)]
)
def test_every_imported_module_is_declared(folders, extras):
    """Declare every dependency you import, even when another package usually brings it:
    src/ in the dependencies, tests/ and bench/ in them or in the `test` extra."""
    main, test = declared()
    names = {canonicalize_name(r.name) for r in (main + test if extras else main)}
    providers = metadata.packages_distributions()
    for folder in folders:
        for module, where in third_party_imports(folder).items():
            distributions = {canonicalize_name(d) for d in providers.get(module, [])}
            assert distributions, f"{module} (imported by {where}) is not installed"
            assert distributions & names, (
                f"{module} (imported by {where}) comes from {sorted(distributions)}, "
                "which pyproject.toml does not declare"
            )


def test_make_install_installs_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r $(LOCK)" in makefile
    assert "LOCK = requirements.lock" in makefile
    header = LOCK.read_text().splitlines()[:2]
    assert any("make lock" in line and "uv pip compile" in line for line in header), header
