"""`liaison serve` and `liaison partner credentials`: the TAXII server and its credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liaison.cli.render import console, print_json, table
from liaison.errors import InputError
from liaison.node import open_node
from liaison.settings import Settings
from liaison.store.engine import write_transaction
from liaison.taxii.credentials import add_certificate, fingerprint_of, issue_credentials


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 6000,
    workers: Annotated[
        int, typer.Option(help="Server processes (use several on PostgreSQL).", min=1)
    ] = 1,
) -> None:
    """Run the TAXII 2.1 server; discovery is at /taxii2/."""
    import uvicorn

    node = open_node(Settings.from_env())  # fail here, with a clear message, not in a worker
    console.print(f"TAXII 2.1 for node {node.country} on http://{host}:{port}/taxii2/")
    uvicorn.run(
        "liaison.taxii.worker:app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        # uvicorn kills a worker that has not answered its health check within this many
        # seconds, starting ones included: a worker imports Liaison first, which takes longer
        # than uvicorn's default of 5 s on a busy machine, and would be replaced for ever.
        timeout_worker_healthcheck=120,
    )


def credentials(
    partner: Annotated[str, typer.Argument(metavar="PARTNER", help="The partner's code.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Issue (or rotate) a partner's TAXII credentials; they are shown only this once."""
    node = open_node(Settings.from_env())
    with write_transaction(node.engine) as connection:
        issued = issue_credentials(connection, partner.upper())
    if as_json:
        print_json(issued.as_json())
        return
    out = table(f"TAXII credentials of {issued.partner} (shown once)", "field", "value")
    out.add_row("username", issued.username)
    out.add_row("password", issued.password)
    out.add_row("token", issued.token)
    console.print(out)
    console.print("Any earlier credentials of this partner no longer work.")


def certificate(
    partner: Annotated[str, typer.Argument(metavar="PARTNER", help="The partner's code.")],
    cert: Annotated[
        Path | None, typer.Option(help="The partner's client certificate (PEM or DER).")
    ] = None,
    fingerprint: Annotated[
        str | None, typer.Option(help="Or its SHA-256 fingerprint (64 hex digits).")
    ] = None,
) -> None:
    """Let a client certificate stand for a partner under mutual TLS (see docs/taxii.md)."""
    if (cert is None) == (fingerprint is None):
        raise InputError("give exactly one of --cert and --fingerprint")
    if cert is not None:
        try:
            fingerprint = fingerprint_of(cert.read_bytes())
        except OSError as exc:
            raise InputError(f"cannot read {cert}: {exc.strerror}") from None
    assert fingerprint is not None
    node = open_node(Settings.from_env())
    with write_transaction(node.engine) as connection:
        add_certificate(connection, partner.upper(), fingerprint)
    console.print(f"Certificate {fingerprint.lower()} now identifies {partner.upper()}.")
