"""`liaison import`, `liaison show`, `liaison list`: STIX objects in the store."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.json import JSON
from rich.markup import escape

from liaison.cli.render import console, print_json, progress, table
from liaison.errors import InputError, NotFound, PayloadTooLarge
from liaison.importer import ImportReport, import_objects
from liaison.ingest.misp import objects_from_misp
from liaison.markings.tlp import tlp_name
from liaison.node import open_node
from liaison.settings import Settings
from liaison.stix.parse import parse_payload
from liaison.stix.timestamps import from_micros
from liaison.store.objects import latest_versions, versions_of

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
# Above this many objects the import table lists only the rejected ones.
FULL_TABLE_LIMIT = 200


class InputFormat(StrEnum):
    stix = "stix"
    misp = "misp"


def _read_input(source: str, limit: int) -> bytes:
    try:
        if source == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with Path(source).open("rb") as handle:
                data = handle.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror}") from None
    if len(data) > limit:
        raise PayloadTooLarge(f"{source} exceeds the limit of {limit:,} bytes")
    return data


def import_file(
    source: Annotated[
        str,
        typer.Argument(help="A STIX 2.1 bundle or object file (or MISP event), or - for stdin."),
    ],
    input_format: Annotated[
        InputFormat,
        typer.Option(
            "--from",
            help="stix: STIX 2.1; misp: one MISP event (JSON), converted with misp-stix.",
        ),
    ] = InputFormat.stix,
    as_json: JsonOption = False,
) -> None:
    """Import STIX 2.1: every object validated, the valid ones stored in one transaction."""
    node = open_node(Settings.from_env())
    limits = node.settings.limits
    data = _read_input(source, limits.max_bytes)
    if input_format is InputFormat.misp:
        objects = objects_from_misp(data, limits, node.identity_id)
    else:
        objects = parse_payload(data, limits)
    with progress() as bar:
        task = bar.add_task("Validating", total=len(objects))
        report = import_objects(
            node.engine,
            objects,
            workers=node.settings.validation_workers,
            on_validated=lambda n: bar.advance(task, n),
        )
    if as_json:
        print_json(report.as_taxii_status())
    else:
        _print_import(report)
    if report.rejected:
        raise typer.Exit(1)


def _print_import(report: ImportReport) -> None:
    shown = (
        report.statuses
        if len(report.statuses) <= FULL_TABLE_LIMIT
        else report.rejected[:FULL_TABLE_LIMIT]
    )
    if shown:
        out = table("Import", "object", "version", "status")
        for status in shown:
            style = {"added": "green", "present": "dim", "rejected": "red"}[status.status]
            out.add_row(status.id, status.version or "-", f"[{style}]{status.status}[/{style}]")
        console.print(out)
    for status in report.rejected[:FULL_TABLE_LIMIT]:
        # Validator messages can be long: one per line under the table, never squeezed.
        for message in status.messages:
            console.print(f"[red]rejected[/red] {status.id}: {escape(message)}", soft_wrap=True)
    console.print(
        f"{len(report.statuses)} objects: {report.count('added')} added, "
        f"{report.count('present')} already present, {report.count('rejected')} rejected."
    )


def show(
    object_id: Annotated[str, typer.Argument(metavar="ID", help="A STIX id.")],
    all_versions: Annotated[
        bool, typer.Option("--all-versions", help="Every stored version, oldest first.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show an object (its latest version, or every version)."""
    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        versions = versions_of(connection, object_id)
    if not versions:
        raise NotFound(f"no object {object_id} in the store")
    chosen = versions if all_versions else versions[-1:]
    if as_json:
        print_json([v.object for v in chosen] if all_versions else chosen[0].object)
        return
    for stored in chosen:
        source = stored.received_from or "this node"
        console.print(
            f"[bold]{object_id}[/bold] version {stored.object.get('modified', '-')}, "
            f"added {from_micros(stored.date_added)}, from {source}, owned by {stored.owner}"
        )
        console.print(JSON.from_data(stored.object))


def list_objects(
    type_: Annotated[str | None, typer.Option("--type", help="Only objects of this type.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List the latest version of every object."""
    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        found = [stored.object for stored in latest_versions(connection, type_)]
    if as_json:
        print_json(found)
        return
    out = table("Objects", "id", "type", "name", "modified", "markings")
    for obj in found:
        refs = obj.get("object_marking_refs") or []
        out.add_row(
            obj["id"],
            obj["type"],
            str(obj.get("name", ""))[:80],
            (obj.get("modified") or obj.get("created") or "-")[:10],
            ", ".join(tlp_name(r) or r for r in refs) or "-",
        )
    console.print(out)
    console.print(f"{len(found)} objects.")
