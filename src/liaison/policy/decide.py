"""The release decision: for one object version and one partner at a time ``at``,
``release``, ``release-with-cuts`` or ``withhold``, always with reasons.

A pure function of the object's resolved markings, its originator, the consents recorded for
it, the alliance (partners, communities with dates) and the node's rules; it touches no
database. Every rule and its reason code is documented in ``docs/policy.md``. Where anything
is unknown or missing, the decision is to withhold.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from liaison.alliance import Community, Partner, communities_of
from liaison.markings.classification import RUNGS, Level, compare, parse_level
from liaison.markings.handling import Handling, eyes_only_country
from liaison.policy.classes import ConsentTerms
from liaison.policy.rules import NodeRules

Outcome = Literal["release", "release-with-cuts", "withhold"]
TLP_ORDER = ("clear", "green", "amber", "amber+strict", "red")
# Objects that only define markings or extensions: recipients need them to read the rest.
DEFINITION_TYPES = ("marking-definition", "extension-definition")


@dataclass(frozen=True)
class Reason:
    code: str
    text: str


@dataclass(frozen=True)
class Decision:
    decision: Outcome
    reasons: tuple[Reason, ...]
    cuts: tuple[str, ...] = ()

    @property
    def released(self) -> bool:
        return self.decision != "withhold"


@dataclass(frozen=True)
class Marking:
    """One marking of an object: its id, and what it says (None: not understood)."""

    id: str
    handling: Handling | None
    selectors: tuple[str, ...] = ()  # empty for an object-level marking


@dataclass(frozen=True)
class ObjectMarkings:
    """What the release decision reads of one object version."""

    type: str
    object_level: tuple[Marking, ...]
    granular: tuple[Marking, ...] = ()
    # Top-level properties STIX requires for this type: cutting one withholds the object.
    required: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Originator:
    identity: str | None
    country: str | None  # None: not the node and not a known partner
    is_node: bool


@dataclass(frozen=True)
class PolicyContext:
    """The alliance as the node sees it, and the node's rules."""

    node_country: str
    partners: Mapping[str, Partner]
    communities: tuple[Community, ...]
    rules: NodeRules = field(default_factory=NodeRules)

    def communities_of(self, country: str, at: date) -> frozenset[str]:
        return communities_of(self.communities, country, at)


def decide(
    markings: ObjectMarkings,
    originator: Originator,
    consents: tuple[ConsentTerms, ...],
    partner_code: str,
    context: PolicyContext,
    at: date,
) -> Decision:
    """Whether, and how much of, one object version may be released to one partner."""
    partner = context.partners.get(partner_code)
    if partner is None:
        return _withhold("partner-unknown", f"{partner_code} is not a known partner")
    if partner.status == "non-partner":
        return _withhold("not-a-partner", f"{partner_code} is a known non-partner")
    if partner.status == "suspended":
        return _withhold("partner-suspended", f"sharing with {partner_code} is suspended")
    if originator.country == partner_code and not originator.is_node:
        # An agency always sees its own objects, whatever they carry.
        return Decision("release", (Reason("owner", f"{partner_code} is the originator"),))
    if markings.type in DEFINITION_TYPES:
        return Decision(
            "release",
            (Reason("definition", f"a {markings.type} is released so markings can be read"),),
        )

    unknown = [m.id for m in markings.object_level if m.handling is None]
    if unknown:
        return Decision(
            "withhold", tuple(Reason("unknown-marking", f"unknown marking {i}") for i in unknown)
        )
    handlings = [
        m.handling for m in markings.object_level if m.handling and not m.handling.is_empty
    ]
    preface: list[Reason] = []
    if not handlings:
        if not originator.is_node:
            return _withhold(
                "unmarked", "unmarked object of another originator: the third-party rule withholds"
            )
        if context.rules.unmarked is None:
            return _withhold("unmarked", "the object carries no handling marking")
        handlings = [Handling(tlp=context.rules.unmarked)]
        preface.append(
            Reason(
                "unmarked-default",
                f"unmarked: the node's rule treats it as TLP:{context.rules.unmarked.upper()}",
            )
        )

    check = _Check(partner, context, originator, consents, at)
    passed, reasons = check.run(handlings)
    if not passed:
        return Decision("withhold", tuple(reasons))

    cuts: list[str] = []
    cut_reasons: list[Reason] = []
    for marking in markings.granular:
        if marking.handling is None:
            failure = [Reason("unknown-marking", f"unknown marking {marking.id}")]
        elif marking.handling.is_empty:
            continue
        else:
            ok, field_reasons = check.run([*handlings, marking.handling])
            if ok:
                continue
            failure = field_reasons
        for selector in marking.selectors:
            if selector not in cuts:
                cuts.append(selector)
        where = ", ".join(marking.selectors)
        cut_reasons.extend(Reason("field-cut", f"{where}: {r.text}") for r in failure)

    required_cut = sorted(s for s in cuts if s in markings.required)
    if required_cut:
        return Decision(
            "withhold",
            (
                *cut_reasons,
                Reason(
                    "required-field-cut",
                    f"the tearline would remove {', '.join(required_cut)}, which a "
                    f"{markings.type} requires",
                ),
            ),
        )
    if cuts:
        return Decision("release-with-cuts", (*preface, *reasons, *cut_reasons), tuple(cuts))
    return Decision("release", (*preface, *reasons))


