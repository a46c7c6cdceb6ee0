"""No object reaches a partner its originator's consents do not allow: random consent graphs
arriving in random orders at the USA's node, against a reference written from
docs/consent.md and docs/policy.md alone.

Canada originates reports, each under one marking (TLP:CLEAR, REL TO FVEY, REL TO NATO,
TLP:AMBER, or REL TO FVEY with ORCON), and consents: to the USA or to the UK as recipient,
onward to partners and communities, for objects or for everything under a marking, with or
without an end, some revoked, some forged (signed with another key, or edited after signing).
Everything reaches the USA's node as Canada's node would send it, in a random order, through
the write path. Then what the USA's node serves each third partner (its TAXII page) must be
exactly what the reference allows: a consent in force (its latest genuine version not
revoked, to the USA, naming the partner or a community the partner is in, not ended,
covering the object) releases the object; without one, only the object's own marking can.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liaison.importer import import_objects
from liaison.markings.handling import marking_definition
from liaison.markings.tlp import TLP_AMBER, TLP_CLEAR
from liaison.node import Node, apply_alliance, init_node, open_node
from liaison.policy.grants import rebuild
from liaison.settings import InputLimits, Settings
from liaison.stix.consent import CONSENT_TYPE
from liaison.stix.ids import derived_id
from liaison.stix.signature import Signer, sign
from liaison.store.engine import write_transaction
from liaison.store.pages import PageQuery, page
from tests.conftest import examples

CAN_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
CAN = derived_id("identity", "agency:CAN")
THIRD = ("GBR", "FRA", "DEU")
COMMUNITIES = {"FVEY": {"CAN", "USA", "GBR"}, "NATO": {"CAN", "USA", "GBR", "FRA", "DEU"}}
COMMUNITIES["EU"] = {"FRA", "DEU"}
REL_FVEY = marking_definition(CAN, releasable_to=["FVEY"])
REL_NATO = marking_definition(CAN, releasable_to=["NATO"])
ORCON_FVEY = marking_definition(CAN, releasable_to=["FVEY"], caveats=["ORCON"])
MARKINGS = {
    "clear": TLP_CLEAR,
    "rel-fvey": REL_FVEY["id"],
    "rel-nato": REL_NATO["id"],
    "amber": TLP_AMBER,
    "orcon-fvey": ORCON_FVEY["id"],
}
BASE = "2026-12-01T00:00:{:02d}.000Z"


def alliance(can_key: str) -> str:
    partners = {"CAN": "CAN:TOP SECRET", "GBR": "GBR:TOP SECRET", "FRA": "NATO:NS"}
    partners["DEU"] = "NATO:NS"
    text = '[node]\ncountry = "USA"\nname = "USA node"\n\n'
    for code, clearance in partners.items():
        text += f'[[partners]]\ncountry = "{code}"\nname = "{code}"\nclearance = "{clearance}"\n'
        text += 'trust = "high"\n'
        if code == "CAN":
            text += f'public_key = "{can_key}"\n'
        text += "\n"
    for name, members in COMMUNITIES.items():
        rows = "".join(f'  {{ country = "{m}", joined = 1949-08-24 }},\n' for m in sorted(members))
        text += f'[[communities]]\nname = "{name}"\nkind = "alliance"\nmembers = [\n{rows}]\n\n'
    return text


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The USA's node, once: each example works on a copy of its home and store."""
    root = tmp_path_factory.mktemp("usa")
    node, _ = init_node(_settings(root), "USA", "USA node")
    path = root / "alliance.toml"
    key = CAN_KEY.public_key().public_bytes_raw().hex()
    path.write_text(alliance(key))
    apply_alliance(node, path)
    node.engine.dispose()
    return root


def _settings(root: Path) -> Settings:
    return Settings(
        home=root / "home",
        database_url=f"sqlite:///{root / 'store.db'}",
        limits=InputLimits(),
        validation_workers=1,
    )


@dataclass(frozen=True)
class Grant:
    recipient: str
    onward: tuple[str, ...]
    objects: tuple[int, ...]  # indexes of the reports; empty: by marking
    marking: str
    until: int | None  # days from today; None: no end
    revoked: bool
    forged: str | None  # None, "key" (signed by another), "edited" (changed after signing)
    forged_revocation: bool  # a revocation signed with another key arrives too


grants = st.builds(
    Grant,
    recipient=st.sampled_from(["USA", "USA", "GBR"]),
    onward=st.lists(
        st.sampled_from(["GBR", "FRA", "DEU", "NATO", "EU", "FVEY"]), min_size=1, unique=True
    ).map(tuple),
    objects=st.lists(st.integers(0, 3), max_size=3, unique=True).map(tuple),
    marking=st.sampled_from(sorted(MARKINGS)),
    until=st.sampled_from([None, -1, 0, 30]),
    revoked=st.booleans(),
    forged=st.sampled_from([None, None, None, "key", "edited"]),
    forged_revocation=st.booleans(),
)


@dataclass(frozen=True)
class World:
    reports: tuple[str, ...]  # the marking of each report
    grants: tuple[Grant, ...]
    order: tuple[int, ...]  # a permutation of the arrivals


