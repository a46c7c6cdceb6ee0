"""`liaison consent grant|revoke|list`: the originator's permission to pass its objects on."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from liaison.cli.render import console, print_json, table
from liaison.errors import InputError
from liaison.node import open_node
from liaison.settings import Settings

consent_app = typer.Typer(
    help="Consents: the originator's signed permission for a partner to pass objects on."
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON only.")]


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"--until {text!r} is not a date (YYYY-MM-DD)") from None


@consent_app.command("grant")
def grant(
    object_id: Annotated[str, typer.Argument(help="An object this node originated.")],
    recipient: Annotated[str, typer.Option(help="The partner that may pass it on (e.g. USA).")],
    onward: Annotated[
        str, typer.Option(help="To whom: partners' codes or communities, comma-separated.")
    ],
    until: Annotated[
        str | None, typer.Option(help="The last day the consent holds (YYYY-MM-DD).")
    ] = None,
    by_markings: Annotated[
        bool,
        typer.Option(
            "--by-markings",
            help="Cover everything of this node carrying all of the object's markings.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Consent that RECIPIENT may pass OBJECT_ID on to ONWARD; prints the consent's id. The
    consent is signed by this node and goes to the recipient with the next sync."""
    from liaison.policy.consent import grant as grant_consent
    from liaison.store.engine import write_transaction

    node = open_node(Settings.from_env())
    names = [n.strip().upper() for n in onward.split(",") if n.strip()]
    with write_transaction(node.engine) as connection:
        consent = grant_consent(
            connection, object_id, recipient.upper(), names, _day(until), by_markings
        )
    if as_json:
        print_json(consent.as_json(node.country))
    else:
        console.print(consent.id)


@consent_app.command("revoke")
def revoke(
    consent_id: Annotated[str, typer.Argument(help="A consent this node gave.")],
    as_json: JsonOption = False,
) -> None:
    """Revoke a consent: a new version, revoked, goes to whom the consent went."""
    from liaison.policy.consent import revoke as revoke_consent
    from liaison.store.engine import write_transaction

    node = open_node(Settings.from_env())
    with write_transaction(node.engine) as connection:
        consent = revoke_consent(connection, consent_id)
    if as_json:
        print_json(consent.as_json(node.country))
    else:
        console.print(f"Consent {consent.id} revoked")


@consent_app.command("request")
def request(
    object_id: Annotated[str, typer.Argument(help="Another agency's object.")],
    onward: Annotated[
        str, typer.Option(help="To whom it would go: partners' codes or communities.")
    ],
    recipient: Annotated[
        str | None, typer.Option(help="Who would pass it on (default: this node).")
    ] = None,
    originator: Annotated[
        str | None, typer.Option(help="Whose object it is, when this node does not hold it.")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why, for the originator's officer.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Ask the originator of OBJECT_ID to consent to passing it on; prints the request's id.
    The request goes to the originator's node with the next sync."""
    from liaison.policy.consent import ask
    from liaison.store.engine import write_transaction

    node = open_node(Settings.from_env())
    names = [n.strip().upper() for n in onward.split(",") if n.strip()]
    with write_transaction(node.engine) as connection:
        asked = ask(
            connection,
            object_id,
            names,
            recipient.upper() if recipient else None,
            originator.upper() if originator else None,
            reason,
        )
    if as_json:
        print_json({"id": asked.id, "object": asked.object_id, "originator": asked.originator})
    else:
        console.print(asked.id)


@consent_app.command("requests")
def requests(as_json: JsonOption = False) -> None:
    """Consent requests: those this node made, and those made to it, with their answers."""
    from liaison.policy.consent import consent_requests

    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        rows = [r.as_json() for r in consent_requests(connection)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("No consent requests.")
    for row in rows:
        console.print(f"[bold]{row['id']}[/bold] ({row['state']})", highlight=False)
        console.print(
            f"  {row['requester']} asks {row['originator']} that {row['recipient']} pass "
            f"{row['object']} on to {', '.join(row['onward'])}",
            highlight=False,
        )
        if row["reason"]:
            console.print(f"  reason: {row['reason']}", highlight=False)
        if row["answer"]:
            console.print(f"  answer: {row['answer']}", highlight=False)


@consent_app.command("answer")
def answer_request(
    request_id: Annotated[str, typer.Argument(help="A consent request made to this node.")],
    grant_it: Annotated[bool, typer.Option("--grant", help="Consent as asked.")] = False,
    refuse: Annotated[bool, typer.Option("--refuse", help="Refuse.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Answer a consent request: --grant makes the consent it asks for, --refuse a refusal
    naming it; either goes to the requester with the next sync and is in the ledger."""
    from liaison.policy.consent import answer
    from liaison.store.engine import write_transaction

    if grant_it == refuse:
        raise InputError("answer with exactly one of --grant and --refuse")
    node = open_node(Settings.from_env())
    with write_transaction(node.engine) as connection:
        consent = answer(connection, request_id, refused=refuse)
    if as_json:
        print_json(consent.as_json(node.country))
    else:
        console.print(consent.id)


@consent_app.command("list")
def list_consents(as_json: JsonOption = False) -> None:
    """Consents this node gave, and those given to it or relayed to it."""
    from liaison.policy.consent import consents

    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        rows = [h.consent.as_json(h.owner) for h in consents(connection)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("No consents.")
    for row in rows:
        until = f", until {row['until'][:10]}" if row["until"] else ""
        console.print(f"[bold]{row['id']}[/bold] ({row['state']})", highlight=False)
        console.print(
            f"  {row['originator']} lets {row['recipient']} pass on to "
            f"{', '.join(row['onward'])}{until}",
            highlight=False,
        )
        scope = row["objects"] or [f"everything marked {' + '.join(row['markings'])}"]
        for line in scope:
            console.print(f"  {line}", highlight=False)


def onward(
    object_id: Annotated[str, typer.Argument(help="An object this node originated.")],
    as_json: JsonOption = False,
) -> None:
    """Who passed OBJECT_ID to whom: this node's own disclosures, and each onward disclosure
    a partner's node notified, with the consent that covered it (or a flag where none did)."""
    from liaison.release.onward import onward_chain

    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        chain = onward_chain(connection, object_id)
    if as_json:
        print_json([record.as_json() for record in chain])
        return
    if not chain:
        console.print(f"{object_id} has gone to no one.")
        return
    out = table(object_id, "version", "from → to", "consent", "notified", "proof")
    for record in chain:
        if record.via == "ledger":
            consent = "-"
        elif record.consent is None:
            consent = "[bold red]NOT COVERED[/bold red]"
        else:
            consent = record.consent.removeprefix("liaison-consent--")[:8] + "…"
        out.add_row(
            record.version[:19],
            f"{record.sender} → {record.recipient}",
            consent,
            (record.notified_at or "-")[:19],
            "verified" if record.verified else "[bold red]FAILS[/bold red]",
        )
    console.print(out)
    console.print("Consents: `liaison consent list`; the full record: --json.")
