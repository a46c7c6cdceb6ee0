"""`liaison ledger`: verify, show, prove and checkpoint the disclosure ledger; add witnesses;
audit a partner node's ledger."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from liaison.cli.render import console, err_console, print_json, progress, table
from liaison.errors import (
    ConfigError,
    LedgerError,
    LedgerTampered,
    UnknownPartner,
    UnknownType,
    did_you_mean,
)
from liaison.node import load_signing_key, open_node
from liaison.settings import Settings

# The ledger, its store and HTTP are imported by the commands that use them, so that
# `liaison --help` does not pay for them.

# log.KINDS, for the help of `show` (tests/cli/test_ledger_cli.py holds them equal).
KINDS = ("disclosure", "policy", "credentials", "certificate", "witness", "node-key", "consent")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
ledger_app = typer.Typer(help="The signed, verifiable log of every disclosure and change.")
witness_app = typer.Typer(help="Partners who cosign this node's checkpoints.")
ledger_app.add_typer(witness_app, name="witness")


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


@contextmanager
def _progress(total: int, *, shown: bool) -> Iterator[Callable[[int], None] | None]:
    """A bar of the entries verified, on a terminal's stderr and never with --json: a
    million entries take a while."""
    if not shown:
        yield None
        return
    with progress() as bar:
        task = bar.add_task("Verifying the ledger", total=total)
        yield lambda count: bar.advance(task, count)


@ledger_app.command("verify")
def verify(as_json: JsonOption = False) -> None:
    """Recompute the whole ledger and check it against every stored hash, checkpoint and
    record, and against the checkpoints kept in the anchor file; on tampering, name the first
    bad entry and exit 1."""
    from liaison.ledger import log

    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # One snapshot for all of verify's queries, while servers go on appending.
            connection.execution_options(isolation_level="REPEATABLE READ")
        try:
            with _progress(log.tree_size(connection), shown=not as_json) as advance:
                result = log.verify(
                    connection,
                    node.country,
                    node.public_key,
                    advance,
                    anchor_file=node.settings.ledger_anchor_file,
                )
        except LedgerError as error:
            if as_json:
                entry = error.entry if isinstance(error, LedgerTampered) else None
                print_json({"verified": False, "first_bad_entry": entry, "error": str(error)})
                raise typer.Exit(error.exit_code) from None
            raise
    anchored = result.anchor
    data = {
        "verified": True,
        "tree_size": result.size,
        "root_hash": _b64(result.root),
        "checkpoints": result.checkpoints,
        "cosignatures": result.cosignatures,
        "disclosures": result.disclosures,
        "anchor": {
            "file": anchored.path if anchored else None,
            "checkpoints": anchored.checkpoints if anchored else 0,
            "tree_size": anchored.size if anchored else 0,
        },
        "warnings": list(result.warnings),
    }
    if as_json:
        print_json(data)
        return
    console.print(
        f"[green]verified[/green]: {result.size} entries, root {data['root_hash']}, "
        f"{result.checkpoints} signed checkpoints, {result.cosignatures} cosignatures, "
        f"{result.disclosures} disclosure records"
    )
    if anchored is not None and anchored.checkpoints:
        console.print(
            f"anchored: {anchored.checkpoints} checkpoints in {escape(anchored.path)}, "
            f"the largest of {anchored.size} entries",
            soft_wrap=True,
        )
    for warning in result.warnings:
        err_console.print(f"[yellow]warning[/yellow]: {escape(warning)}", soft_wrap=True)


@ledger_app.command("show")
def show(
    partner: Annotated[str | None, typer.Option(help="Only entries about this partner.")] = None,
    object_id: Annotated[
        str | None, typer.Option("--object", help="Only disclosures of this object.")
    ] = None,
    kind: Annotated[str | None, typer.Option(help=f"Only one kind: {', '.join(KINDS)}.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many entries.")] = 1000,
    as_json: JsonOption = False,
) -> None:
    """Who received what, when, under which rule; and every change of who may see what."""
    from liaison.ledger import log
    from liaison.store.alliance import read_partners

    node = open_node(Settings.from_env())
    code = partner.upper() if partner else None
    if kind is not None and kind not in log.KINDS:
        hint = did_you_mean(kind, log.KINDS) or f" ({', '.join(log.KINDS)})"
        raise UnknownType(f"{kind!r} is not a kind of ledger entry{hint}")
    with node.engine.connect() as connection:
        if code is not None:
            known = {p.country for p in read_partners(connection)} | log.entry_partners(connection)
            if code not in known:
                hint = did_you_mean(code, known)
                raise UnknownPartner(f"{code} is not a known partner{hint}")
        found = log.entries(
            connection,
            partner=code,
            object_id=object_id,
            kind=kind,
            limit=limit,
        )
    contents = [e.content for e in found]
    if as_json:
        print_json(contents)
        return
    rows = table("Ledger", "seq", "at", "kind", "partner", "what")
    for content in contents:
        rows.add_row(
            str(content["seq"]),
            content["at"],
            content["kind"],
            content.get("partner") or "-",
            _what(content),
        )
    console.print(rows)


def _what(content: dict[str, Any]) -> str:
    kind = content["kind"]
    if kind == "disclosure":
        return (
            f"{content['object_id']} version {content['version']}, class "
            f"{content['release_class'][:12]}…, sha256 {content['sha256'][:12]}…"
        )
    if kind == "policy":
        return f"policy version {content['version']}: {content['change']}"
    if kind == "credentials":
        return f"credentials {content['action']}"
    if kind == "certificate":
        return f"client certificate {content['sha256'][:16]}…"
    if kind == "node-key":
        return f"node key of {content['country']} ({content['origin']})"
    if kind == "witness":
        return f"witness key {content['vkey'].split('+')[0]}"
    return json.dumps({k: v for k, v in content.items() if k not in ("seq", "at", "kind")})


@ledger_app.command("proof")
def proof(
    entry: Annotated[int, typer.Argument(metavar="ENTRY", help="The entry's sequence number.")],
    size: Annotated[
        int | None, typer.Option(help="The tree size (default: the latest checkpoint's).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The entry, its inclusion proof and the signed checkpoint it verifies against."""
    from liaison.ledger import log
    from liaison.store.engine import write_transaction

    node = open_node(Settings.from_env())
    with write_transaction(node.engine) as connection:
        signed = log.checkpoint(connection, node.country, load_signing_key(node.settings.home))
        tree = size or signed.checkpoint.size
        found = log.entry(connection, entry)
        hashes = log.inclusion_proof(connection, entry, tree)
        note = (
            signed.note if tree == signed.checkpoint.size else log.checkpoint_at(connection, tree)
        )
    data = {
        "seq": entry,
        "entry": found.body.decode(),
        "tree_size": tree,
        "inclusion_proof": [_b64(h) for h in hashes],
        "checkpoint": note,
    }
    if as_json:
        print_json(data)
        return
    # Hashes, notes and keys are printed as they are: a wrapped line would not verify.
    typer.echo(f"entry {entry}: {data['entry']}")
    typer.echo(f"inclusion proof in the tree of {tree} entries:")
    for value in data["inclusion_proof"]:
        typer.echo(f"  {value}")
    typer.echo(note, nl=False)


