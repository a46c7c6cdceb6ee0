import copy
import importlib.util
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from liaison.stix import validate
from liaison.stix.validate import ValidatorProcess, validate_all, validation_errors
from tests.conftest import PATIENCE
from tests.stix_factory import AUTHOR, indicator, invalid_indicator

ROOT = Path(__file__).resolve().parents[2]
# Found, not imported: validate.py imports it on first use, in its own way.
STIX2VALIDATOR = Path(importlib.util.find_spec("stix2validator").origin).parent


def test_valid_object_has_no_errors():
    assert validation_errors(indicator(1)) == []


def test_invalid_object_carries_the_validators_message():
    errors = validation_errors(invalid_indicator(1))
    assert any("'pattern' is a required property" in e for e in errors)


def test_bad_pattern_is_an_error():
    obj = indicator(1)
    obj["pattern"] = "[ipv4-addr:value = "
    assert validation_errors(obj)


def test_parallel_verdicts_equal_serial_ones(monkeypatch):
    objects = [invalid_indicator(n) if n % 7 == 0 else indicator(n) for n in range(60)]
    monkeypatch.setattr(validate, "PARALLEL_THRESHOLD", 10)
    progress: list[int] = []
    parallel = validate_all(objects, workers=2, on_progress=progress.append)
    serial = validate_all(objects, workers=1)
    assert parallel == serial
    assert sum(progress) == len(objects)
    assert [bool(e) for e in serial] == [n % 7 == 0 for n in range(60)]


# --- the verdicts against the plain public API -----------------------------------------------
# validate.py keeps stix2validator's schema validators across calls and imports it without
# rfc3987_syntax: both rest on stix2validator internals. The reference is
# ``stix2validator.validate_instance`` as it comes, in a fresh interpreter.

OTHER = "identity--22222222-2222-4222-8222-222222222222"
Mutation = Callable[[dict[str, Any]], None]


def _set(key: str, value: Any) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        obj[key] = copy.deepcopy(value)

    return mutate


def _drop(key: str) -> Mutation:
    return lambda obj: obj.pop(key, None)


MUTATIONS: dict[str, Mutation] = {
    "unchanged": lambda obj: None,
    "no created": _drop("created"),
    "no modified": _drop("modified"),
    "no spec_version": _drop("spec_version"),
    "spec_version 2.0": _set("spec_version", "2.0"),
    "id not an identifier": _set("id", "indicator-not-a-uuid"),
    "id of a version 1 uuid": lambda obj: obj.update(
        id=f"{obj['type']}--{uuid.UUID('6ba7b810-9dad-11d1-80b4-00c04fd430c8')}"
    ),
    "modified before created": _set("modified", "1999-01-01T00:00:00.000Z"),
    "impossible date": _set("created", "2017-13-45T11:05:00.000Z"),
    "not a timestamp": _set("created", "yesterday"),
    "timestamp without zone": _set("modified", "2017-05-25T11:05:00"),
    "upper-case property": _set("Bad-Property", 1),
    "custom property": _set("x_acme_score", 5),
    "custom type": _set("type", "x-acme-thing"),
    "upper-case type": _set("type", "Indicator"),
    "creator not an identity": _set("created_by_ref", "indicator--" + str(uuid.uuid4())),
    "marking ref not a marking": _set("object_marking_refs", [OTHER]),
    "empty marking refs": _set("object_marking_refs", []),
    "bad external reference url": _set(
        "external_references", [{"source_name": "x", "url": "ht tp://bad url"}]
    ),
    "external reference without source": _set("external_references", [{"url": "https://a.b/"}]),
    "external reference hashes": _set(
        "external_references", [{"source_name": "x", "hashes": {"SHA-256": "abc"}}]
    ),
    "confidence out of range": _set("confidence", 101),
    "labels not a list": _set("labels", "label"),
    "bad lang": _set("lang", "not a language!"),
    "name null": _set("name", None),
    "name a number": _set("name", 7),
    "granular marking selector": _set(
        "granular_markings",
        [{"selectors": ["nope.[0]"], "marking_ref": "marking-definition--" + str(uuid.uuid4())}],
    ),
    "bad pattern": _set("pattern", "[ipv4-addr:value = "),
    "pattern of an unknown type": _set("pattern", "[x-foo:bar = 'a']"),
    "pattern property not allowed": _set("pattern", "[ipv4-addr:Bad = '1.2.3.4']"),
    "is_family a string": _set("is_family", "true"),
    "kill chain phase upper case": _set(
        "kill_chain_phases", [{"kill_chain_name": "Lockheed", "phase_name": "Recon"}]
    ),
    "revoked not boolean": _set("revoked", "no"),
    "relationship to nothing": _set("target_ref", "not-an-id"),
    "open vocabulary value": _set("report_types", ["made-up"]),
}


