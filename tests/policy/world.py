"""A small alliance for policy tests: CAN's node, its partners, communities with dates."""

from __future__ import annotations

from datetime import date

from liaison.alliance import Clearance, Community, Membership, Partner
from liaison.policy.decide import PolicyContext
from liaison.policy.rules import NodeRules

NODE = "identity--00000000-0000-4000-8000-00000000acan"
USA_ID = "identity--00000000-0000-4000-8000-00000000ausa"


def partner(code: str, clearance: str | None, trust: str = "medium", status: str = "active"):
    identity = USA_ID if code == "USA" else ""
    return Partner(
        country=code,
        name=code,
        identity=identity,
        clearance=Clearance.parse(clearance) if clearance else None,
        trust=trust,
        status=status,
    )


PARTNERS = {
    p.country: p
    for p in (
        partner("USA", "USA:TS", "high"),
        partner("GBR", "GBR:TOP SECRET", "high"),
        partner("AUS", "AUS:TOP SECRET", "high"),
        partner("NZL", "NZL:TOP SECRET", "high"),
        partner("FRA", "NATO:NS"),
        partner("ALB", "NATO:NC"),
        partner("TUR", "NATO:NS", "low"),
        partner("DEU", "NATO:NS", status="suspended"),
        partner("RUS", None, status="non-partner"),
    )
}


def community(name: str, *members: str | tuple[str, date, date | None]) -> Community:
    return Community(
        name=name,
        members=tuple(
            Membership(country=m)
            if isinstance(m, str)
            else Membership(country=m[0], joined=m[1], left=m[2])
            for m in members
        ),
    )


COMMUNITIES = (
    community("FVEY", "CAN", "USA", "GBR", "AUS", "NZL"),
    community("NATO", "CAN", "USA", "GBR", "FRA", "ALB", "TUR", "DEU"),
    community(
        "eFP Latvia",
        ("CAN", date(2017, 6, 19), None),
        ("ALB", date(2017, 6, 19), date(2024, 1, 1)),
    ),
)


def context(**rules) -> PolicyContext:
    return PolicyContext(
        node_country="CAN",
        partners=PARTNERS,
        communities=COMMUNITIES,
        rules=NodeRules(**rules),
    )
