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
