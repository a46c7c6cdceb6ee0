"""`liaison explain`, `liaison matrix`, `liaison withdraw`, `liaison partner set`,
`liaison policy rebuild`, `liaison policy log`."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer

from liaison.cli.render import console, print_json, table
from liaison.errors import ConfigError, InputError, UnknownPartner
from liaison.node import open_node
from liaison.settings import Settings
from liaison.stix.timestamps import to_micros

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
partner_app = typer.Typer(help="Change one partner.")
policy_app = typer.Typer(help="The compiled release policy.")

_STYLE = {"release": "green", "release-with-cuts": "yellow", "withhold": "red"}


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--at must be a date (YYYY-MM-DD), not {value!r}") from None


def explain(
    object_id: Annotated[str, typer.Argument(metavar="OBJECT_ID")],
    partner: Annotated[str, typer.Option(help="The partner's country code.")],
    at: Annotated[str | None, typer.Option(help="Decide as on this date (YYYY-MM-DD).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Why an object may or may not go to a partner, and the copy it would receive."""
    from liaison.policy.explain import explain as explain_object

    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        result = explain_object(connection, object_id, partner.upper(), _date(at))
    data = result.as_json()
    if as_json:
        print_json(data)
        return
    style = _STYLE[result.decision.decision]
    console.print(
        f"{object_id} to {result.partner} on {result.at}: "
        f"[bold {style}]{result.decision.decision}[/bold {style}]"
    )
    reasons = table("Reasons", "code", "reason")
    for reason in result.decision.reasons:
        reasons.add_row(reason.code, reason.text)
    console.print(reasons)
    if result.cut_fields or result.cut_references:
        console.print(f"Cut fields: {', '.join(result.cut_fields) or '-'}")
        console.print(f"Cut references: {', '.join(result.cut_references) or '-'}")


def matrix(
    object_id: Annotated[str, typer.Argument(metavar="OBJECT_ID")],
    at: Annotated[str | None, typer.Option(help="Decide as on this date (YYYY-MM-DD).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Who can see this object, which fields, and why: every partner at once."""
    import sqlalchemy as sa

    from liaison.policy.explain import explain as explain_object
    from liaison.store.schema import partners

    node = open_node(Settings.from_env())
    day = _date(at)
    with node.engine.connect() as connection:
        codes = connection.execute(sa.select(partners.c.code).order_by(partners.c.code)).scalars()
        rows = [explain_object(connection, object_id, code, day).as_json() for code in codes]
    if as_json:
        print_json(rows)
        return
    out = table(
        f"Release matrix of {object_id}", "partner", "decision", "cut", "reasons", lines=True
    )
    for row in rows:
        style = _STYLE[row["decision"]]
        cut = [*row["cuts"]["fields"], *(f"ref {r}" for r in row["cuts"]["references"])]
        out.add_row(
            row["partner"],
            f"[{style}]{row['decision']}[/{style}]",
            "\n".join(cut) or "-",
            "\n".join(r["text"] for r in row["reasons"]),
        )
    console.print(out)


def withdraw(
    object_id: Annotated[str, typer.Argument(metavar="OBJECT_ID")],
    reason: Annotated[str, typer.Option(help="Why: recorded in the policy log and ledger.")],
    version: Annotated[
        list[str] | None,
        typer.Option(help="A version (its modified timestamp); default: all but the newest."),
    ] = None,
    partner: Annotated[
        list[str] | None,
        typer.Option(help="A partner's code; default: those that may not see the newest."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Withdraw earlier versions of an object from partners (a ledger-recorded decision)."""
    from liaison.policy.withdraw import withdraw as withdraw_versions
    from liaison.store.engine import write_transaction

    node = open_node(Settings.from_env())
    versions = [_version(v) for v in version or []]
    codes = [code.upper() for code in partner or []]
    with write_transaction(node.engine) as connection:
        result = withdraw_versions(connection, object_id, reason, versions, codes)
    if as_json:
        print_json(result.as_json())
        return
    console.print(
        f"Withdrew {len(result.versions)} version(s) of {object_id} from "
        f"{', '.join(result.partners)} (policy version {result.policy_version}). "
        "What they already received stays in the ledger."
    )


def _version(value: str) -> int:
    try:
        return to_micros(value)
    except ValueError:
        raise InputError(f"--version must be a STIX timestamp, not {value!r}") from None


@partner_app.command("set")
def partner_set(
    code: Annotated[str, typer.Argument(metavar="PARTNER", help="The partner's country code.")],
    trust: Annotated[str | None, typer.Option(help="high, medium or low.")] = None,
    clearance: Annotated[str | None, typer.Option(help="SCALE:LEVEL, e.g. NATO:NS.")] = None,
    status: Annotated[str | None, typer.Option(help="active, suspended or non-partner.")] = None,
    public_key: Annotated[
        str | None,
        typer.Option(help="Its node's Ed25519 public key (64 hex digits: its `liaison node`)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Change a partner's trust, clearance, status or pinned key now, and re-decide what it
    may see."""
    from pydantic import ValidationError

    from liaison.alliance import Partner
    from liaison.policy.grants import record_change, redecide
    from liaison.store.alliance import read_partners, update_partner
    from liaison.store.engine import write_transaction
    from liaison.store.pages import count_latest_in_classes

    node = open_node(Settings.from_env())
    code = code.upper()
    wanted = {"trust": trust, "clearance": clearance, "status": status, "public_key": public_key}
    changed = {name: value for name, value in wanted.items() if value is not None}
    if not changed:
        raise ConfigError("nothing to change: give --trust, --clearance, --status or --public-key")
    with write_transaction(node.engine) as connection:
        current = next((p for p in read_partners(connection) if p.country == code), None)
        if current is None:
            raise UnknownPartner(f"{code} is not a known partner")
        try:
            updated = Partner.model_validate({**current.model_dump(), **changed})
        except ValidationError as exc:
            message = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise ConfigError(f"{code}: {message}") from None
        update_partner(connection, updated)
        version = record_change(connection, "partner", {"partner": code, **changed})
        changes = redecide(connection, partners=[code])
        classes = sorted({c.class_id for c in changes})
        count = count_latest_in_classes(connection, classes)
    result = {
        "partner": code,
        "changed": changed,
        "policy_version": version,
        "classes_changed": len(classes),
        "objects_changed": count,
    }
    if as_json:
        print_json(result)
        return
    console.print(
        f"{code}: {len(classes)} release classes and {count} objects changed visibility "
        f"(policy version {version})."
    )


@policy_app.command("rebuild")
def policy_rebuild(as_json: JsonOption = False) -> None:
    """Recompute every release class and grant from the stored objects."""
    from liaison.policy.grants import rebuild
    from liaison.store.engine import write_transaction

    node = open_node(Settings.from_env())
    with write_transaction(node.engine) as connection:
        count = rebuild(connection)
    if as_json:
        print_json({"classes": count})
        return
    console.print(f"Rebuilt {count} release classes and their grants.")


@policy_app.command("log")
def policy_log(as_json: JsonOption = False) -> None:
    """Every recorded change of partners, communities and rules, oldest first."""
    from liaison.policy.grants import read_changes

    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        changes = read_changes(connection)
    if as_json:
        print_json(changes)
        return
    out = table("Policy changes", "version", "at", "kind", "value")
    for change in changes:
        detail = json.dumps(change["detail"], sort_keys=True, ensure_ascii=False)
        out.add_row(str(change["version"]), change["at"][:19], change["kind"], detail)
    console.print(out)