@ledger_app.command("checkpoint")
def checkpoint(as_json: JsonOption = False) -> None:
    """Sign a checkpoint of the ledger as it is now (C2SP tlog-checkpoint), and show it with
    the node's verifier key and witness key."""
    from liaison.ledger import log
    from liaison.ledger.note import cosigner_key
    from liaison.store.engine import write_transaction

    node = open_node(Settings.from_env())
    key = load_signing_key(node.settings.home)
    with write_transaction(node.engine) as connection:
        signed = log.checkpoint(connection, node.country, key)
    origin = signed.checkpoint.origin
    data = {
        "origin": origin,
        "tree_size": signed.checkpoint.size,
        "root_hash": _b64(signed.checkpoint.root),
        "checkpoint": signed.note,
        "verifier_key": log.node_verifier(node.country, node.public_key).vkey,
        "witness_key": cosigner_key(origin, node.public_key),
        "anchor_file": str(node.settings.ledger_anchor_file.absolute()),
    }
    if as_json:
        print_json(data)
        return
    typer.echo(signed.note, nl=False)
    typer.echo(f"anchored in: {data['anchor_file']}")
    typer.echo(f"verifier key: {data['verifier_key']}")
    typer.echo(f"witness key (for partners who let this node cosign): {data['witness_key']}")


