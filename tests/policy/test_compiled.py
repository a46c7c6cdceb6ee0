"""The compiled release policy (classes, grants, pages, copies) against an independent
reference written from docs/policy.md (tests/policy/reference.py), on SQLite and PostgreSQL.

Each example builds a random alliance, node rules, marking-definitions and notes, stores them
through the product's own write path, then compares what every partner is granted and what
its copies contain with the reference: 200 examples under the "ci" Hypothesis profile, 20
under "dev" (tests/conftest.py); LIAISON_POLICY_EXAMPLES sets another number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from liaison.alliance import EARLIEST, Community, Membership, Partner
from liaison.markings.handling import marking_definition
from liaison.markings.tlp import (
    TLP_AMBER,
    TLP_AMBER_STRICT,
    TLP_CLEAR,
    TLP_GREEN,
    TLP_LEVELS,
    TLP_RED,
)
from liaison.node import Node
from liaison.policy.classes import class_key
from liaison.policy.copies import ReleasedCopy, released_copies
from liaison.policy.grants import redecide, redecide_markings, register_classes, set_rules
from liaison.policy.rules import NodeRules
from liaison.stix.ids import derived_id
from liaison.stix.validate import validation_errors
from liaison.store.alliance import save_alliance
from liaison.store.engine import write_transaction
from liaison.store.objects import add_objects
from liaison.store.pages import GrantedVersion, PageQuery, granted_versions
from liaison.store.pages import page as taxii_page
from liaison.store.schema import (
    communities,
    grants,
    memberships,
    objects,
    partners,
    policy_state,
    release_classes,
)
from tests.conftest import examples
from tests.policy.reference import (
    WITHHOLD,
    effective_visibility,
    reference_decision,
    references_of,
)

EXAMPLES = examples(200, "LIAISON_POLICY_EXAMPLES")
TODAY = date.today()

NODE_COUNTRY = "CAN"
NODE_ID = derived_id("identity", f"agency:{NODE_COUNTRY}")
UNKNOWN_IDENTITY = "identity--99999999-9999-4999-8999-999999999999"
# A marking whose definition the node does not hold.
UNDEFINED_MARKING = "marking-definition--0b5c3a7e-1d2f-4c3b-8a9d-0e1f2a3b4c5d"
# An object the node does not hold.
MISSING_NOTE = "note--00000000-0000-4000-8000-000000000999"
STAMP = "2026-01-01T00:00:00.000Z"

# code, trust, clearance as in the demo alliance
POOL = (
    ("USA", "high", "USA:TS"),
    ("GBR", "high", "GBR:TOP SECRET"),
    ("FRA", "medium", "NATO:NS"),
    ("ALB", "medium", "NATO:NC"),
    ("TUR", "low", "NATO:NS"),
    ("POL", "medium", "NATO:NS"),
)
CODES = tuple(code for code, _, _ in POOL)
IDENTITIES = {code: derived_id("identity", f"agency:{code}") for code in CODES}
# Includes levels with no equivalent on other scales.
CLEARANCES = (
    "USA:TS",
    "USA:S",
    "GBR:TOP SECRET",
    "GBR:OFFICIAL-SENSITIVE",
    "NATO:NS",
    "NATO:NC",
    "NATO:NU",
    "CAN:SECRET",
    "CAN:PROTECTED B",
    "AUS:PROTECTED",
)
# protects_foreign rules a partner may hold, by the scale of its clearance: a rank the scale
# lacks -> the level of its own that protects it (docs/markings.md). Drawn for about half the
# partners whose scale has a rule here; the others withhold what has no equivalent.
PROTECTIONS = {
    "GBR": (
        {"CONFIDENTIAL": "SECRET"},
        {"confidential": "TOP SECRET"},
        {"confidential": "OFFICIAL-SENSITIVE"},
        {"RESTRICTED": "OFFICIAL-SENSITIVE", "CONFIDENTIAL": "GBR:SECRET"},
    ),
    "AUS": ({"CONFIDENTIAL": "SECRET"}, {"restricted": "OFFICIAL: SENSITIVE"}),
    "USA": ({"RESTRICTED": "C"},),
    "CAN": ({"RESTRICTED": "PROTECTED B"},),
}
COMMUNITIES = ("FVEY", "NATO", "eFP Latvia")
CLASSIFICATIONS = (
    "CAN:SECRET",
    "CAN:CONFIDENTIAL",
    "CAN:PROTECTED B",
    "NATO:NS",
    "NATO:NC",
    "NATO:NR",
    "USA:TS",
    "GBR:SECRET",
    "XYZ:FOO",
)
REL_TO = ("USA", "GBR", "FRA", "ALB", "FVEY", "NATO", "eFP Latvia")
# Weighted by repetition: most markings must let something through, or nothing is tested
# beyond "withhold".
CAVEATS = (
    (),
    (),
    (),
    (),
    ("ORCON",),
    ("USA EYES ONLY",),
    ("ORCON", "USA EYES ONLY"),
    ("NOFORN",),
    ("CAN EYES ONLY",),
    ("PROPIN",),
)
FIELDS = ("abstract", "content", "authors")
JOINED = (None, None, None, None, None, -30, -1, 0, 1, 30)  # None: EARLIEST
LEFT = (None, None, None, None, None, None, -30, -1, 0, 1, 30)  # None: still a member


@dataclass(frozen=True)
class Alliance:
    partners: tuple[Partner, ...]
    communities: tuple[Community, ...]


@dataclass(frozen=True)
class World:
    alliance: Alliance
    rules: NodeRules
    definitions: tuple[dict[str, Any], ...]
    notes: tuple[dict[str, Any], ...]
    alliance_first: bool  # store the alliance before the objects, or change it after
    definitions_later: bool  # the notes arrive before the definitions of their markings


def day(offset: int | None, default: date | None) -> date | None:
    return default if offset is None else TODAY + timedelta(days=offset)


@st.composite
def partner_records(draw: st.DrawFn, code: str, trust: str, clearance: str) -> Partner:
    status = draw(st.sampled_from(["active"] * 12 + ["suspended", "non-partner"]))
    clearance_text: str | None = draw(
        st.sampled_from([clearance, clearance, clearance, *CLEARANCES])
    )
    if status == "non-partner" and draw(st.booleans()):
        clearance_text = None
    rules = PROTECTIONS.get(clearance_text.partition(":")[0], ()) if clearance_text else ()
    with_rule = rules and draw(st.sampled_from([True, True, False]))
    protects_foreign = draw(st.sampled_from(rules)) if with_rule else {}
    return Partner(
        country=code,
        name=code,
        clearance=clearance_text,
        trust=draw(st.sampled_from([trust, trust, "high", "medium", "low"])),
        status=status,
        protects_foreign=protects_foreign,
    )


@st.composite
def memberships_of(draw: st.DrawFn, country: str) -> list[Membership]:
    """One membership, sometimes two (left and joined again)."""
    found: list[Membership] = []
    for _ in range(draw(st.sampled_from([1, 1, 1, 2]))):
        joined = day(draw(st.sampled_from(JOINED)), EARLIEST)
        left = day(draw(st.sampled_from(LEFT)), None)
        if left is not None and left < joined:
            left = None
        if all(m.joined != joined for m in found):
            found.append(Membership(country=country, joined=joined, left=left))
    return found


@st.composite
def community_records(draw: st.DrawFn, name: str) -> Community:
    members: list[Membership] = []
    for country in (NODE_COUNTRY, *CODES):
        if draw(st.sampled_from([True, True, False])):
            members.extend(draw(memberships_of(country)))
    return Community(name=name, members=tuple(members))


@st.composite
def node_rules(draw: st.DrawFn) -> NodeRules:
    # None: the default ceilings. A ceiling on the GBR scale meets GBR's protects_foreign rule.
    ceilings = draw(
        st.sampled_from([None, {}, {"low": "NATO:NC", "medium": "NATO:NS"}, {"high": "GBR:SECRET"}])
    )
    extra = {} if ceilings is None else {"trust_ceilings": ceilings}
    return NodeRules(
        unmarked=draw(st.sampled_from([None, "clear", "green"])),
        amber_scope=frozenset(draw(st.lists(st.sampled_from((*CODES, *COMMUNITIES))))),
        **extra,
    )


@st.composite
def liaison_markings(draw: st.DrawFn) -> dict[str, Any]:
    caveats = draw(st.sampled_from(CAVEATS))
    return marking_definition(
        created_by=NODE_ID,
        classification=draw(st.sampled_from([None, None, None, *CLASSIFICATIONS])),
        releasable_to=draw(
            st.sampled_from([None, "some", "some", "some"]).flatmap(
                lambda kind: (
                    st.lists(st.sampled_from(REL_TO), unique=True, min_size=1, max_size=3)
                    if kind
                    else st.none()
                )
            )
        ),
        caveats=list(caveats) or None,
    )


STATEMENT = {
    "type": "marking-definition",
    "spec_version": "2.1",
    "id": "marking-definition--5a8e4d4c-3f1e-4c55-9a8b-6c2d1e0f9a7b",
    "created_by_ref": NODE_ID,
    "created": STAMP,
    "definition_type": "statement",
    "definition": {"statement": "Copyright Government of Canada"},
}


def note_id(n: int) -> str:
    return f"note--00000000-0000-4000-8000-{n:012d}"


@st.composite
def notes(draw: st.DrawFn, n: int, count: int, pool: list[str]) -> dict[str, Any]:
    note: dict[str, Any] = {
        "type": "note",
        "spec_version": "2.1",
        "id": note_id(n),
        "created": STAMP,
        "modified": STAMP,
        "content": f"note {n}",
    }
    creator = draw(
        st.sampled_from(
            [
                NODE_ID,
                NODE_ID,
                NODE_ID,
                IDENTITIES["USA"],
                IDENTITIES["FRA"],
                UNKNOWN_IDENTITY,
                None,
            ]
        )
    )
    if creator is not None:
        note["created_by_ref"] = creator
    if draw(st.booleans()):
        note["abstract"] = f"abstract {n}"
    if draw(st.booleans()):
        note["authors"] = [f"author {n}"]
    others = [note_id(i) for i in range(count) if i != n]
    targets = [NODE_ID, *others, *others, MISSING_NOTE]
    note["object_refs"] = draw(
        st.lists(st.sampled_from(targets), min_size=1, max_size=3, unique=True)
    )
    size = draw(st.sampled_from([1, 1, 1, 2, 0]))
    marking_refs = draw(st.lists(st.sampled_from(pool), min_size=size, max_size=size, unique=True))
    if marking_refs:
        note["object_marking_refs"] = marking_refs
    present = [f for f in FIELDS if f in note and f != "content"] or ["content"]
    granular = draw(
        st.lists(
            st.tuples(
                st.sampled_from(pool),
                # content is required: cutting it withholds the whole note
                st.lists(st.sampled_from([*present, *present, "content"]), min_size=1, unique=True),
            ),
            max_size=2,
        )
    )
    if granular:
        note["granular_markings"] = [
            {"marking_ref": ref, "selectors": selectors} for ref, selectors in granular
        ]
    return note


@st.composite
def worlds(draw: st.DrawFn) -> World:
    alliance = Alliance(
        partners=tuple(draw(partner_records(*entry)) for entry in POOL),
        communities=tuple(draw(community_records(name)) for name in COMMUNITIES),
    )
    liaison = draw(st.lists(liaison_markings(), min_size=3, max_size=6))
    definitions = tuple({d["id"]: d for d in [*liaison, STATEMENT]}.values())
    liaison_ids = [d["id"] for d in liaison]
    # Repetition weights the draw towards markings that release to someone.
    pool = [
        TLP_CLEAR,
        TLP_CLEAR,
        TLP_CLEAR,
        TLP_GREEN,
        TLP_GREEN,
        TLP_GREEN,
        TLP_AMBER,
        TLP_AMBER_STRICT,
        TLP_RED,
        *liaison_ids,
        *liaison_ids,
        STATEMENT["id"],
        UNDEFINED_MARKING,
    ]
    count = draw(st.integers(min_value=1, max_value=12))
    return World(
        alliance=alliance,
        rules=draw(node_rules()),
        definitions=definitions,
        notes=tuple(draw(notes(n, count, pool)) for n in range(count)),
        alliance_first=draw(st.booleans()),
        definitions_later=draw(st.sampled_from([False, False, True])),
    )


def wipe(connection: sa.Connection, node_identity: str) -> None:
    """Back to a freshly initialised node (its identity only), in this transaction."""
    connection.execute(grants.delete())
    connection.execute(release_classes.delete())
    connection.execute(objects.delete().where(objects.c.id != node_identity))
    connection.execute(memberships.delete())
    connection.execute(communities.delete())
    connection.execute(partners.delete())
    connection.execute(policy_state.update().values(rules=NodeRules().model_dump_json()))
    body = connection.execute(
        sa.select(objects.c.body).where(objects.c.id == node_identity)
    ).scalar_one()
    key = class_key(json.loads(body), "CAN")
    register_classes(connection, {key.id: key})


def store(connection: sa.Connection, world: World) -> None:
    """The product's own write path: classes registered with each batch (and, as the importer
    does, re-decided when the definitions of their markings arrive)."""

    def alliance() -> None:
        save_alliance(connection, world.alliance.partners, world.alliance.communities)
        set_rules(connection, world.rules)
        redecide(connection, at=TODAY)

    if world.alliance_first:
        alliance()
    if world.definitions_later:
        batches = [list(world.notes), list(world.definitions)]
    else:
        batches = [[*world.definitions, *world.notes]]
    for batch in batches:
        added = add_objects(connection, batch)
        assert added.outcomes == ["added"] * len(batch)
        register_classes(connection, added.classes)
        redecide_markings(connection, [o["id"] for o in batch if o["type"] == "marking-definition"])
    if not world.alliance_first:
        alliance()


@lru_cache(maxsize=4096)
def _errors(text: str) -> tuple[str, ...]:
    return tuple(validation_errors(json.loads(text)))


def copy_errors(obj: dict[str, Any]) -> tuple[str, ...]:
    return _errors(json.dumps(obj, sort_keys=True))


def _covered(selector: str, cuts: frozenset[str]) -> bool:
    return any(selector == c or selector.startswith((c + ".", c + ".[")) for c in cuts)


def describe(obj: dict[str, Any], definitions: dict[str, dict[str, Any]]) -> str:
    def marking(ref: str) -> str:
        if ref in TLP_LEVELS:
            return f"TLP:{TLP_LEVELS[ref].upper()}"
        definition = definitions.get(ref)
        return definition.get("name", ref) if definition else f"undefined {ref}"

    parts = [
        f"by={obj.get('created_by_ref')}",
        f"markings={[marking(m) for m in obj.get('object_marking_refs', [])]}",
        "granular="
        + str(
            [(marking(g["marking_ref"]), g["selectors"]) for g in obj.get("granular_markings", [])]
        ),
        f"refs={obj.get('object_refs')}",
    ]
    return " ".join(parts)


@dataclass
class Outcome:
    """What the product did for one partner, and what the reference says of every object."""

    partner: str
    page: list[GrantedVersion]
    copies: list[ReleasedCopy]
    expected: dict[str, tuple[str, frozenset[str]]]


def run(node: Node, world: World) -> tuple[dict[str, dict[str, Any]], list[Outcome]]:
    """Store ``world`` on the node; every stored object, and each partner's outcome."""
    assert node.identity_id == NODE_ID and node.country == NODE_COUNTRY
    with write_transaction(node.engine) as connection:
        wipe(connection, node.identity_id)
        store(connection, world)
    with node.engine.connect() as connection:
        identity = json.loads(
            connection.execute(
                sa.select(objects.c.body).where(objects.c.id == node.identity_id)
            ).scalar_one()
        )
    stored = {o["id"]: o for o in (identity, *world.definitions, *world.notes)}
    definitions = {d["id"]: d for d in world.definitions}
    identities = {p.identity: p.country for p in world.alliance.partners}
    outcomes = []
    for partner in CODES:
        expected = {
            oid: reference_decision(
                obj,
                definitions,
                partner,
                world.alliance,
                world.rules,
                NODE_COUNTRY,
                NODE_ID,
                identities,
                TODAY,
            )
            for oid, obj in stored.items()
        }
        with node.engine.connect() as connection:
            page = granted_versions(connection, partner)
            # The TAXII read path pages per granted class; in pages of 3 it must give exactly
            # the plain join's answer, in the same order.
            paged: list[GrantedVersion] = []
            after = None
            while True:
                result = taxii_page(connection, partner, PageQuery(added_after=after, limit=3))
                paged += result.versions
                if not result.more:
                    break
                after = result.versions[-1].date_added
            assert [(v.object["id"], v.date_added, v.cuts) for v in paged] == [
                (v.object["id"], v.date_added, v.cuts) for v in page
            ]
            copies = released_copies(connection, partner, paged)
        outcomes.append(Outcome(partner, page, copies, expected))
    return stored, outcomes


