"""STIX timestamps as integers.

The store keys versions and ``date_added`` on whole microseconds since the epoch, so that
``2017-05-25T11:05:00Z`` and ``2017-05-25T11:05:00.000Z`` are the same version and
ordering is numeric. Precision beyond microseconds is truncated.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_TIMESTAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?Z$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(timestamp: str) -> int:
    """Microseconds since the epoch of a STIX timestamp; ValueError if it is not one."""
    match = _TIMESTAMP.match(timestamp)
    if match is None:
        raise ValueError(f"not a STIX timestamp: {timestamp!r}")
    year, month, day, hour, minute, second, fraction = match.groups()
    moment = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC
    )
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + micros


def from_micros(micros: int) -> str:
    """The STIX timestamp, with microseconds, of ``micros`` since the epoch."""
    seconds, fraction = divmod(micros, 1_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:06d}Z"


def now_micros() -> int:
    moment = datetime.now(tz=UTC) - _EPOCH
    return (moment.days * 86_400 + moment.seconds) * 1_000_000 + moment.microseconds


def stix_now() -> str:
    """The current time as a STIX timestamp with millisecond precision."""
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
