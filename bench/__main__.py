"""Run every benchmark and print its tables.

    python -m bench [--quick] [arguments for the benchmarks]

``--quick`` asks each benchmark for small sizes (a smoke run); every other argument is
passed to each benchmark's ``main`` unchanged.
"""

from __future__ import annotations

import argparse
from types import ModuleType

from rich.console import Console

from bench import import_throughput

# Each module has ``main(argv: list[str] | None) -> None``; add new benchmarks here.
BENCHMARKS: tuple[ModuleType, ...] = (import_throughput,)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run every benchmark in bench/.",
        epilog=(
            "Other arguments are passed to every benchmark; python -m bench.NAME --help lists them."
        ),
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args, passed = parser.parse_known_args(argv)
    forwarded = ["--quick", *passed] if args.quick else passed
    console = Console()
    for benchmark in BENCHMARKS:
        console.rule(benchmark.__name__.removeprefix("bench."))
        benchmark.main(forwarded)


if __name__ == "__main__":
    main()
