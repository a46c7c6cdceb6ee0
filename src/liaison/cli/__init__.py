"""The `liaison` command. One module per command group; this one only assembles them.

Every command, and `liaison --help`, imports all of these modules: at their top they import
only what the help needs (typer, rich, light parts of Liaison); a command imports the libraries
it uses (the store, the validator, spaCy, numpy...) in its body. tests/cli/test_startup.py
checks it.
"""

from __future__ import annotations

import typer

from liaison.cli import (
    alliance,
    consent,
    demo,
    disclose,
    ingest,
    leak,
    ledger,
    node,
    objects,
    peers,
    policy,
    serve,
)
from liaison.cli.render import ErrorHandlingGroup

app = typer.Typer(
    cls=ErrorHandlingGroup,
    help="Liaison: share STIX 2.1 intelligence with allies and keep control of what you shared.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

app.command("init")(node.init)
app.command("upgrade")(node.upgrade_store)
app.command("node")(node.show_node)
app.add_typer(alliance.alliance_app, name="alliance")
app.command("partners")(alliance.partners)
app.command("communities")(alliance.communities)
app.command("import")(objects.import_file)
app.command("ingest")(ingest.ingest)
app.command("show")(objects.show)
app.command("list")(objects.list_objects)
app.command("verify")(objects.verify)
app.command("explain")(policy.explain)
app.command("matrix")(policy.matrix)
app.command("withdraw")(policy.withdraw)
policy.partner_app.command("credentials")(serve.credentials)
policy.partner_app.command("certificate")(serve.certificate)
app.add_typer(policy.partner_app, name="partner")
app.add_typer(policy.policy_app, name="policy")
app.add_typer(ledger.ledger_app, name="ledger")
app.add_typer(leak.leak_app, name="leak")
app.command("disclose")(disclose.disclose)
app.command("serve")(serve.serve)
app.command("prepare")(serve.prepare)
app.command("demo")(demo.demo)
app.add_typer(peers.peer_app, name="peer")
app.command("peers")(peers.peers)
app.command("sync")(peers.sync)
app.add_typer(consent.consent_app, name="consent")
app.command("onward")(consent.onward)


def main() -> None:
    app()