def _withhold(code: str, text: str) -> Decision:
    return Decision("withhold", (Reason(code, text),))


class _Check:
    """Every rule of a set of handlings, for one partner; all must pass."""

    def __init__(
        self,
        partner: Partner,
        context: PolicyContext,
        originator: Originator,
        consents: tuple[ConsentTerms, ...],
        at: date,
    ) -> None:
        self.partner = partner
        self.code = partner.country
        self.context = context
        self.originator = originator
        self.at = at
        self.communities = context.communities_of(partner.country, at)
        # The originator's consents naming this partner: one in force, and those expired.
        naming = [c for c in consents if any(self._named(n) for n in c.onward)]
        self.consent = next((c for c in naming if c.until is None or at <= c.until), None)
        self.expired = [c for c in naming if c.until is not None and at > c.until]

    def _named(self, name: str) -> bool:
        return name == self.code or name in self.communities

    def run(self, handlings: list[Handling]) -> tuple[bool, list[Reason]]:
        passes: list[Reason] = []
        failures: list[Reason] = []
        for ok, reason in self._rules(handlings):
            (passes if ok else failures).append(reason)
        return (not failures, failures or passes)

    def _rules(self, handlings: list[Handling]) -> Iterator[tuple[bool, Reason]]:
        tlps = [h.tlp for h in handlings if h.tlp is not None]
        rel_tos = [h.releasable_to for h in handlings if h.releasable_to is not None]
        caveats = sorted(set().union(*(h.caveats for h in handlings)))
        tlp = max(tlps, key=TLP_ORDER.index) if tlps else None

        # The originator's consent stands for its own dissemination limits (TLP, REL TO,
        # ORCON) towards this partner; classification, NOFORN and EYES ONLY still hold.
        consented = not self.originator.is_node and self.consent is not None
        if tlp is None and not rel_tos and not consented:
            yield (
                False,
                Reason(
                    "no-releasability", "no TLP and no REL TO: not releasable to foreign partners"
                ),
            )
        for caveat in caveats:
            yield self._caveat(caveat)
        if tlp is not None and not consented:
            yield self._tlp(tlp, rel_tos)
        for rel_to in rel_tos if not consented else ():
            yield self._rel_to(rel_to)
        for handling in handlings:
            if handling.classification is not None:
                yield from self._classification(handling.classification)
        if not self.originator.is_node:
            yield self._third_party(tlp, rel_tos, caveats)

    def _names(self, rel_to: frozenset[str]) -> list[str]:
        return sorted(n for n in rel_to if n == self.code or n in self.communities)

    def _caveat(self, caveat: str) -> tuple[bool, Reason]:
        if caveat == "NOFORN":
            return False, Reason("noforn", "NOFORN: not releasable to any foreign partner")
        if caveat == "ORCON":
            # For the node's own objects the node is the originator: ORCON binds recipients.
            return True, Reason("orcon", "ORCON: originator-controlled, the originator releases")
        country = eyes_only_country(caveat)
        if country is None:
            return False, Reason("unknown-caveat", f"unknown caveat {caveat}")
        if country != self.code:
            return False, Reason("eyes-only", f"{caveat}: {self.code} may not see it")
        return True, Reason("eyes-only", f"{caveat}: released to {self.code} only")

    def _tlp(self, tlp: str, rel_tos: list[frozenset[str]]) -> tuple[bool, Reason]:
        label = f"TLP:{tlp.upper()}"
        if tlp == "clear":
            return True, Reason("tlp", f"{label}: disclosure is not limited")
        if tlp == "green":
            shared = sorted(
                self.communities & self.context.communities_of(self.context.node_country, self.at)
            )
            if shared:
                return True, Reason(
                    "tlp", f"{label}: {self.code} shares {', '.join(shared)} with the node"
                )
            return False, Reason("tlp", f"{label}: {self.code} shares no community with the node")
        if tlp == "amber":
            scope = self.context.rules.amber_scope
            named = sorted(n for n in scope if n == self.code or n in self.communities)
            if named:
                return True, Reason("tlp", f"{label}: the node's AMBER scope includes {named[0]}")
            return False, Reason("tlp", f"{label}: {self.code} is not in the node's AMBER scope")
        # AMBER+STRICT and RED: only recipients named on the object itself.
        if any(self.code in rel_to for rel_to in rel_tos):
            return True, Reason("tlp", f"{label}: {self.code} is named on the object")
        return False, Reason(
            "tlp", f"{label}: only recipients named on the object; not {self.code}"
        )

    def _rel_to(self, rel_to: frozenset[str]) -> tuple[bool, Reason]:
        listed = ", ".join(sorted(rel_to)) or "(no one)"
        names = self._names(rel_to)
        if not names:
            return False, Reason(
                "rel-to", f"REL TO {listed}: {self.code} is not a member of {listed}"
            )
        if names[0] == self.code:
            return True, Reason("rel-to", f"REL TO {listed}: names {self.code}")
        return True, Reason("rel-to", f"REL TO {listed}: {self.code} is a member of {names[0]}")

    def _classification(self, text: str) -> Iterator[tuple[bool, Reason]]:
        try:
            level = parse_level(text)
        except ValueError:
            yield False, Reason("unknown-classification", f"unknown classification {text}")
            return
        clearance_text = self.partner.clearance
        if clearance_text is None:
            yield False, Reason("no-clearance", f"{self.code} holds no clearance")
            return
        clearance = parse_level(str(clearance_text))
        yield self._within(level, clearance, "clearance", f"{self.code} clearance")
        ceiling_text = self.context.rules.trust_ceilings.get(self.partner.trust)
        if ceiling_text is not None:
            ceiling = parse_level(ceiling_text)
            yield self._within(
                level, ceiling, "trust-ceiling", f"the ceiling for {self.partner.trust} trust"
            )

    def _within(self, level: Level, limit: Level, code: str, what: str) -> tuple[bool, Reason]:
        outcome = compare(level, limit)
        if outcome == "within":
            return True, Reason(code, f"{level.describe()} is within {what} {limit.describe()}")
        if outcome == "exceeds":
            return False, Reason(code, f"{level.describe()} exceeds {what} {limit.describe()}")
        # A level the limit's scale lacks: the partner's own rule may say how it protects it.
        stand_in = self.partner.protects(level, limit)
        if stand_in is None:
            return False, Reason(
                code, f"{level.describe()} has no equivalent on the {limit.scale} scale of {what}"
            )
        within = stand_in.order <= limit.order
        rule = f"protects_foreign {RUNGS[level.rank].upper()} = {stand_in.name}"  # type: ignore[index]
        return within, Reason(
            code,
            f"{level.describe()} has no equivalent on the {limit.scale} scale; {self.code} "
            f"protects it as {stand_in.describe()} under its rule ({rule}), "
            + ("within" if within else "which exceeds")
            + f" {what} {limit.describe()}",
        )

    def _third_party(
        self, tlp: str | None, rel_tos: list[frozenset[str]], caveats: list[str]
    ) -> tuple[bool, Reason]:
        origin = self.originator.country or self.originator.identity or "unknown"
        if self.originator.country == self.code:
            return True, Reason("third-party", f"third-party rule: {self.code} is the originator")
        if self.consent is not None:
            until = f", until {self.consent.until}" if self.consent.until else ""
            return True, Reason(
                "consent",
                f"third-party rule: originator {origin} consented to release to {self.code} "
                f"({self.consent.id}{until})",
            )
        refusal = Reason(
            "third-party",
            f"third-party rule: originator {origin} has not consented to release to {self.code}",
        )
        if self.expired:
            latest = max(self.expired, key=lambda c: c.until or self.at)
            refusal = Reason(
                "consent-expired",
                f"third-party rule: the consent of {origin} to release to {self.code} "
                f"({latest.id}) ended on {latest.until}",
            )
        if "ORCON" in caveats:
            return False, Reason(
                refusal.code, f"ORCON: originator {origin} has not consented to {self.code}"
            )
        if tlp == "clear":
            return True, Reason("third-party", f"third-party rule: {origin} marked it TLP:CLEAR")
        if tlp == "green" and self.originator.country is not None:
            shared = self.communities & self.context.communities_of(
                self.originator.country, self.at
            )
            if shared:
                return True, Reason(
                    "third-party",
                    f"third-party rule: TLP:GREEN within {sorted(shared)[0]}, which {origin} "
                    f"shares with {self.code}",
                )
        if rel_tos and all(self._names(r) for r in rel_tos):
            return True, Reason(
                "third-party", f"third-party rule: {origin}'s REL TO includes {self.code}"
            )
        return False, refusal