def _examples() -> list[dict[str, Any]]:
    """Objects of every kind the tests know: stix2validator's own examples, the project's
    examples and vectors, and the factory's."""
    found: list[dict[str, Any]] = []
    sources = [
        *sorted((STIX2VALIDATOR / "schemas-2.1" / "examples").rglob("*.json")),
        ROOT / "examples" / "bundle.json",
        ROOT / "examples" / "intelligence.json",
    ]
    for path in sources:
        data = json.loads(path.read_text())
        found += data["objects"] if data.get("type") == "bundle" else [data]
    acs = json.loads((ROOT / "tests" / "vectors" / "acs_markings.json").read_text())
    found += [o for o in _dicts(acs) if "type" in o and "id" in o]
    return [*found, indicator(1), invalid_indicator(2)]


def _dicts(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value, *(d for v in value.values() for d in _dicts(v))]
    if isinstance(value, list):
        return [d for v in value for d in _dicts(v)]
    return []


def _cases() -> list[dict[str, Any]]:
    """Each example once, and each mutation on one example of each type."""
    examples = _examples()
    one_per_type = list({o["type"]: o for o in examples}.values())
    cases = list(examples)
    for mutate in MUTATIONS.values():
        for base in one_per_type:
            obj = copy.deepcopy(base)
            mutate(obj)
            cases.append(obj)
    # A whole bundle, and observed-data with observables, take their own paths.
    cases.append({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": examples[:5]})
    cases.append(
        {
            "type": "observed-data",
            "spec_version": "2.1",
            "id": "observed-data--" + str(uuid.uuid4()),
            "created": "2017-05-25T11:05:00.000Z",
            "modified": "2017-05-25T11:05:00.000Z",
            "created_by_ref": AUTHOR,
            "first_observed": "2017-05-25T11:05:00Z",
            "last_observed": "2017-05-25T11:05:00Z",
            "number_observed": 1,
            "objects": {"0": {"type": "ipv4-addr", "value": "198.51.100.3"}, "1": {"x": 1}},
        }
    )
    return cases


# Runs in a fresh interpreter: stix2validator imported as it comes, before Liaison, and its
# public validate_instance behind the same reading of the result as validation_errors.
PLAIN = """
import json, sys
from stix2validator import ValidationOptions, validate_instance
from liaison.stix import validate
validate._validator = lambda: (validate_instance, ValidationOptions(version="2.1"))
cases = json.load(sys.stdin)
json.dump([validate.validation_errors(obj) for obj in cases], sys.stdout)
"""


def test_verdicts_and_messages_are_the_plain_public_apis():
    cases = _cases()
    plain = subprocess.run(
        [sys.executable, "-c", PLAIN],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=PATIENCE * 4,
    )
    expected = json.loads(plain.stdout)
    ours = [validation_errors(obj) for obj in cases]
    compared = zip(cases, expected, ours, strict=True)
    differing = [(case.get("id"), e, o) for case, e, o in compared if e != o]
    assert differing == []
    # The table holds both verdicts, in number.
    valid = sum(1 for e in expected if not e)
    assert valid > 100 and len(expected) - valid > 100


def test_no_stix_schema_names_the_formats_left_unchecked():
    """jsonschema checks the "iri" formats only with rfc3987_syntax, which validate.py does
    not import: the STIX 2.1 schemas must never name them."""
    formats = set()
    for path in (STIX2VALIDATOR / "schemas-2.1").rglob("*.json"):
        formats |= {d["format"] for d in _dicts(json.loads(path.read_text())) if "format" in d}
    assert formats and not {f for f in formats if f.startswith("iri")}


# --- the server's validator process ----------------------------------------------------------


def test_the_validator_process_gives_the_same_verdicts_and_outlives_a_killed_child():
    objects = [invalid_indicator(n) if n % 3 == 0 else indicator(n) for n in range(12)]
    expected = [validation_errors(obj) for obj in objects]
    validator = ValidatorProcess()
    try:
        assert validator([]) == []
        assert validator(objects) == expected
        child = validator._child
        assert child is not None
        assert validator(objects[:2]) == expected[:2]
        assert validator._child is child  # started once, then reused
        os.kill(child.process.pid, signal.SIGKILL)
        child.process.wait(timeout=PATIENCE)
        assert validator(objects) == expected  # a new process
        assert validator._child is not child
    finally:
        validator.close()
    assert child.process.poll() is not None


def test_the_validator_process_shares_a_large_batch_among_workers():
    objects = [invalid_indicator(n) if n % 50 == 0 else indicator(n) for n in range(450)]
    assert len(objects) >= validate.PARALLEL_THRESHOLD
    validator = ValidatorProcess(workers=2)
    try:
        assert validator(objects) == [validation_errors(obj) for obj in objects]
    finally:
        validator.close()
