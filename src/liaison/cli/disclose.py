"""`liaison disclose`: one partner's copy of an object, for delivery by hand, recorded in the
ledger like any TAXII delivery."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer

from liaison.cli.render import console, print_json
from liaison.errors import Withheld
from liaison.fingerprint.copies import fingerprint_secret, mark
from liaison.ledger.disclosures import Disclosure, new_disclosures, record_disclosures
from liaison.node import load_signing_key, open_node
from liaison.policy.explain import explain
from liaison.settings import Settings
from liaison.store.engine import write_transaction
from liaison.store.schema import objects


def disclose(
    object_id: Annotated[str, typer.Argument(metavar="OBJECT_ID")],
    partner: Annotated[str, typer.Option(help="The partner's country code.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the copy here, not to stdout.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Write the copy of an object that a partner may receive (tearline applied, its own
    fingerprint), and record the disclosure in the ledger; refuse what it may not receive."""
    node = open_node(Settings.from_env())
    code = partner.upper()
    secret = fingerprint_secret(load_signing_key(node.settings.home))
    with write_transaction(node.engine) as connection:
        result = explain(connection, object_id, code)
        if result.copy is None:
            reasons = "; ".join(r.text for r in result.decision.reasons)
            raise Withheld(f"{object_id} is withheld from {code}: {reasons}")
        # explain() found the latest version in this transaction, so the row is there.
        row = connection.execute(
            sa.select(objects.c.version, objects.c.release_class).where(
                objects.c.id == object_id, objects.c.latest.is_(True)
            )
        ).one()
        marked = mark(result.copy, code, secret)
        data = marked.data()
        delivered = Disclosure(
            code, object_id, row.version, row.release_class, data, marked.fingerprint
        )
        first_time, entries = new_disclosures(connection, [delivered])
        if first_time:
            entries = record_disclosures(connection, first_time)
    if output is not None:
        output.write_bytes(data + b"\n")
    summary = {
        "object": object_id,
        "partner": code,
        "sha256": delivered.digest,
        "fingerprint": marked.fingerprint,
        "marks": marked.marks,
        "ledger_entry": entries[0] if entries else None,
        "output": str(output) if output else None,
    }
    if as_json:
        print_json(summary if output is not None else {**summary, "copy": marked.object})
    elif output is None:
        typer.echo(data.decode())
    else:
        console.print(
            f"{code}'s copy of {object_id} written to {output}: {marked.marks} marks, "
            f"ledger entry {summary['ledger_entry']}"
        )
