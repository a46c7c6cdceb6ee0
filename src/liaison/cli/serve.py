"""`liaison serve` and `liaison partner credentials`: the TAXII server and its credentials."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Annotated

import typer

from liaison.cli.render import console, print_json, table
from liaison.errors import CannotListen, InputError
from liaison.node import open_node
from liaison.settings import Settings


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 6000,
    workers: Annotated[
        int, typer.Option(help="Server processes (use several on PostgreSQL).", min=1)
    ] = 1,
) -> None:
    """Run the TAXII 2.1 server; discovery is at /taxii2/."""
    import uvicorn

    node = open_node(Settings.from_env())  # fail here, with a clear message, not in a worker
    check_listen(host, port)  # and before saying that it serves
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


def prepare(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Find the fingerprint slots of every stored text not prepared yet, so that first
    deliveries read them instead of finding them (the server does this by itself for what
    arrives while it runs)."""
    import sqlalchemy as sa

    from liaison.cli.render import progress
    from liaison.fingerprint.prepared import prepare_since
    from liaison.store.schema import objects, text_slots

    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        total = connection.execute(sa.select(sa.func.count()).select_from(objects)).scalar_one()
        before = connection.execute(sa.select(sa.func.count()).select_from(text_slots)).scalar_one()
    with progress() as bar:
        task = bar.add_task("preparing", total=total)
        prepare_since(node.engine, 0, progress=lambda n: bar.advance(task, n))
    with node.engine.connect() as connection:
        after = connection.execute(sa.select(sa.func.count()).select_from(text_slots)).scalar_one()
    result = {"versions": total, "texts_prepared": after - before, "texts_known": after}
    if as_json:
        print_json(result)
        return
    console.print(
        f"{total} versions read: {after - before} texts prepared now, {after} prepared in all."
    )


def check_listen(host: str, port: int) -> None:
    """CannotListen unless a server can listen on ``host:port``: the bind uvicorn will do
    (same address family, SO_REUSEADDR), tried and released at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    where = f"port {port} on {host}"
    with socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except socket.gaierror:
            raise CannotListen(
                f"cannot listen on {host}: no such address: choose another with --host"
            ) from None
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                message = f"{where} is already in use: choose another with --port"
            elif exc.errno == errno.EACCES:
                message = f"{where} needs privileges this user lacks: choose another with --port"
            elif exc.errno == errno.EADDRNOTAVAIL:
                message = f"{host} is not an address of this machine: choose another with --host"
            else:
                message = f"cannot listen on {where}: {exc.strerror}"
            raise CannotListen(message) from None


def credentials(
    partner: Annotated[str, typer.Argument(metavar="PARTNER", help="The partner's code.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Issue (or rotate) a partner's TAXII credentials; they are shown only this once."""
    from liaison.store.engine import write_transaction
    from liaison.taxii.credentials import issue_credentials

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
    from liaison.store.engine import write_transaction
    from liaison.taxii.credentials import add_certificate, fingerprint_of

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
