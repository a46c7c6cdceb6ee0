"""How the CLI speaks: rich tables for people, plain JSON for scripts, one-line errors.

Data goes to stdout; progress bars and errors go to stderr, so ``--json`` output is only JSON.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from liaison.errors import LiaisonError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# Only these columns wrap on a narrow terminal; ids, codes and dates stay whole on one line.
_WRAPPING = {
    "name",
    "members (joined - left)",
    "communities",
    "value",
    "reason",
    "reasons",
    "cut",
    "what",
}


def table(title: str, *columns: str) -> Table:
    result = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        wraps = column in _WRAPPING
        result.add_column(column, no_wrap=not wraps, min_width=24 if wraps else None)
    return result


def progress() -> Progress:
    """A progress bar on stderr, shown only when stderr is a terminal."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


class ErrorHandlingGroup(typer.core.TyperGroup):
    """Turns every LiaisonError into one line on stderr and its exit code: no tracebacks."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except LiaisonError as exc:
            err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