@witness_app.command("add")
def add_witness(
    partner: Annotated[str, typer.Argument(help="The partner's country code.")],
    key: Annotated[str, typer.Argument(metavar="WITNESS_KEY", help="Its C2SP cosigner key.")],
    as_json: JsonOption = False,
) -> None:
    """Let a partner cosign this node's checkpoints with its witness key."""
    from liaison.ledger import log
    from liaison.ledger.note import parse_verifier_key
    from liaison.store.alliance import read_partners
    from liaison.store.engine import write_transaction

    node = open_node(Settings.from_env())
    try:
        parsed = parse_verifier_key(key)
    except ValueError as error:
        raise ConfigError(f"not a C2SP verifier key: {error}") from None
    if parsed.signature_type != 0x04:
        raise ConfigError("a witness key is a cosignature/v1 key (type 0x04)")
    with write_transaction(node.engine) as connection:
        if partner.upper() not in {p.country for p in read_partners(connection)}:
            raise UnknownPartner(f"{partner.upper()} is not a known partner")
        log.add_witness(connection, partner.upper(), key)
    if as_json:
        print_json({"partner": partner.upper(), "witness": parsed.name})
    else:
        console.print(f"{partner.upper()} may now cosign as {parsed.name}")


@witness_app.command("list")
def list_witnesses(as_json: JsonOption = False) -> None:
    """The partners' witness keys."""
    from liaison.ledger import log

    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        found = log.witness_rows(connection)
    if as_json:
        print_json(found)
        return
    rows = table("Witnesses", "partner", "name", "key")
    for item in found:
        rows.add_row(item["partner"], item["name"], item["vkey"])
    console.print(rows, soft_wrap=True)


@ledger_app.command("audit")
def audit_peer(
    url: Annotated[str, typer.Argument(help="The partner node's TAXII API root URL.")],
    key: Annotated[str, typer.Option(help="The partner node's ledger verifier key.")],
    token_file: Annotated[
        Path, typer.Option(help="A file holding the API token that node issued to us.")
    ],
    cosign: Annotated[bool, typer.Option(help="Cosign the checkpoint as a witness.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Check a partner node's ledger: its new checkpoint must extend every one seen before
    (a consistency proof); keep it, and optionally cosign it."""
    import httpx

    from liaison.ledger import log
    from liaison.ledger.audit import Witness, audit
    from liaison.ledger.note import parse_verifier_key
    from liaison.store.engine import write_transaction

    node = open_node(Settings.from_env())
    try:
        verifier = parse_verifier_key(key)
        token = token_file.read_text().strip()
    except ValueError as error:
        raise ConfigError(f"not a C2SP verifier key: {error}") from None
    except OSError as error:
        raise ConfigError(f"cannot read {token_file}: {error.strerror}") from None
    witness = None
    if cosign:
        signing = load_signing_key(node.settings.home)
        witness = Witness(log.origin_of(node.country, node.public_key), signing)
    headers = {"Accept": "application/taxii+json;version=2.1", "Authorization": f"Bearer {token}"}
    with (
        httpx.Client(base_url=url.rstrip("/") + "/", headers=headers, timeout=30) as client,
        write_transaction(node.engine) as connection,
    ):
        result = audit(connection, client, verifier, witness)
    data = {
        "origin": result.origin,
        "tree_size": result.checkpoint.size,
        "previous_size": result.previous,
        "consistent": True,
        "cosigned": result.cosigned,
    }
    if as_json:
        print_json(data)
        return
    since = (
        f"consistent with the {result.previous} entries seen before"
        if result.previous is not None
        else "first checkpoint seen"
    )
    console.print(f"[green]{result.origin}[/green]: {result.checkpoint.size} entries, {since}")
