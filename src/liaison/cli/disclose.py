"""`liaison disclose`: one partner's copy of an object, for delivery by hand, made and recorded
by the release path exactly as a TAXII delivery of it would be (the same bytes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liaison.cli.render import console, print_json


def disclose(
    object_id: Annotated[str, typer.Argument(metavar="OBJECT_ID")],
    partner: Annotated[str, typer.Option(help="The partner's country code.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the copy here, not to stdout.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Write the copy of an object that a partner may receive (the newest version it may
    see, tearline applied, its own fingerprint), and record the disclosure in the ledger;
    refuse what it may not receive."""
    import hashlib
    import json

    from liaison.errors import Withheld
    from liaison.node import open_node
    from liaison.policy.explain import explain
    from liaison.release.deliver import deliver, node_keys
    from liaison.settings import Settings
    from liaison.store.pages import PageQuery, page

    node = open_node(Settings.from_env())
    code = partner.upper()
    keys = node_keys(node)
    with node.engine.connect() as connection:
        # Unknown objects and partners fail here, with their own messages.
        result = explain(connection, object_id, code)
        found = page(connection, code, PageQuery(ids=(object_id,), limit=1))
        delivery = deliver(node.engine, connection, code, found.versions, keys, None, found.granted)
    if not delivery.copies:
        reasons = "; ".join(r.text for r in result.decision.reasons)
        raise Withheld(f"{object_id} is withheld from {code}: {reasons}")
    (copy,) = delivery.copies
    if output is not None:
        output.write_bytes(copy.data + b"\n")
    summary = {
        "object": object_id,
        "partner": code,
        "version": copy.released.source.object.get("modified")
        or copy.released.source.object.get("created"),
        "sha256": hashlib.sha256(copy.data).hexdigest(),
        "fingerprint": copy.fingerprint,
        "marks": copy.marks,
        "ledger_entry": delivery.entries[0] if delivery.entries else None,
        "output": str(output) if output else None,
    }
    if as_json:
        print_json(summary if output is not None else {**summary, "copy": json.loads(copy.data)})
    elif output is None:
        typer.echo(copy.data.decode())
    else:
        console.print(
            f"{code}'s copy of {object_id} written to {output}: {copy.marks} marks, "
            f"ledger entry {summary['ledger_entry']}"
        )
