"""An independent reference for the release policy, written rule by rule from docs/policy.md.

It reads raw STIX objects and raw marking-definitions and shares no code with
``liaison.policy``: the point is that two separate readings of the spec must agree. It uses
only data from the rest of the product (the TLP ids, the extension id, the classification
scales through ``parse_level``/``compare``) and the ``stix2`` library's list of required
properties.

Readings of the spec where it is silent, made here on purpose (and documented in the report):

* An object without ``created_by_ref`` is the node's own (the node's identity object has none).
* A marking-definition with Liaison's handling extension that states no classification, no
  REL TO and no caveat says nothing, like a statement (it is not a handling marking).
* For a granular marking, "the object itself" (AMBER+STRICT / RED) and the third-party rule
  read the object's markings together with the granular marking.
* A reference to an object the node does not hold is a reference the partner may not see.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from stix2.registry import class_for_type

from liaison.markings.classification import RUNGS, compare, parse_level
from liaison.markings.handling import LIAISON_EXTENSION
from liaison.markings.tlp import (
    TLP_AMBER,
    TLP_AMBER_STRICT,
    TLP_CLEAR,
    TLP_GREEN,
    TLP_RED,
)

RELEASE = "release"
CUTS = "release-with-cuts"
WITHHOLD = "withhold"

TLP_BY_ID = {
    TLP_CLEAR: "clear",
    TLP_GREEN: "green",
    TLP_AMBER: "amber",
    TLP_AMBER_STRICT: "amber+strict",
    TLP_RED: "red",
}
# Least restrictive first.
TLP_SEVERITY = {"clear": 0, "green": 1, "amber": 2, "amber+strict": 3, "red": 4}
COMMON_REQUIRED = {"type", "spec_version", "id", "created", "modified"}
KEPT_REFERENCES = {"created_by_ref", "object_marking_refs"}
EYES_ONLY = re.compile(r"^([A-Z]{3}) EYES ONLY$")
LADDER = dict(RUNGS)  # rank -> rung name ("confidential"), the data of classification.toml


@dataclass(frozen=True)
class Rule:
    """What one understood marking says. All None/empty: it says nothing."""

    tlp: str | None = None
    classification: str | None = None
    rel_to: frozenset[str] | None = None
    caveats: frozenset[str] = frozenset()

    def says_nothing(self) -> bool:
        return (
            self.tlp is None
            and self.classification is None
            and self.rel_to is None
            and not self.caveats
        )


UNKNOWN = object()  # a marking the policy does not understand


def read_rule(marking_id: str, definitions: Mapping[str, dict[str, Any]]) -> Any:
    """A Rule, or UNKNOWN."""
    if marking_id in TLP_BY_ID:
        return Rule(tlp=TLP_BY_ID[marking_id])
    definition = definitions.get(marking_id)
    if definition is None:
        return UNKNOWN
    extensions = definition.get("extensions") or {}
    if LIAISON_EXTENSION in extensions:
        body = extensions[LIAISON_EXTENSION]
        rel_to = body.get("releasable_to")
        return Rule(
            classification=body.get("classification"),
            rel_to=frozenset(rel_to) if rel_to is not None else None,
            caveats=frozenset(body.get("caveats") or []),
        )
    if definition.get("definition_type") == "statement" and not extensions:
        return Rule()
    return UNKNOWN


def required_properties(stix_type: str) -> set[str]:
    cls = class_for_type(stix_type, "2.1")
    if cls is None:
        return set(COMMON_REQUIRED)
    return COMMON_REQUIRED | {name for name, prop in cls._properties.items() if prop.required}


def is_member(alliance: Any, country: str, community: str, at: date) -> bool:
    for group in alliance.communities:
        if group.name != community:
            continue
        for member in group.members:
            if member.country != country:
                continue
            started = member.joined <= at
            not_ended = member.left is None or at < member.left
            if started and not_ended:
                return True
    return False


def communities_of(alliance: Any, country: str, at: date) -> set[str]:
    return {c.name for c in alliance.communities if is_member(alliance, country, c.name, at)}


def names(rel_to: Iterable[str], country: str, alliance: Any, at: date) -> bool:
    """A REL TO names the country, or a community the country is a member of at ``at``."""
    return any(entry == country or is_member(alliance, country, entry, at) for entry in rel_to)


def within(level: Any, limit: Any, partner: Any, own_scale: str) -> bool:
    """``level`` is within ``limit``. When the limit's scale has no equivalent of the level,
    the partner's own rule (``protects_foreign``: ladder rung -> level of its own scale, the
    scale of its clearance) may name the level it protects it as, which is then compared with
    a limit on that scale (docs/markings.md)."""
    outcome = compare(level, limit)
    if outcome != "no-equivalent":
        return outcome == "within"
    if level.rank is None or limit.scale != own_scale:
        return False
    rules = {name.lower(): named for name, named in (partner.protects_foreign or {}).items()}
    named = rules.get(LADDER[level.rank])
    if named is None:
        return False
    return parse_level(f"{own_scale}:{named}").order <= limit.order


def rules_pass(
    rules_list: list[Rule],
    partner: Any,
    alliance: Any,
    node_rules: Any,
    node_country: str,
    originator_is_node: bool,
    originator_country: str | None,
    at: date,
) -> bool:
    """Whether every rule of docs/policy.md passes for these markings together."""
    country = partner.country
    tlps = [r.tlp for r in rules_list if r.tlp is not None]
    rel_tos = [r.rel_to for r in rules_list if r.rel_to is not None]
    caveats: set[str] = set()
    for r in rules_list:
        caveats |= r.caveats
    tlp = max(tlps, key=lambda level: TLP_SEVERITY[level]) if tlps else None

    # no-releasability
    if tlp is None and not rel_tos:
        return False

    # noforn, eyes-only, orcon, unknown-caveat
    for caveat in caveats:
        if caveat == "NOFORN":
            return False
        if caveat == "ORCON":
            continue  # the node's own: it releases; another's: the third-party rule below
        match = EYES_ONLY.match(caveat)
        if match is None:
            return False
        if match.group(1) != country:  # CAN EYES ONLY: no partner is CAN
            return False

    # tlp
    if tlp == "green":
        shared = communities_of(alliance, country, at) & communities_of(alliance, node_country, at)
        if not shared:
            return False
    elif tlp == "amber":
        if not any(
            entry == country or is_member(alliance, country, entry, at)
            for entry in node_rules.amber_scope
        ):
            return False
    elif tlp in ("amber+strict", "red") and not any(country in r for r in rel_tos):
        return False

    # rel-to
    for rel_to in rel_tos:
        if not names(rel_to, country, alliance, at):
            return False

    # unknown-classification, no-clearance, clearance, trust-ceiling
    for r in rules_list:
        if r.classification is None:
            continue
        try:
            level = parse_level(r.classification)
        except ValueError:
            return False
        if partner.clearance is None:
            return False
        clearance = parse_level(f"{partner.clearance.scale}:{partner.clearance.level}")
        if not within(level, clearance, partner, clearance.scale):
            return False
        ceiling = node_rules.trust_ceilings.get(partner.trust)
        if ceiling is None:
            continue
        if not within(level, parse_level(ceiling), partner, clearance.scale):
            return False

    # third-party (no consent is ever recorded yet)
    if not originator_is_node:
        if originator_country == country:
            return True  # it goes back to its originator
        if "ORCON" in caveats:
            return False
        allowed = False
        if tlp == "clear":
            allowed = True
        if tlp == "green" and originator_country is not None:
            shared = communities_of(alliance, country, at) & communities_of(
                alliance, originator_country, at
            )
            if shared:
                allowed = True
        if rel_tos and all(names(r, country, alliance, at) for r in rel_tos):
            allowed = True
        if not allowed:
            return False
    return True


def reference_decision(
    obj: dict[str, Any],
    definitions: Mapping[str, dict[str, Any]],
    partner: str,
    alliance: Any,
    rules: Any,
    node_country: str,
    node_identity: str,
    partner_identities: Mapping[str, str],
    at: date,
    owner: str | None = None,
) -> tuple[str, frozenset[str]]:
    """(decision, cut selectors) for one object version and one partner at ``at``, before
    the copy's cut of references (see ``effective_visibility``).

    ``alliance`` has ``.partners`` (Partner records) and ``.communities`` (with members,
    joined, left); ``rules`` has ``unmarked``, ``trust_ceilings`` and ``amber_scope``;
    ``partner_identities`` maps a partner's identity id to its country code; ``owner`` is
    the agency that owns the version (None: the node)."""
    record = next((p for p in alliance.partners if p.country == partner), None)
    # partner-unknown, not-a-partner, partner-suspended
    if record is None or record.status != "active":
        return WITHHOLD, frozenset()
    # definition
    if obj.get("type") in ("marking-definition", "extension-definition"):
        return RELEASE, frozenset()

    creator = obj.get("created_by_ref")
    if creator is None and owner not in (None, node_country):
        # A partner's object that names no originator is the partner's.
        originator_is_node, originator_country = False, owner
    else:
        originator_is_node = creator is None or creator == node_identity
        originator_country = (
            node_country if originator_is_node else partner_identities.get(creator)
        )
    # owner: an agency always sees its own objects
    if not originator_is_node and originator_country == partner:
        return RELEASE, frozenset()

    # unknown-marking (object level)
    object_rules = []
    for marking_id in obj.get("object_marking_refs") or []:
        rule = read_rule(marking_id, definitions)
        if rule is UNKNOWN:
            return WITHHOLD, frozenset()
        object_rules.append(rule)

    # unmarked, unmarked-default
    handling = [r for r in object_rules if not r.says_nothing()]
    if not handling:
        if not originator_is_node or rules.unmarked is None:
            return WITHHOLD, frozenset()
        handling = [Rule(tlp=rules.unmarked)]

    def passes(extra: list[Rule]) -> bool:
        return rules_pass(
            handling + extra,
            record,
            alliance,
            rules,
            node_country,
            originator_is_node,
            originator_country,
            at,
        )

    if not passes([]):
        return WITHHOLD, frozenset()

    # field-cut
    cuts: set[str] = set()
    for entry in obj.get("granular_markings") or []:
        marking_id = entry.get("marking_ref")
        if marking_id is None:
            continue  # a language marking restricts nothing
        rule = read_rule(marking_id, definitions)
        if rule is UNKNOWN or (not rule.says_nothing() and not passes([rule])):
            cuts.update(entry.get("selectors", []))

    # required-field-cut
    if cuts & required_properties(obj["type"]):
        return WITHHOLD, frozenset()
    if cuts:
        return CUTS, frozenset(cuts)
    return RELEASE, frozenset()


def references_of(obj: dict[str, Any]) -> dict[str, list[str]]:
    """The top-level reference properties the copy cuts, each with the ids it names."""
    found: dict[str, list[str]] = {}
    for key, value in obj.items():
        if key in KEPT_REFERENCES:
            continue
        if key.endswith("_refs") and isinstance(value, list):
            found[key] = [v for v in value if isinstance(v, str)]
        elif key.endswith("_ref") and isinstance(value, str):
            found[key] = [value]
    return found


def effective_visibility(
    objects: Mapping[str, dict[str, Any]], decisions: Mapping[str, str]
) -> set[str]:
    """The ids a partner may finally see, with ``references-cut`` applied: an object whose
    required reference would be left empty is withheld, and references to it are then cut
    in turn (until nothing changes). ``decisions`` holds ``reference_decision`` for every
    stored object; an id the node does not hold is never visible."""
    visible = {oid for oid, decision in decisions.items() if decision != WITHHOLD}
    changed = True
    while changed:
        changed = False
        for oid in sorted(visible):
            obj = objects[oid]
            required = required_properties(obj["type"])
            for key, targets in references_of(obj).items():
                if key in required and not any(t in visible for t in targets):
                    visible.discard(oid)
                    changed = True
                    break
    return visible