PROPERTIES = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def _uk_rule() -> World:
    """GBR protects foreign CONFIDENTIAL as SECRET and RESTRICTED as OFFICIAL-SENSITIVE, with a
    ceiling on its own scale; POL is cleared on the GBR scale below SECRET with the same rules:
    the node's CAN CONFIDENTIAL and NATO RESTRICTED notes REL TO NATO, and one for FVEY."""
    uk = {"CONFIDENTIAL": "SECRET", "RESTRICTED": "OFFICIAL-SENSITIVE"}
    clearances = {"GBR": "GBR:TOP SECRET", "POL": "GBR:OFFICIAL-SENSITIVE"}
    marks = [
        marking_definition(NODE_ID, "CAN:CONFIDENTIAL", ["NATO"]),
        marking_definition(NODE_ID, "NATO:NR", ["NATO"]),
        marking_definition(NODE_ID, "CAN:CONFIDENTIAL", ["FVEY"]),
    ]
    notes = tuple(
        {
            "type": "note",
            "spec_version": "2.1",
            "id": note_id(n),
            "created": STAMP,
            "modified": STAMP,
            "created_by_ref": NODE_ID,
            "content": f"note {n}",
            "object_refs": [NODE_ID],
            "object_marking_refs": [mark["id"]],
        }
        for n, mark in enumerate(marks)
    )
    return World(
        alliance=Alliance(
            partners=tuple(
                Partner(
                    country=code,
                    name=code,
                    clearance=clearances.get(code, clearance),
                    trust=trust,
                    protects_foreign=uk if code in clearances else {},
                )
                for code, trust, clearance in POOL
            ),
            communities=(
                Community(name="NATO", members=tuple(Membership(country=c) for c in CODES)),
                Community(name="FVEY", members=(Membership(country="GBR"),)),
            ),
        ),
        rules=NodeRules(trust_ceilings={"high": "GBR:SECRET"}),
        definitions=tuple(marks),
        notes=notes,
        alliance_first=True,
        definitions_later=False,
    )


