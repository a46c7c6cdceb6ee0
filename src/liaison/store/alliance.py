"""Partners, communities and collections in the store: applying an alliance file, reading it
back."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import sqlalchemy as sa

from liaison.alliance import Clearance, Collection, Community, Membership, Partner
from liaison.stix.timestamps import now_micros
from liaison.store.schema import (
    collections,
    communities,
    credentials,
    memberships,
    node,
    partners,
)


@dataclass
class AllianceChanges:
    """What applying an alliance file changed (for the CLI, and later the ledger)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    communities: int = 0
    memberships: int = 0
    memberships_changed: bool = False

    @property
    def any(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.memberships_changed)


def save_alliance(
    connection: sa.Connection,
    new_partners: tuple[Partner, ...],
    new_communities: tuple[Community, ...],
    new_collections: tuple[Collection, ...] = (),
) -> AllianceChanges:
    """Make the stored partners and communities exactly these; a removed partner's credentials
    are revoked."""
    changes = AllianceChanges()
    current = {p.country: p for p in read_partners(connection)}
    wanted = {p.country: p for p in new_partners}
    for code in sorted(set(current) - set(wanted)):
        connection.execute(partners.delete().where(partners.c.code == code))
        # A partner that leaves the alliance loses its access at once.
        connection.execute(
            credentials.update()
            .where(credentials.c.partner == code, credentials.c.revoked.is_(None))
            .values(revoked=now_micros())
        )
        changes.removed.append(code)
    for code, partner in sorted(wanted.items()):
        values = _partner_row(partner)
        if code not in current:
            connection.execute(partners.insert().values(code=code, **values))
            changes.added.append(code)
        elif current[code] != partner:
            connection.execute(partners.update().where(partners.c.code == code).values(**values))
            changes.updated.append(code)

    before = {
        (c.name, c.kind, c.description, frozenset(c.members)) for c in read_communities(connection)
    }
    after = {(c.name, c.kind, c.description, frozenset(c.members)) for c in new_communities}
    changes.memberships_changed = before != after
    connection.execute(memberships.delete())
    connection.execute(communities.delete())
    for community in new_communities:
        connection.execute(
            communities.insert().values(
                name=community.name, kind=community.kind, description=community.description
            )
        )
        rows = [
            {"community": community.name, "member": m.country, "joined": m.joined, "left": m.left}
            for m in community.members
        ]
        if rows:
            connection.execute(memberships.insert(), rows)
        changes.memberships += len(rows)
    changes.communities = len(new_communities)
    before_collections = set(read_collections(connection))
    changes.memberships_changed |= before_collections != set(new_collections)
    connection.execute(collections.delete())
    for collection in new_collections:
        connection.execute(
            collections.insert().values(
                id=collection.id,
                alias=collection.alias,
                title=collection.title,
                description=collection.description,
                types=json.dumps(list(collection.types)),
                readers=json.dumps(list(collection.read)),
                writers=json.dumps(list(collection.write)),
            )
        )
    return changes


def read_collections(connection: sa.Connection) -> list[Collection]:
    return [
        Collection(
            alias=row.alias,
            id=row.id,
            title=row.title,
            description=row.description,
            types=tuple(json.loads(row.types)),
            read=tuple(json.loads(row.readers)),
            write=tuple(json.loads(row.writers)),
        )
        for row in connection.execute(sa.select(collections).order_by(collections.c.alias))
    ]


def update_partner(connection: sa.Connection, partner: Partner) -> None:
    connection.execute(
        partners.update().where(partners.c.code == partner.country).values(**_partner_row(partner))
    )


def _partner_row(partner: Partner) -> dict[str, object]:
    return {
        "name": partner.name,
        "identity_id": partner.identity,
        "clearance_scale": partner.clearance.scale if partner.clearance else None,
        "clearance_level": partner.clearance.level if partner.clearance else None,
        "trust": partner.trust,
        "status": partner.status,
        "agreement": _agreement_text(partner.agreement, partner.protects_foreign),
        "public_key": partner.public_key or None,
    }


# The ``agreement`` column holds what the node's security agreement with the partner says: its
# free text, and the partner's rules for levels its scale lacks (``protects_foreign``), which
# such agreements set. Without rules it is the plain text, as before those rules existed; with
# them it is a JSON object with exactly these keys.
_AGREEMENT_KEYS = frozenset({"agreement", "protects_foreign"})


def _agreement_text(agreement: str, protects_foreign: dict[str, str]) -> str:
    if not protects_foreign and _agreement_parts(agreement) == (agreement, {}):
        return agreement
    body = {"agreement": agreement, "protects_foreign": protects_foreign}
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


def _agreement_parts(text: str) -> tuple[str, dict[str, str]]:
    """(free text, protects_foreign) of a stored ``agreement``. Plain text that merely looks
    like the JSON form is always stored in that form, so reading is never ambiguous."""
    if text.startswith("{"):
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict) and set(body) == _AGREEMENT_KEYS:
            return body["agreement"], body["protects_foreign"]
    return text, {}


def identities(connection: sa.Connection) -> dict[str, str]:
    """Identity id -> country code, of every partner and of the node."""
    found = dict(connection.execute(sa.select(partners.c.identity_id, partners.c.code)).all())
    found.update(connection.execute(sa.select(node.c.identity_id, node.c.country)).all())
    return found


def public_keys(connection: sa.Connection) -> dict[str, str]:
    """The pinned Ed25519 public keys (hex) by identity id: the node's own and each partner's
    that the alliance file names."""
    keys = dict(
        connection.execute(
            sa.select(partners.c.identity_id, partners.c.public_key).where(
                partners.c.public_key.is_not(None)
            )
        ).all()
    )
    keys.update(connection.execute(sa.select(node.c.identity_id, node.c.public_key)).all())
    return keys


def read_partners(connection: sa.Connection) -> list[Partner]:
    rows = connection.execute(sa.select(partners).order_by(partners.c.code))
    found = []
    for row in rows:
        agreement, protects_foreign = _agreement_parts(row.agreement)
        found.append(
            Partner(
                country=row.code,
                name=row.name,
                identity=row.identity_id,
                clearance=(
                    Clearance(scale=row.clearance_scale, level=row.clearance_level)
                    if row.clearance_scale
                    else None
                ),
                trust=row.trust,
                status=row.status,
                agreement=agreement,
                protects_foreign=protects_foreign,
                public_key=row.public_key or "",
            )
        )
    return found


def read_communities(connection: sa.Connection) -> list[Community]:
    members: dict[str, list[Membership]] = {}
    for row in connection.execute(
        sa.select(memberships).order_by(memberships.c.community, memberships.c.joined)
    ):
        members.setdefault(row.community, []).append(
            Membership(country=row.member, joined=row.joined, left=row.left)
        )
    return [
        Community(
            name=row.name,
            kind=row.kind,
            description=row.description,
            members=tuple(members.get(row.name, ())),
        )
        for row in connection.execute(sa.select(communities).order_by(communities.c.name))
    ]
