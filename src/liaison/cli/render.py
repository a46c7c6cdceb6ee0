"""How the CLI speaks: rich tables for people, plain JSON for scripts, one-line errors.

Data goes to stdout; progress bars and errors go to stderr, so ``--json`` output is only JSON.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args, get_origin

import typer
from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from liaison.errors import LiaisonError

if TYPE_CHECKING:
    from rich.progress import Progress

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# How every table fits the width it is given: the terminal's, or COLUMNS, or 80 columns when
# stdout is not a terminal (rich's rules). Each column is one of four kinds, by its heading:
#
# - ids (STIX ids): whole when they fit, else the shortest prefix that still tells the table's
#   ids apart (``report--70d09b66``), with a note under the table; folded, never cut;
# - times: whole when they fit, else to the second;
# - prose: wraps at spaces (and folds a word longer than the column), never cut;
# - codes (every other column): short values kept whole on one line.
#
# When the whole table is too wide, it first drops a column the ids already say (``type``),
# then shortens ids and times, then narrows the prose; nothing is ever cropped with "…".
_IDS = {"id", "object", "report"}
_TIMES = {"at"}
_PROSE = {
    "name",
    "members (joined - left)",
    "communities",
    "value",
    "reason",
    "reasons",
    "cut",
    "what",
    "marking",
    "markings",
    "document",
    "key",
}
# Columns an id column makes redundant (an id starts with its object's type).
_SAID_BY_IDS = {"type"}
_GAP = 2  # between columns
_PROSE_WIDTH = 20  # a prose column narrower than this reads badly ...
_PROSE_TIGHT = 10  # ... but this is still better than cutting anything


def short_ids(ids: Iterable[str]) -> dict[str, str]:
    """Each STIX id with the shortest uuid prefix (8 hex digits at least) that tells it
    apart from the others: ``report--70d09b66``."""
    unique = sorted({i for i in ids if "--" in i})

    def common(a: str, b: str) -> int:
        return next((n for n, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(a))

    short = {}
    for n, full in enumerate(unique):
        # Sorted, an id shares its longest prefix with a neighbour.
        shared = [common(full, unique[m]) for m in (n - 1, n + 1) if 0 <= m < len(unique)]
        length = max([full.index("--") + 2 + 8, *(s + 1 for s in shared)])
        short[full] = full[:length]
    return short


def _plain(cell: str) -> str:
    return Text.from_markup(cell).plain


def _longest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=0)


def _natural(texts: list[str]) -> int:
    return max((cell_len(line) for t in texts for line in t.splitlines() or [""]), default=0)


class FittedTable:
    """A table that chooses its columns and their widths for the width it is printed at;
    rows are added like rich's ``Table.add_row`` (strings, with rich markup)."""

    def __init__(
        self, title: str, columns: tuple[str, ...], lines: bool = False, heading: bool = True
    ) -> None:
        self.title = title
        self.columns = columns
        self.lines = lines
        self.heading = heading
        self.rows: list[tuple[str, ...]] = []

    def add_row(self, *cells: str) -> None:
        self.rows.append(cells)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self._render(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(1, options.max_width)

    def _kind(self, column: str) -> str:
        if column in _IDS:
            return "id"
        if column in _TIMES:
            return "time"
        return "prose" if column in _PROSE else "code"

    def _render(self, width: int) -> list[Any]:
        kinds = [self._kind(c) for c in self.columns]
        has_ids = "id" in kinds
        shortened = {
            index: short_ids(_plain(row[index]) for row in self.rows)
            for index, kind in enumerate(kinds)
            if kind == "id"
        }

        def cell(row: tuple[str, ...], index: int, short: bool) -> str:
            value = row[index]
            if short and kinds[index] == "id":
                return escape(shortened[index].get(_plain(value), _plain(value)))
            if short and kinds[index] == "time":
                plain = _plain(value)
                return escape(plain[:19].replace("T", " ")) if len(plain) > 19 else value
            return value

        # From the most to the least complete: all columns whole; without what ids say;
        # with short ids and times; with narrow prose.
        attempts = [(False, False, _PROSE_WIDTH), (True, False, _PROSE_WIDTH)]
        attempts += [(True, True, _PROSE_WIDTH), (True, True, _PROSE_TIGHT)]
        for drop, short, prose_width in attempts:
            shown = [
                i
                for i, name in enumerate(self.columns)
                if not (drop and has_ids and name in _SAID_BY_IDS)
            ]
            texts = {i: [_plain(cell(row, i, short)) for row in self.rows] for i in shown}
            heads = {i: self.columns[i] for i in shown}
            natural = {i: max(_natural(texts[i]), cell_len(heads[i])) for i in shown}
            least = {
                i: min(natural[i], max(prose_width, _longest_word(heads[i])))
                if kinds[i] == "prose"
                else max(natural[i], _longest_word(heads[i]))
                for i in shown
            }
            room = width - _GAP * (len(shown) - 1)
            if sum(least.values()) <= room:
                break
        widths = _share(natural, least, {i for i in shown if kinds[i] == "prose"}, room)
        out = Table(
            title=self.title,
            title_justify="left",
            header_style="bold",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            show_lines=self.lines,
            show_header=self.heading,
            padding=(0, 1, 0, 0),  # with the blank divider: _GAP between columns
        )
        for i in shown:
            out.add_column(self.columns[i], width=widths.get(i), overflow="fold")
        for row in self.rows:
            out.add_row(*(cell(row, i, short) for i in shown))
        result: list[Any] = [out]
        if (
            short
            and shortened
            and any(
                len(full) != len(brief) for ids in shortened.values() for full, brief in ids.items()
            )
        ):
            result.append(
                Text(
                    "Ids shortened to fit: --json, or a wider terminal, shows them whole.",
                    style="dim",
                )
            )
        return result


def _share(
    natural: dict[int, int], least: dict[int, int], prose: set[int], room: int
) -> dict[int, int]:
    """Column widths for ``room``: every column its natural width if all fit; otherwise
    codes, ids and times keep theirs and the prose columns share the rest, each at least
    its least width (or, when even that does not fit, evenly)."""
    if sum(natural.values()) <= room:
        return {}
    fixed = {i: w for i, w in natural.items() if i not in prose}
    left = room - sum(fixed.values())
    if not prose or left < len(prose):
        # Nothing fits: let rich share the width (folding, never cutting).
        return {}
    widths = dict(fixed)
    floors = {i: min(least[i], left // len(prose)) for i in prose}
    spare = left - sum(floors.values())
    wants = {i: natural[i] - floors[i] for i in prose}
    total = sum(wants.values()) or 1
    for i in prose:
        widths[i] = floors[i] + min(wants[i], spare * wants[i] // total)
    return widths


def table(title: str, *columns: str, lines: bool = False, heading: bool = True) -> FittedTable:
    """A table for people; ``lines`` puts a blank line between rows (for cells of several
    lines, such as a list of reasons); without ``heading`` it is a list of fields."""
    return FittedTable(title, columns, lines, heading)


def progress() -> Progress:
    """A progress bar on stderr, shown only when stderr is a terminal."""
    # Only the commands that show one import it.
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


# Help shows a flag alone and a value by what it is: ``--json``, ``--at DATE``, ``--limit
# INTEGER``, ``--from [stix|misp]``; this Typer labels every parameter with its Python type
# (``<bool>``, ``<str>``, ``<list[str]>``), flags included.
_TYPE_LABELS = {str: "TEXT", int: "INTEGER", float: "NUMBER", bool: "BOOLEAN", Path: "PATH"}


def _help_type(param: Any, ctx: Any) -> str | None:
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    if param.metavar is not None:
        # An argument's metavar is already its name in the help.
        return param.metavar if isinstance(param, typer.core.TyperOption) else None
    desc = param.type_descriptor
    if desc.is_choice and desc.choices:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in desc.choices) + "]"
    if desc.is_path:
        return desc.path_type.upper() if isinstance(desc.path_type, str) else "PATH"
    annotation = desc.annotation
    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation) or (str,)
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "PATH"
    return _TYPE_LABELS.get(annotation, "VALUE")


typer.core.TyperOption.display_type_rich = _help_type  # type: ignore[method-assign]
typer.core.TyperArgument.display_type_rich = _help_type  # type: ignore[method-assign]


class ErrorHandlingGroup(typer.core.TyperGroup):
    """Turns every LiaisonError into one line on stderr and its exit code: no tracebacks."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except LiaisonError as exc:
            err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