@PROPERTIES
@given(world=worlds())
@example(world=_uk_rule())
def test_grants_and_copies_agree_with_the_reference(node: Node, world: World) -> None:
    stored, outcomes = run(node, world)
    definitions = {d["id"]: d for d in world.definitions}
    grant_diffs: list[str] = []
    copy_problems: list[str] = []
    for outcome in outcomes:
        partner, expected = outcome.partner, outcome.expected

        # (a) the compiled grants are the reference's decisions and cuts
        compiled: dict[str, tuple[str, frozenset[str]]] = {}
        for version in outcome.page:
            oid = version.object["id"]
            if oid not in stored or oid in compiled or len(set(version.cuts)) != len(version.cuts):
                grant_diffs.append(f"{partner} {oid}: unexpected page entry {version}")
            compiled[oid] = (version.decision, frozenset(version.cuts))
        for oid, want in expected.items():
            got = compiled.get(oid, (WITHHOLD, frozenset()))
            if got != want:
                grant_diffs.append(
                    f"{partner} {oid}: compiled {got[0]} {sorted(got[1])}, "
                    f"reference {want[0]} {sorted(want[1])}; " + describe(stored[oid], definitions)
                )

        # (b) no copy keeps a cut field or a reference to a withheld object; copies validate
        for released in outcome.copies:
            copy = released.object
            oid = copy["id"]
            cuts = expected.get(oid, (WITHHOLD, frozenset()))[1]
            for selector in cuts:
                if selector in copy:
                    copy_problems.append(f"{partner} {oid}: cut field {selector} is in the copy")
            for entry in copy.get("granular_markings", []):
                named = [s for s in entry.get("selectors", []) if _covered(s, cuts)]
                if named:
                    copy_problems.append(f"{partner} {oid}: granular marking names cut {named}")
                ref = entry.get("marking_ref")
                known = ref in TLP_LEVELS or expected.get(ref, (WITHHOLD,))[0] != WITHHOLD
                # Its originator gets an object back as it is (the owner rule).
                own = stored[oid].get("created_by_ref") == IDENTITIES.get(partner)
                if ref is not None and not known and not own:
                    copy_problems.append(f"{partner} {oid}: granular marking_ref {ref} withheld")
            for key, targets in references_of(copy).items():
                hidden = [t for t in targets if expected.get(t, (WITHHOLD,))[0] == WITHHOLD]
                if hidden:
                    copy_problems.append(f"{partner} {oid}: {key} keeps withheld {hidden}")
            errors = copy_errors(copy)
            if errors:
                copy_problems.append(f"{partner} {oid}: invalid copy {list(errors)}")

    assert not grant_diffs, "grants differ from the reference:\n" + "\n".join(grant_diffs)
    assert not copy_problems, "released copies:\n" + "\n".join(copy_problems)


