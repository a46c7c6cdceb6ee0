"""`liaison demo`: a node for Canada, the demo alliance and open-source reports."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from liaison.cli.alliance import (
    communities_table,
    community_json,
    memberships_of,
    partner_json,
    partners_table,
)
from liaison.cli.render import console, print_json, table
from liaison.demo import (
    DEFAULT_ALLIANCE,
    DEFAULT_DOCUMENTS,
    DEFAULT_INTELLIGENCE,
    holdings,
    run_demo,
)
from liaison.settings import Settings


def demo(
    docs: Annotated[
        Path, typer.Option(help="A directory of *.txt documents to load as reports.")
    ] = DEFAULT_DOCUMENTS,
    alliance: Annotated[Path, typer.Option(help="The alliance file to apply.")] = (
        DEFAULT_ALLIANCE
    ),
    intelligence: Annotated[
        Path, typer.Option(help="A STIX bundle of marked intelligence to import.")
    ] = DEFAULT_INTELLIGENCE,
    country: Annotated[
        str | None,
        typer.Option(
            help="Make the demo node of this partner of the alliance (e.g. USA), with the "
            "alliance seen from it; default: the alliance file's node."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Run the demo: create the node, load the alliance and the documents, show the result."""
    from liaison.store.alliance import read_communities, read_partners
    from liaison.store.objects import latest_versions
    from liaison.store.pages import visibility_counts

    code = country.upper() if country else None
    result = run_demo(Settings.from_env(), docs, alliance, intelligence, code)
    node = result.node
    with node.engine.connect() as connection:
        found = read_partners(connection)
        groups = read_communities(connection)
        visibility = visibility_counts(connection)
    today = date.today()
    partner_rows = [partner_json(p, memberships_of(p.country, groups, today)) for p in found]
    counts = holdings(node)
    if as_json:
        print_json(
            {
                "node": node.identity(),
                "partners": partner_rows,
                "communities": [community_json(c) for c in groups],
                "import": result.reports.as_taxii_status(),
                "visibility": visibility,
                "holdings": [
                    {"type": kind, "marking": marking, "count": count}
                    for (kind, marking), count in sorted(counts.items())
                ],
            }
        )
        return
    state = "created" if result.created else "reopened"
    console.print(
        f"Node [bold]{node.country}[/bold] {state}: {node.name} ({node.identity_id}), "
        f"signing key {node.key_fingerprint}"
    )
    console.print(partners_table(partner_rows))
    console.print(communities_table([community_json(c) for c in groups]))
    reports = table("Reports loaded", "name", "published", "status")
    by_id = {s.id: s for s in result.reports.statuses}
    with node.engine.connect() as connection:
        for stored in latest_versions(connection, "report"):
            obj = stored.object
            status = by_id.get(obj["id"])
            reports.add_row(obj["name"], obj["published"][:10], status.status if status else "-")
    console.print(reports)
    held = table("Holdings", "type", "marking", "objects")
    for (kind, marking), count in sorted(counts.items()):
        held.add_row(kind, marking, str(count))
    console.print(held)
    seen = table("What each partner may see", "partner", "release", "with cuts", "withhold")
    for code, counts in sorted(visibility.items()):
        seen.add_row(
            code,
            str(counts["release"]),
            str(counts["release-with-cuts"]),
            str(counts["withhold"]),
        )
    console.print(seen)
    console.print("Try: liaison matrix ID, liaison explain ID --partner FRA")
