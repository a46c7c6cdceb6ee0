from liaison.stix import validate
from liaison.stix.validate import validate_all, validation_errors
from tests.stix_factory import indicator, invalid_indicator


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