@st.composite
def worlds(draw: st.DrawFn) -> World:
    reports = tuple(draw(st.lists(st.sampled_from(sorted(MARKINGS)), min_size=1, max_size=4)))
    drawn = tuple(draw(st.lists(grants, max_size=4)))
    count = len(_arrivals(World(reports, drawn, ())))
    order = tuple(draw(st.permutations(range(count))))
    return World(reports, drawn, order)


def _report(index: int, marking: str) -> dict:
    return {
        "type": "report",
        "spec_version": "2.1",
        "id": derived_id("report", f"property {index}"),
        "created": BASE.format(index),
        "modified": BASE.format(index),
        "created_by_ref": CAN,
        "name": f"Report {index}",
        "published": BASE.format(index),
        "report_types": ["threat-report"],
        "object_refs": [CAN],
        "object_marking_refs": [MARKINGS[marking]],
    }


def _consent(index: int, grant: Grant, reports: tuple[str, ...]) -> dict:
    ids = [derived_id("report", f"property {i}") for i in grant.objects if i < len(reports)]
    scope = {"object_refs": ids} if ids else {"scope_marking_refs": [MARKINGS[grant.marking]]}
    body = {
        "type": CONSENT_TYPE,
        "spec_version": "2.1",
        "id": derived_id(CONSENT_TYPE, f"property {index}"),
        "created": BASE.format(10 + 2 * index),
        "modified": BASE.format(10 + 2 * index),
        "created_by_ref": CAN,
        "recipient": grant.recipient,
        "onward": list(grant.onward),
        **scope,
    }
    if grant.until is not None:
        body["valid_until"] = f"{date.today() + timedelta(days=grant.until)}T23:59:59.999Z"
    return body


def _signed(obj: dict, key: Ed25519PrivateKey = CAN_KEY) -> dict:
    return sign(obj, Signer(CAN, key))


def _arrivals(world: World) -> list[dict]:
    """What Canada's node sends (and what a forger slips in), in no particular order."""
    sent = [_signed(d) for d in (REL_FVEY, REL_NATO, ORCON_FVEY)]
    sent += [_signed(_report(i, m)) for i, m in enumerate(world.reports)]
    for index, grant in enumerate(world.grants):
        body = _consent(index, grant, world.reports)
        if grant.forged == "key":
            sent.append(_signed(body, OTHER_KEY))
        elif grant.forged == "edited":
            sent.append({**_signed(body), "onward": ["GBR", "FRA", "DEU"]})
        else:
            sent.append(_signed(body))
        later = {**body, "modified": BASE.format(11 + 2 * index), "revoked": True}
        if grant.revoked:
            sent.append(_signed(later))
        if grant.forged_revocation:
            sent.append(_signed(later, OTHER_KEY))
    return sent


def _members(name: str) -> set[str]:
    return COMMUNITIES.get(name, {name})


def reference(world: World, partner: str) -> set[str]:
    """The reports the USA's node may serve ``partner`` (docs/consent.md, docs/policy.md)."""
    allowed = set()
    for index, marking in enumerate(world.reports):
        report_id = derived_id("report", f"property {index}")
        consented = any(
            grant.forged is None
            and not grant.revoked
            and grant.recipient == "USA"
            and any(partner in _members(name) for name in grant.onward)
            and (grant.until is None or grant.until >= 0)
            and (
                report_id in _consent(0, grant, world.reports).get("object_refs", [])
                or (
                    not _consent(0, grant, world.reports).get("object_refs")
                    and grant.marking == marking
                )
            )
            for grant in world.grants
        )
        # Without a consent, the third-party rule: only what the marking itself allows.
        by_marking = {
            "clear": True,
            "rel-fvey": partner in COMMUNITIES["FVEY"],
            "rel-nato": partner in COMMUNITIES["NATO"],
            "amber": False,
            "orcon-fvey": False,
        }[marking]
        if consented or by_marking:
            allowed.add(report_id)
    return allowed


def served(node: Node, partner: str) -> set[str]:
    with node.engine.connect() as connection:
        found = page(connection, partner, PageQuery(types=("report",), limit=1000))
    assert not found.more
    return {v.object["id"] for v in found.versions}


@settings(
    max_examples=examples(60, "LIAISON_CONSENT_EXAMPLES"),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds())
def test_what_the_usa_serves_follows_canadas_consents(
    template: Path, tmp_path_factory: pytest.TempPathFactory, world: World
) -> None:
    root = tmp_path_factory.mktemp("example") / "usa"
    shutil.copytree(template, root)  # the home, and the store with its write-ahead log
    node = open_node(_settings(root))
    try:
        arrivals = _arrivals(world)
        for position in world.order:
            import_objects(node.engine, [arrivals[position]], received_from="CAN")
        for partner in THIRD:
            assert served(node, partner) == reference(world, partner), partner
        # The consents are part of the classes: a rebuild from the objects keeps them.
        with write_transaction(node.engine) as connection:
            rebuild(connection)
        for partner in THIRD:
            assert served(node, partner) == reference(world, partner), partner
    finally:
        node.engine.dispose()
