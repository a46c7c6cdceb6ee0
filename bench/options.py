"""Command-line option types the benchmarks share."""

from __future__ import annotations

import argparse

BACKENDS = ("sqlite", "postgresql")


def positive(raw: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def backends(raw: str) -> tuple[str, ...]:
    """A comma-separated choice among BACKENDS."""
    chosen = tuple(name.strip() for name in raw.split(",") if name.strip())
    unknown = sorted(set(chosen) - set(BACKENDS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {','.join(BACKENDS)}, not {raw!r}")
    return chosen


def sizes(raw: str, minimum: int = 1) -> tuple[int, ...]:
    """Comma-separated sizes (``1_000`` allowed), sorted; none for "", "none" or "0"."""
    if raw.strip().lower() in ("", "none", "0"):
        return ()
    try:
        values = sorted({int(part.replace("_", "")) for part in raw.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated sizes, not {raw!r}") from None
    if any(v < minimum for v in values):
        raise argparse.ArgumentTypeError(f"sizes must be at least {minimum}")
    return tuple(values)
