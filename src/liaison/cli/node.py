"""`liaison init`, `liaison upgrade`, `liaison node`: the node itself."""

from __future__ import annotations

from typing import Annotated

import typer

from liaison.cli.render import console, print_json, table
from liaison.node import DEFAULT_COUNTRY, DEFAULT_NAME, init_node, open_node, require_store
from liaison.settings import Settings

# The revision that gave every version an owner.
OWNERS = "0006"


def init(
    country: Annotated[str, typer.Option(help="The node's ISO 3166 alpha-3 country code.")] = (
        DEFAULT_COUNTRY
    ),
    name: Annotated[str, typer.Option(help="The name of the node's STIX identity.")] = (
        DEFAULT_NAME
    ),
) -> None:
    """Create the node: identity, signing key and store (safe to run again)."""
    settings = Settings.from_env()
    node, created = init_node(settings, country, name)
    verb = "Created" if created else "Already initialised:"
    console.print(f"{verb} node {node.country} ({node.identity_id}) in {settings.home}")
    console.print(f"Signing key {node.key_fingerprint}")


def upgrade_store() -> None:
    """Migrate the store's schema to this version of Liaison."""
    from liaison.ledger.backfill import backfill
    from liaison.policy.grants import rebuild
    from liaison.store.engine import create_engine, write_transaction
    from liaison.store.migrate import current_revision, upgrade

    settings = Settings.from_env()
    require_store(settings)  # an upgrade never creates a store: `liaison init` does
    engine = create_engine(settings.database_url)
    before = current_revision(engine)
    upgrade(engine)
    console.print(f"Store schema: {before or 'empty'} -> {current_revision(engine)}")
    with write_transaction(engine) as connection:
        added = backfill(connection)
        # Since 0006 a release class names the owner of its versions: decide them anew.
        rebuilt = rebuild(connection) if before is not None and before < OWNERS else None
    if added:
        console.print(f"Ledger: {added} earlier disclosures and policy changes entered")
    if rebuilt is not None:
        console.print(f"Release classes rebuilt with their owners: {rebuilt}")


def show_node(
    as_json: Annotated[bool, typer.Option("--json", help="Print the STIX identity as JSON.")] = (
        False
    ),
    public_key: Annotated[
        bool, typer.Option("--public-key", help="Print only the public key (64 hex digits).")
    ] = False,
) -> None:
    """Show the node's identity, its signing-key fingerprint and public key (what partners pin
    as `public_key` in their alliance files)."""
    node = open_node(Settings.from_env())
    if public_key:
        print(node.public_key_hex)
        return
    if as_json:
        print_json(node.identity())
        return
    out = table("Node", "field", "value")
    out.add_row("country", node.country)
    out.add_row("name", node.name)
    out.add_row("identity", node.identity_id)
    out.add_row("signing key", node.key_fingerprint)
    out.add_row("public key", node.public_key_hex)
    out.add_row("home", str(node.settings.home))
    out.add_row("store", node.engine.url.render_as_string(hide_password=True))
    console.print(out)
