"""ISA/ACS 3.0 marking-definitions (OASIS extension
``extension-definition--3a65884d-005a-4290-8335-cb2d778a83ce``, schema ``isa-acs-3-0.json`` in
oasis-open/cti-stix-common-objects) read into Liaison's handling rules.

US partners mark what they send this way. The mapping is conservative: what it cannot
express as a Liaison rule makes the marking unknown, and an unknown marking withholds.

| ACS | Liaison |
| --- | --- |
| ``control_set.classification`` U, C, S, TS | classification on the USA scale |
| ``formal_determination`` NF | caveat NOFORN |
| ``formal_determination`` PUBREL | TLP:CLEAR (publicly releasable) |
| ``control_set.permitted_nationalities`` | REL TO those countries |
| ``access_privilege`` DSPLY or ALL, ``permit``, listed nationalities | REL TO, narrowed to them |
| ``further_sharing`` without a ``permit`` of FOREIGNGOV (or, absent, ``sharedefault=deny``)
  | caveat ORCON |
| ``permitted_organizations``, ``sci_controls``, ``sensitivity``, ``caveat``,
  ``shareability`` | not expressible: unknown marking |
"""

from __future__ import annotations

from typing import Any

from liaison.markings.handling import Handling, UnknownMarking

_CLASSIFICATIONS = {"U", "C", "S", "TS"}
_DISPLAY = {"DSPLY", "ALL"}
# Control-set tags that restrict access in ways a foreign partner's agency cannot be
# checked against; their presence withholds.
_UNEXPRESSIBLE = (
    "permitted_organizations",
    "sci_controls",
    "sensitivity",
    "caveat",
    "shareability",
)


def read_acs(marking_id: str, extension: dict[str, Any]) -> Handling:
    """The Liaison handling of one ACS 3.0 marking; UnknownMarking when it cannot be
    expressed (the object is then withheld)."""

    def unknown(why: str) -> UnknownMarking:
        return UnknownMarking(f"unknown marking {marking_id}: ACS {why}")

    control = extension.get("control_set")
    if not isinstance(control, dict):
        raise unknown("marking without a control_set")
    classification = control.get("classification")
    if classification not in _CLASSIFICATIONS:
        raise unknown(f"classification {classification!r}")
    for tag in _UNEXPRESSIBLE:
        if control.get(tag):
            raise unknown(f"{tag} restricts access in a way Liaison does not evaluate")

    determinations = set(control.get("formal_determination") or [])
    caveats: set[str] = set()
    if "NF" in determinations:
        caveats.add("NOFORN")

    nationalities = control.get("permitted_nationalities")
    releasable: set[str] | None = set(nationalities) if nationalities else None
    for privilege in extension.get("access_privilege") or []:
        if not isinstance(privilege, dict):
            raise unknown("access_privilege entry is not an object")
        if privilege.get("privilege_action") not in _DISPLAY:
            continue
        scope = (privilege.get("privilege_scope") or {}).get("permitted_nationalities") or []
        if privilege.get("rule_effect") != "permit":
            raise unknown("deny rule on display is not evaluated")
        if scope and scope != ["ALL"]:
            releasable = set(scope) if releasable is None else releasable & set(scope)

    if _orcon(extension):
        caveats.add("ORCON")
    return Handling(
        tlp="clear" if "PUBREL" in determinations and not caveats else None,
        classification=f"USA:{classification}",
        releasable_to=frozenset(releasable) if releasable is not None else None,
        caveats=frozenset(caveats),
    )


def _orcon(extension: dict[str, Any]) -> bool:
    """Whether the originator keeps control of sharing with foreign governments."""
    rules = extension.get("further_sharing")
    if not rules:
        policy = str(extension.get("policy_reference", ""))
        return "sharedefault=deny" in policy
    return not any(
        isinstance(rule, dict)
        and rule.get("rule_effect") == "permit"
        and "FOREIGNGOV" in (rule.get("sharing_scope") or [])
        for rule in rules
    )
