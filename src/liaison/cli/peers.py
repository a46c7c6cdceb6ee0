"""`liaison peer add|remove`, `liaison peers`: the partners' nodes this node syncs with."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from liaison.cli.render import console, err_console, print_json, progress, table
from liaison.errors import InputError
from liaison.node import open_node
from liaison.settings import Settings
from liaison.stix.timestamps import from_micros, now_micros

peer_app = typer.Typer(help="Peer nodes: the partners' Liaison nodes this node syncs with.")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON only.")]


@peer_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for the peer (e.g. usa).")],
    url: Annotated[str, typer.Option(help="The peer node's base URL (http(s)://host:port).")],
    partner: Annotated[str, typer.Option(help="The partner whose node it is (e.g. USA).")],
    credentials: Annotated[
        Path | None,
        typer.Option(
            help="What the peer's `liaison partner credentials CODE --json` printed for this "
            "node; without it, asked for."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a peer node; its credentials are stored encrypted under the node's key."""
    from liaison.node import load_signing_key
    from liaison.store.engine import write_transaction
    from liaison.taxii.peers import PeerSecret, add_peer, read_credentials

    node = open_node(Settings.from_env())
    if credentials is not None:
        try:
            text = credentials.read_text()
        except OSError as exc:
            raise InputError(f"cannot read {credentials}: {exc.strerror}") from None
        username, secret = read_credentials(text, node.country)
    else:
        username = typer.prompt("Username")
        secret = PeerSecret(typer.prompt("Password", hide_input=True), "")
    key = load_signing_key(node.settings.home)
    with write_transaction(node.engine) as connection:
        peer = add_peer(connection, key, name, url, partner.upper(), username, secret)
    if as_json:
        print_json(peer.as_json())
    else:
        console.print(f"Peer {peer.name} added: {peer.partner}'s node at {peer.url}")


@peer_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The peer's name.")]) -> None:
    """Forget a peer node and its credentials."""
    from liaison.store.engine import write_transaction
    from liaison.taxii.peers import remove_peer

    node = open_node(Settings.from_env())
    with write_transaction(node.engine) as connection:
        remove_peer(connection, name)
    console.print(f"Peer {name} removed")


def peers(as_json: JsonOption = False) -> None:
    """The peer nodes: name, URL, partner and the key pinned for it (never the secrets)."""
    from liaison.store.alliance import read_partners
    from liaison.taxii.peers import list_peers

    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        found = list_peers(connection)
        keys = {p.country: p.public_key for p in read_partners(connection)}
    rows = [{**p.as_json(), "public_key": keys.get(p.partner) or None} for p in found]
    if as_json:
        print_json(rows)
        return
    out = table("Peers", "name", "partner", "url", "pinned key", "added", "ledger")
    for row in rows:
        key = row["public_key"]
        out.add_row(
            row["name"],
            row["partner"],
            row["url"],
            f"{key[:16]}…" if key else "none",
            from_micros(row["added"])[:10],
            _ledger(row["ledger"]),
        )
    console.print(out)


def sync(
    name: Annotated[str | None, typer.Argument(help="One peer's name (default: every peer).")] = (
        None
    ),
    watch: Annotated[
        bool, typer.Option("--watch", help="Sync again and again, until interrupted.")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=1.0, help="With --watch: seconds between syncs with a peer.")
    ] = 300.0,
    as_json: JsonOption = False,
) -> None:
    """Pull from peer nodes what they let this node read, then push what this node releases
    to their partners, each since the last sync: every object pulled checked for its
    originator's signature, every copy pushed made and recorded by the release path."""
    from liaison.taxii.peers import list_peers
    from liaison.taxii.sync import Schedule, sync_round

    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        names = [p.name for p in list_peers(connection)]
    if name is not None:
        if name not in names:
            from liaison.errors import NotFound

            raise NotFound(f"no peer named {name}: `liaison peers` lists them")
        names = [name]
    if not watch:
        with progress() as bar:
            task = bar.add_task("Syncing", total=None)
            results = sync_round(node, names, on_page=lambda _: bar.update(task, advance=1))
        _show(results, as_json)
        rewritten = any((r.get("checkpoint") or {}).get("state") == "rewritten" for r in results)
        if rewritten or any("error" in r for r in results):
            raise typer.Exit(1)
        return
    if not names:
        raise InputError("no peers to watch: `liaison peer add` one first")
    schedule = Schedule(interval)
    try:
        while True:
            now = time.monotonic()
            due = schedule.ready(names, now)
            results = sync_round(node, due)
            for result in results:
                schedule.record(result["peer"], "error" not in result, time.monotonic())
            if as_json:  # one line per round: JSON Lines
                print(json.dumps({"at": from_micros(now_micros()), "peers": results}))
            else:
                _show(results, False)
                wait = schedule.wait(names, time.monotonic())
                console.print(f"Next sync in {wait:.0f} s (Ctrl-C stops).")
            time.sleep(schedule.wait(names, time.monotonic()))
    except KeyboardInterrupt:
        err_console.print("Stopped.")


def _show(results: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(results)
        return
    out = table("Sync", "peer", "received", "refused", "sent", "ledger", "note")
    for r in results:
        refused = r.get("refused") or []
        note = r.get("error") or "; ".join(
            x["reason"] if x["reason"].startswith(x["id"]) else f"{x['id']} {x['reason']}"
            for x in refused[:3]
        )
        out.add_row(
            str(r["peer"]),
            str(r.get("received", "-")),
            str(len(refused)),
            str(r.get("sent", "-")),
            _ledger(r.get("checkpoint")),
            note,
        )
    console.print(out)


def _ledger(check: dict[str, Any] | None) -> str:
    """A peer's ledger check, in a few words."""
    if not check:
        return "-"
    if check["state"] == "consistent":
        return f"consistent ({check['size']:,} entries)"
    return f"{check['state'].upper()}: {check['detail']}"
