"""`liaison import`, `liaison show`, `liaison list`: STIX objects in the store."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from liaison.cli.render import console, print_json, progress, table
from liaison.errors import InputError, NotFound, NotStix, PayloadTooLarge
from liaison.node import Node, open_node
from liaison.settings import Settings
from liaison.stix.parse import load_json, looks_like_misp, objects_of
from liaison.stix.timestamps import from_micros

# The importer brings the STIX validator, which takes seconds to import: only `liaison import`
# imports it, and the store's modules are imported by the commands that read it.
if TYPE_CHECKING:
    from liaison.importer import ImportReport
    from liaison.store.objects import StoredVersion

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
    from liaison.importer import import_objects
    from liaison.ingest.misp import objects_from_misp

    node = open_node(Settings.from_env())
    limits = node.settings.limits
    data = _read_input(source, limits.max_bytes)
    if input_format is InputFormat.misp:
        objects = objects_from_misp(data, limits, node.identity_id)
    else:
        document = load_json(data, limits)
        if looks_like_misp(document):
            raise NotStix("this looks like a MISP event: use --from misp")
        objects = objects_of(document)
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
    from liaison.markings.names import marking_names, refs_of
    from liaison.store.objects import versions_of

    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        versions = versions_of(connection, object_id)
    if not versions:
        raise NotFound(f"no object {object_id} in the store")
    chosen = versions if all_versions else versions[-1:]
    if as_json:
        print_json([v.object for v in chosen] if all_versions else chosen[0].object)
        return
    with node.engine.connect() as connection:
        names = marking_names(connection, (r for v in chosen for r in refs_of(v.object)))
    for number, stored in enumerate(chosen):
        if number:
            console.print()
        _print_object(stored, names)


def _print_object(stored: StoredVersion, names: dict[str, str]) -> None:
    """A header (what, which version, whence, markings by name), then every property with
    its value, wrapped: for people, not a JSON to parse (that is --json)."""
    obj = stored.object
    console.print(f"[bold]{escape(obj['type'])}[/bold] {escape(obj['id'])}", soft_wrap=True)
    header = table("", "field", "value", heading=False)
    header.add_row("version", escape(str(obj.get("modified") or obj.get("created") or "-")))
    header.add_row("added", from_micros(stored.date_added))
    header.add_row("from", escape(stored.received_from or "this node"))
    header.add_row("owner", escape(stored.owner))
    header.add_row("markings", escape(_markings(obj, names)))
    console.print(header)
    properties = table("Properties", "property", "value")
    for key, value in obj.items():
        if key not in _IN_HEADER:
            properties.add_row(escape(key), escape(_value(value)))
    console.print(properties)


# Shown in the header (markings by name), not again among the properties.
_IN_HEADER = {"type", "id", "modified", "object_marking_refs", "granular_markings"}


def _markings(obj: dict[str, Any], names: dict[str, str]) -> str:
    """``TLP:GREEN; description: CAN:SECRET REL TO FVEY``: the object's markings, then the
    granular ones with what they mark."""
    shown = [names.get(r, r) for r in obj.get("object_marking_refs") or []]
    for granular in obj.get("granular_markings") or []:
        ref = granular.get("marking_ref") if isinstance(granular, dict) else None
        if isinstance(ref, str):
            selectors = granular.get("selectors") or []
            shown.append(f"{', '.join(map(str, selectors))}: {names.get(ref, ref)}")
    return "; ".join(shown) or "-"


def _value(value: Any) -> str:
    """A property's value as text: strings as they are, a list of them one per line, the
    rest as compact JSON (which wraps at its spaces)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    if isinstance(value, list):
        return "\n".join(_value(v) for v in value)
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def verify(
    source: Annotated[
        str, typer.Argument(help="A STIX 2.1 bundle or object file (a copy received), or -.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Check that each object carries its originator's signature over what it says and how it
    is marked, with the keys pinned here (the node's and the alliance file's). Exit 1 if any
    does not verify."""
    from liaison.stix.signature import pinned, verify
    from liaison.store.alliance import public_keys

    node = open_node(Settings.from_env())
    found = objects_of(
        load_json(_read_input(source, node.settings.limits.max_bytes), node.settings.limits)
    )
    with node.engine.connect() as connection:
        keys = pinned(public_keys(connection))
    names = {identity: code for code, identity in _identities(node).items()}
    verdicts = []
    for obj in found:
        verdict = verify(obj, keys)
        verdicts.append(
            {
                "object": obj.get("id"),
                "type": obj.get("type"),
                "signer": verdict.signer,
                "originator": names.get(verdict.signer or ""),
                "verified": verdict.verified,
                "reason": verdict.reason,
            }
        )
    if as_json:
        print_json(verdicts)
    else:
        out = table("Signatures", "object", "signed by", "verified")
        for v in verdicts:
            out.add_row(
                escape(str(v["object"])),
                v["originator"] or escape(str(v["signer"] or "-")),
                "yes" if v["verified"] else f"[red]no[/red]: {escape(str(v['reason']))}",
            )
        console.print(out)
    if not all(v["verified"] for v in verdicts):
        raise typer.Exit(1)


def _identities(node: Node) -> dict[str, str]:
    """Identity ids by country code: the node's and its partners'."""
    from liaison.store.alliance import read_partners

    with node.engine.connect() as connection:
        found = {p.country: p.identity for p in read_partners(connection)}
    found[node.country] = node.identity_id
    return found


def list_objects(
    type_: Annotated[str | None, typer.Option("--type", help="Only objects of this type.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List the latest version of every object."""
    from liaison.markings.names import marking_names, refs_of
    from liaison.stix.types import check_type
    from liaison.store.objects import latest_versions

    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        if type_ is not None:
            check_type(connection, type_)
        found = [stored.object for stored in latest_versions(connection, type_)]
        names = {} if as_json else marking_names(connection, (r for o in found for r in refs_of(o)))
    if as_json:
        print_json(found)
        return
    out = table("Objects", "id", "type", "name", "modified", "markings")
    for obj in found:
        out.add_row(
            escape(obj["id"]),
            escape(obj["type"]),
            escape(str(obj.get("name", ""))),
            escape((obj.get("modified") or obj.get("created") or "-")[:10]),
            escape(_markings(obj, names)),
        )
    console.print(out)
    console.print(f"{len(found)} objects.")
