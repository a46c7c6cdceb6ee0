"""Importing STIX: validate every object, store the valid ones in one transaction, report
each object's fate in the shape of a TAXII 2.1 status resource.

Nothing is validated twice: an object the store already holds with the same text had its
verdict when it came in, and what the node builds itself (the ingest pipeline) is passed
``validate=built_here``, which tests justify (see ``built_here``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

from liaison.policy.consent import apply_consents, relay_claims
from liaison.policy.grants import redecide_markings, refresh, register_classes
from liaison.release.onward import notice_claims
from liaison.settings import InputLimits
from liaison.stix.parse import parse_payload
from liaison.stix.timestamps import stix_now
from liaison.stix.validate import validate_all
from liaison.store.engine import write_transaction
from liaison.store.objects import VersionKey, add_objects, stored_identically, version_of

Status = Literal["added", "present", "rejected"]
# Errors for each of a batch of objects, in order (empty: valid).
Validate = Callable[[Sequence[dict[str, Any]]], list[list[str]]]


@dataclass(frozen=True)
class ObjectStatus:
    id: str
    version: str | None
    status: Status
    messages: tuple[str, ...] = ()


@dataclass
class ImportReport:
    request_timestamp: str
    statuses: list[ObjectStatus] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for s in self.statuses if s.status == status)

    @property
    def rejected(self) -> list[ObjectStatus]:
        return [s for s in self.statuses if s.status == "rejected"]

    def as_taxii_status(self) -> dict[str, Any]:
        """The report as a TAXII 2.1 status resource (without its ``id``)."""

        def detail(status: ObjectStatus) -> dict[str, Any]:
            out: dict[str, Any] = {"id": status.id}
            if status.version is not None:
                out["version"] = status.version
            if status.messages:
                out["message"] = "; ".join(status.messages)
            return out

        successes = [s for s in self.statuses if s.status != "rejected"]
        return {
            "status": "complete",
            "request_timestamp": self.request_timestamp,
            "total_count": len(self.statuses),
            "success_count": len(successes),
            "successes": [detail(s) for s in successes],
            "failure_count": len(self.rejected),
            "failures": [detail(s) for s in self.rejected],
            "pending_count": 0,
            "pendings": [],
        }


def import_objects(
    engine: sa.Engine,
    objects: Sequence[dict[str, Any]],
    *,
    workers: int = 0,
    received_from: str | None = None,
    on_validated: Callable[[int], None] | None = None,
    validate: Validate | None = None,
) -> ImportReport:
    """Validate ``objects`` (with ``validate`` if given, else ``validate_all``) and store the
    valid ones, all in one transaction. Objects stored already with the same text are not
    validated again. ``received_from`` names the partner that wrote them (None: the node's
    operator): a partner may write only its own objects (see ``store.ownership``)."""
    report = ImportReport(request_timestamp=stix_now())
    errors = _verdicts(engine, objects, validate, workers, on_validated)
    valid = [obj for obj, errs in zip(objects, errors, strict=True) if not errs]
    with write_transaction(engine) as connection:
        refresh(connection)
        judged = {
            **relay_claims(connection, valid, received_from),
            **notice_claims(connection, valid),
        }
        added = add_objects(connection, valid, received_from=received_from, judged=judged)
        register_classes(connection, added.classes)
        fresh = [obj for obj, o in zip(valid, added.outcomes, strict=True) if o == "added"]
        redecide_markings(
            connection, (obj["id"] for obj in fresh if obj["type"] == "marking-definition")
        )
        apply_consents(connection, [VersionKey(obj["id"], version_of(obj)) for obj in fresh])
    stored = iter(enumerate(added.outcomes))
    for obj, errs in zip(objects, errors, strict=True):
        version = obj.get("modified") or obj.get("created")
        version = version if isinstance(version, str) else None
        if errs:
            report.statuses.append(ObjectStatus(obj["id"], version, "rejected", tuple(errs)))
            continue
        position, outcome = next(stored)
        message = added.messages.get(position)
        if outcome == "refused":
            report.statuses.append(ObjectStatus(obj["id"], version, "rejected", (message,)))
        elif outcome == "present":
            said = message or "already present"
            report.statuses.append(ObjectStatus(obj["id"], version, "present", (said,)))
        else:
            report.statuses.append(ObjectStatus(obj["id"], version, "added"))
    return report


def built_here(objects: Sequence[dict[str, Any]]) -> list[list[str]]:
    """The verdict on objects the node built itself, without running the validator:
    valid. tests/ingest/test_pipeline.py runs the real validator over everything the ingest
    pipeline builds from the sample texts, so a change that made it build invalid STIX
    fails there."""
    return [[] for _ in objects]


def _verdicts(
    engine: sa.Engine,
    objects: Sequence[dict[str, Any]],
    validate: Validate | None,
    workers: int,
    on_validated: Callable[[int], None] | None,
) -> list[list[str]]:
    """The errors of each object: none for those stored already with the same text, the
    validator's for the others."""
    if validate is built_here or not objects:
        return built_here(objects)
    with engine.connect() as connection:
        known = stored_identically(connection, objects)
    unknown = [position for position in range(len(objects)) if position not in known]
    batch = [objects[position] for position in unknown]
    if validate is not None:
        checked = validate(batch)
    else:
        checked = validate_all(batch, workers=workers, on_progress=on_validated)
    if known and on_validated:
        on_validated(len(known))
    verdicts: list[list[str]] = [[] for _ in objects]
    for position, errors in zip(unknown, checked, strict=True):
        verdicts[position] = errors
    return verdicts


def import_payload(
    engine: sa.Engine,
    data: bytes,
    limits: InputLimits,
    *,
    workers: int = 0,
    received_from: str | None = None,
    on_validated: Callable[[int], None] | None = None,
) -> ImportReport:
    """Parse untrusted bytes (a bundle or one object) and import them; InputError if the
    payload itself is refused, in which case nothing is written."""
    objects = parse_payload(data, limits)
    return import_objects(
        engine, objects, workers=workers, received_from=received_from, on_validated=on_validated
    )