def _chain() -> World:
    """The smallest chain: note 0 refers only to an object the node does not hold (its copy is
    withheld), note 1 refers only to note 0; both TLP:CLEAR, the node's own."""

    def note(n: int, refs: list[str]) -> dict[str, Any]:
        return {
            "type": "note",
            "spec_version": "2.1",
            "id": note_id(n),
            "created": STAMP,
            "modified": STAMP,
            "created_by_ref": NODE_ID,
            "content": f"note {n}",
            "object_refs": refs,
            "object_marking_refs": [TLP_CLEAR],
        }

    return World(
        alliance=Alliance(
            partners=tuple(
                Partner(country=code, name=code, clearance=clearance, trust=trust)
                for code, trust, clearance in POOL
            ),
            communities=(),
        ),
        rules=NodeRules(),
        definitions=(STATEMENT,),
        notes=(note(0, [MISSING_NOTE]), note(1, [note_id(0)])),
        alliance_first=True,
        definitions_later=False,
    )


@PROPERTIES
@given(world=worlds())
@example(world=_chain())
def test_references_cut_withholds_through_chains(node: Node, world: World) -> None:
    """references-cut applied to the end: an object withheld because its required references
    were all cut is an object the partner may not see, so references to it are cut in turn
    (and may withhold the objects that make them)."""
    stored, outcomes = run(node, world)
    problems: list[str] = []
    for outcome in outcomes:
        partner = outcome.partner
        decisions = {oid: d for oid, (d, _) in outcome.expected.items()}
        visible = effective_visibility(stored, decisions)
        made = {released.object["id"] for released in outcome.copies}
        if made != visible:
            problems.append(
                f"{partner}: copies made of {sorted(made - visible)} that the reference "
                f"withholds, none of {sorted(visible - made)} that it releases"
            )
        for released in outcome.copies:
            for key, targets in references_of(released.object).items():
                dangling = [t for t in targets if t not in visible]
                if dangling:
                    problems.append(
                        f"{partner} {released.object['id']}: {key} keeps {dangling}, which "
                        "the partner never receives (its required references were all cut)"
                    )
    assert not problems, "references-cut:\n" + "\n".join(problems)
