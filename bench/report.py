"""What every benchmark prints around its tables: a console that does not fold them, how busy
the machine was, ratios and verdicts. The machines are noisy, so each report says its load."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field

from rich.console import Console


def wide_console(width: int) -> Console:
    """A console for the tables: the terminal's, or ``width`` columns when written to a file
    (a log file should not fold the tables)."""
    terminal = Console()
    return terminal if terminal.is_terminal else Console(width=width)


def elapsed(start: float) -> float:
    """Seconds since ``start`` (a ``time.perf_counter()`` reading)."""
    return time.perf_counter() - start


def ratio(value: float) -> str:
    return f"{value:,.0f}×" if value >= 100 else f"{value:.2f}×"


def verdict(met: bool) -> str:
    return "[green]met[/green]" if met else "[red]not met[/red]"


@dataclass(frozen=True)
class Machine:
    """When a run began and the 1-minute load average then: another busy process on the
    machine slows every row, so the report says how busy it was."""

    load: float = field(default_factory=lambda: os.getloadavg()[0])
    began: float = field(default_factory=time.perf_counter)

    def summary(self, *facts: str) -> str:
        """One line: CPU count, load at start, ``facts``, and how long the run took."""
        cpus = f"CPU count: {os.cpu_count()} (1-minute load average at start: {self.load:.2f})"
        return "; ".join([cpus, *facts, f"run took {elapsed(self.began):.0f} s"])


@dataclass(frozen=True)
class Latency:
    samples: tuple[float, ...]  # seconds

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        if len(self.samples) < 2:
            return self.samples[0]
        return statistics.quantiles(self.samples, n=100, method="inclusive")[94]
