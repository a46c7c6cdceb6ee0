"""`liaison ingest`: open-source documents, pages and feeds to the node's own intelligence."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from liaison.cli.render import console, err_console, print_json, progress, table
from liaison.node import open_node
from liaison.settings import Settings


def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help="Text, HTML or RSS/Atom files, or directories of them.")
    ],
    source: Annotated[
        str | None, typer.Option(help="Who published the plain-text files (default: each file).")
    ] = None,
    sources: Annotated[
        Path | None,
        typer.Option(help="Source ratings (TOML); default $LIAISON_HOME/sources.toml."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Turn documents into graded STIX reports, entities, relationships and same-story
    groupings owned by this node; exit 1 only if no document could be ingested."""
    from liaison.ingest.run import run_ingest

    node = open_node(Settings.from_env())
    with progress() as bar:
        task = bar.add_task("Reading", total=None)
        run = run_ingest(
            node, paths, source=source, sources=sources, on_document=lambda: bar.advance(task)
        )
    results = run.ingested.results
    rejected = {s.id: "; ".join(s.messages) for s in run.imported.rejected} if run.imported else {}
    results = [
        replace(r, error=f"refused: {rejected[r.report]}") if r.report in rejected else r
        for r in results
    ]
    ingested = [r for r in results if r.error is None]
    if as_json:
        print_json([r.as_json() for r in results])
    else:
        rows = table("Ingested", "document", "report", "entities", "story", "grade")
        for r in results:
            if r.error is None:
                story = r.story.split("--")[1][:8] if r.story else "-"
                name = Path(r.origin).name
                rows.add_row(name, r.report or "-", str(len(r.entities)), story, r.grade or "-")
        console.print(rows)
        for r in results:
            if r.error is not None:
                err_console.print(f"[red]error:[/red] {r.origin}: {r.error}", soft_wrap=True)
        objects = len(run.imported.statuses) if run.imported else 0
        console.print(f"{len(ingested)} of {len(results)} documents ingested, {objects} objects")
    if not ingested:
        raise typer.Exit(1)
