"""`liaison leak investigate`: trace a leaked text to the partners whose copies it was made
from."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from liaison.cli.render import console, err_console, print_json, table
from liaison.node import load_signing_key, open_node
from liaison.settings import Settings

if TYPE_CHECKING:
    from liaison.fingerprint.investigate import Finding

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
leak_app = typer.Typer(help="Trace leaked text to the partners whose copies it came from.")


def _epsilon(value: float) -> float:
    if not 0.0 < value < 1.0:
        raise typer.BadParameter("must be between 0 and 1, both excluded")
    return value


@leak_app.command("investigate")
def investigate_leak(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="The leak: plain text (typed, or extracted from a PDF), HTML, or STIX JSON.",
        ),
    ],
    epsilon: Annotated[
        float,
        typer.Option(
            callback=_epsilon,
            help="The largest probability, over all partners, of accusing an innocent one.",
        ),
    ] = 1e-3,
    as_json: JsonOption = False,
) -> None:
    """Find the disclosed object versions a leak was drawn from, read the fingerprint bits
    their slots show in it, and rank the partners that received them by how well their
    copies match: those at or above the threshold are accused."""
    from liaison.fingerprint.copies import fingerprint_secret
    from liaison.fingerprint.investigate import investigate, leaked_text

    node = open_node(Settings.from_env())
    text = leaked_text(file)
    secret = fingerprint_secret(load_signing_key(node.settings.home))
    with node.engine.connect() as connection:
        finding = investigate(connection, secret, text, epsilon)
    if as_json:
        print_json(as_data(finding))
    if not finding.sources:
        err_console.print(
            f"[red]error:[/red] {escape(str(file))} matches nothing this node disclosed",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    if not as_json:
        show(finding)


def as_data(finding: Finding) -> dict[str, Any]:
    """The finding as JSON: a threshold of null when too few marks were read to accuse."""
    return {
        "sources": [
            {
                "object_id": s.object_id,
                "version": s.version,
                "containment": round(s.containment, 4),
                "marks_read": s.marks_read,
            }
            for s in finding.sources
        ],
        "marks_read": finding.marks_read,
        "threshold": finding.threshold if math.isfinite(finding.threshold) else None,
        "epsilon": finding.epsilon,
        "suspects": [
            {"partner": s.partner, "score": s.score, "accused": s.accused} for s in finding.suspects
        ],
    }


def show(finding: Finding) -> None:
    # Ids and versions are printed whole, to be copied: a table would cut them on a terminal.
    console.print("Sources (object, version: share of the leak it explains, marks read):")
    for s in finding.sources:
        console.print(
            f"  {s.object_id} {s.version}: {s.containment:.0%}, {s.marks_read} marks",
            soft_wrap=True,
        )
    if not finding.suspects:
        console.print("No partner received a fingerprinted copy of these versions.")
        return
    suspects = table("Suspects", "rank", "partner", "score", "accused")
    for rank, s in enumerate(finding.suspects, 1):
        accused = "[red]accused[/red]" if s.accused else "-"
        suspects.add_row(str(rank), s.partner, f"{s.score:.1f}", accused)
    console.print(suspects)
    if math.isfinite(finding.threshold):
        console.print(
            f"{finding.marks_read} marks read; threshold {finding.threshold:.1f}; "
            f"false-accusation bound ε = {finding.epsilon:g} (the probability that any "
            f"innocent partner among these {len(finding.suspects)} reaches the threshold)."
        )
    else:
        console.print(
            f"{finding.marks_read} marks read: too few to accuse anybody with a "
            f"false-accusation bound of ε = {finding.epsilon:g}."
        )
    accused = ", ".join(finding.accused) or "nobody"
    console.print(f"Accused: {accused}.")
