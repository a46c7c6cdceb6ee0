"""`liaison alliance load`, `liaison partners`, `liaison communities`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from liaison.cli.render import console, print_json, table
from liaison.node import apply_alliance, open_node
from liaison.settings import Settings

if TYPE_CHECKING:
    from liaison.alliance import Community, Partner

alliance_app = typer.Typer(help="Partners and communities from an alliance file.")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON only.")]


@alliance_app.command("load")
def load(
    file: Annotated[Path, typer.Argument(help="The alliance file (TOML).")],
) -> None:
    """Apply an alliance file: partners and communities become exactly what it says."""
    node = open_node(Settings.from_env())
    changes = apply_alliance(node, file)
    console.print(
        f"Alliance applied: {len(changes.added)} partners added, {len(changes.updated)} "
        f"updated, {len(changes.removed)} removed; {changes.communities} communities, "
        f"{changes.memberships} memberships."
    )


def memberships_of(code: str, communities: list[Community], today: date) -> list[str]:
    """The communities ``code`` belongs to on ``today``."""
    from liaison.alliance import communities_of

    member = communities_of(communities, code, today)
    return [c.name for c in communities if c.name in member]


def partner_json(partner: Partner, communities: list[str]) -> dict[str, Any]:
    return {
        "country": partner.country,
        "name": partner.name,
        "identity": partner.identity,
        "clearance": str(partner.clearance) if partner.clearance else None,
        "trust": partner.trust,
        "status": partner.status,
        "agreement": partner.agreement,
        "communities": communities,
    }


def community_json(community: Community) -> dict[str, Any]:
    return {
        "name": community.name,
        "kind": community.kind,
        "description": community.description,
        "members": [
            {
                "country": m.country,
                "joined": m.joined.isoformat(),
                "left": m.left.isoformat() if m.left else None,
            }
            for m in community.members
        ],
    }


def partners(as_json: JsonOption = False) -> None:
    """List the partners: clearance, trust, status and current communities."""
    from liaison.store.alliance import read_communities, read_partners

    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        found = read_partners(connection)
        communities = read_communities(connection)
    today = date.today()
    rows = [partner_json(p, memberships_of(p.country, communities, today)) for p in found]
    if as_json:
        print_json(rows)
        return
    console.print(partners_table(rows))


def partners_table(rows: list[dict[str, Any]]) -> Any:
    out = table("Partners", "country", "name", "clearance", "trust", "status", "communities")
    for row in rows:
        out.add_row(
            row["country"],
            row["name"],
            row["clearance"] or "-",
            row["trust"],
            row["status"],
            ", ".join(row["communities"]) or "-",
        )
    return out


def communities(as_json: JsonOption = False) -> None:
    """List the communities and their members with join and exit dates."""
    from liaison.store.alliance import read_communities

    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        found = read_communities(connection)
    rows = [community_json(c) for c in found]
    if as_json:
        print_json(rows)
        return
    console.print(communities_table(rows))


def communities_table(rows: list[dict[str, Any]]) -> Any:
    out = table("Communities", "name", "kind", "members (joined - left)")
    for row in rows:
        members = ", ".join(
            m["country"]
            + (f" ({m['joined']} - {m['left'] or ''})" if m["joined"] != "1900-01-01" else "")
            for m in row["members"]
        )
        out.add_row(row["name"], row["kind"], members)
    return out
