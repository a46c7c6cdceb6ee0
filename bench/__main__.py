"""Run every benchmark and print its tables.

    python -m bench [--quick] [--only NAME ...]

``--quick`` asks each benchmark for small sizes (a smoke run). Each benchmark's own options
(sizes, backends) differ: run it alone for them, ``python -m bench.NAME --help``.
"""

from __future__ import annotations

import argparse
from types import ModuleType

from rich.console import Console

from bench import (
    import_throughput,
    ingest,
    leak_tracing,
    ledger,
    policy_decisions,
    sync_throughput,
    taxii_load,
    taxii_pages,
)

# Each module has ``main(argv: list[str] | None) -> None``; add new benchmarks here.
BENCHMARKS: tuple[ModuleType, ...] = (
    import_throughput,
    policy_decisions,
    taxii_pages,
    taxii_load,
    sync_throughput,
    ledger,
    ingest,
    leak_tracing,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run every benchmark in bench/.",
        epilog="A benchmark's own options: python -m bench.NAME --help.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--only",
        action="append",
        choices=[b.__name__.removeprefix("bench.") for b in BENCHMARKS],
        help="run only this benchmark (repeatable)",
    )
    args = parser.parse_args(argv)
    console = Console()
    for benchmark in BENCHMARKS:
        name = benchmark.__name__.removeprefix("bench.")
        if args.only and name not in args.only:
            continue
        console.rule(name)
        benchmark.main(["--quick"] if args.quick else [])


if __name__ == "__main__":
    main()
