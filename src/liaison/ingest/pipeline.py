"""Open-source documents to the node's own graded STIX intelligence.

For each document: a ``report`` created by the node and marked TLP:CLEAR, with the entities
it mentions (``identity``, ``location``, ``intrusion-set``) and the relationships the text
states, all referenced by the report. Documents that tell the same story are grouped (a STIX
``grouping``), and each report is graded: the Admiralty reliability of its source, and a
credibility raised by corroboration from independent sources (``ingest/stories.py``).

Every id is derived from content (the report's from its text, an entity's from its kind and
normalized name, a grouping's from its reports), so ingesting the same documents again
yields the same objects, byte for byte, and adds nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from liaison.ingest import entities as entity_extraction
from liaison.ingest.read import Document, Failure
from liaison.ingest.sources import SourceRatings
from liaison.ingest.stories import StoryInput, credibility, stories
from liaison.markings.admiralty import Admiralty, grade
from liaison.markings.handling import LIAISON_EXTENSION
from liaison.markings.tlp import TLP_CLEAR
from liaison.stix.ids import derived_id

# Entities are timeless name records: one fixed timestamp keeps each one byte-identical
# whichever document names it first.
ENTITIES_CREATED = "2000-01-01T00:00:00.000Z"
SOURCE_NAME = "open-source document"


@dataclass(frozen=True)
class DocumentResult:
    """What became of one document (the `--json` output of `liaison ingest`)."""

    origin: str
    report: str | None = None
    entities: tuple[str, ...] = ()
    story: str | None = None
    grade: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "document": self.origin,
            "report": self.report,
            "entities": list(self.entities),
            "story": self.story,
            "admiralty": self.grade,
            "error": self.error,
        }


@dataclass
class Ingested:
    results: list[DocumentResult] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failures(self) -> list[DocumentResult]:
        return [r for r in self.results if r.error is not None]


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def ingest(
    items: Iterable[Document | Failure],
    author: str,
    ratings: SourceRatings,
    now: datetime | None = None,
    on_document: Callable[[], None] | None = None,
) -> Ingested:
    """The STIX objects of ``items`` (documents, or failures to report), created by
    ``author``. ``now`` dates a document that states no date and has no file time."""
    now = now or datetime.now(UTC)
    result = Ingested()
    shared: dict[str, dict[str, Any]] = {}  # entity and relationship objects, by id
    reports: dict[str, dict[str, Any]] = {}
    documents: dict[str, Document] = {}
    entity_ids: dict[str, tuple[str, ...]] = {}
    order: list[tuple[str, Document] | DocumentResult] = []
    for item in items:
        if isinstance(item, Failure):
            order.append(DocumentResult(item.origin, error=item.error))
        else:
            report = _report(item, author, now, shared)
            if report["id"] not in reports:
                reports[report["id"]] = report
                documents[report["id"]] = item
                entity_ids[report["id"]] = tuple(
                    r for r in report["object_refs"] if not r.startswith("relationship--")
                )
            order.append((report["id"], item))
        if on_document is not None:
            on_document()
    groupings, story_of, sources_in = _stories(reports, documents, entity_ids, author)
    for report_id, report in reports.items():
        document = documents[report_id]
        grading = Admiralty(
            ratings.reliability(document.source),
            credibility(sources_in.get(report_id, 1)),
        )
        reports[report_id] = grade(report, grading)
    for grouping in groupings:
        members = [reports[r] for r in grouping["object_refs"]]
        # The story is as reliable as its most reliable source, as credible as its reports.
        codes = [r["extensions"][LIAISON_EXTENSION]["admiralty"] for r in members]
        best = min(codes)
        result.objects.append(grade(grouping, Admiralty(best[0], int(best[1]))))
    result.objects[:0] = [*shared.values(), *reports.values()]
    for entry in order:
        if isinstance(entry, DocumentResult):
            result.results.append(entry)
            continue
        report_id, document = entry  # a copy of an earlier document shares its report
        report = reports[report_id]
        result.results.append(
            DocumentResult(
                document.origin,
                report_id,
                entity_ids[report_id],
                story_of.get(report_id),
                report["extensions"][LIAISON_EXTENSION]["admiralty"],
            )
        )
    return result


def _report(
    document: Document, author: str, now: datetime, shared: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    found, relationships = entity_extraction.extract(document.text)
    objects = entity_extraction.entity_objects(
        found, relationships, author, ENTITIES_CREATED, [TLP_CLEAR]
    )
    for obj in objects:
        shared.setdefault(obj["id"], obj)
    published = stamp(document.published or document.modified or now)
    digest = hashlib.sha256(document.text.encode("utf-8")).hexdigest()
    reference: dict[str, Any] = {
        "source_name": SOURCE_NAME,
        "description": document.source,
        "external_id": digest,
    }
    if document.url:
        reference["url"] = document.url
    # A report must reference something: the node itself when the text names nothing known.
    refs = [obj["id"] for obj in objects] or [author]
    return {
        "type": "report",
        "spec_version": "2.1",
        "id": derived_id("report", f"document:{digest}"),
        "created_by_ref": author,
        "created": published,
        "modified": published,
        "name": document.headline[:300] or document.text[:100],
        "description": document.text,
        "published": published,
        "report_types": ["threat-report"],
        "object_refs": refs,
        "external_references": [reference],
        "object_marking_refs": [TLP_CLEAR],
    }


def _stories(
    reports: dict[str, dict[str, Any]],
    documents: dict[str, Document],
    entity_ids: dict[str, tuple[str, ...]],
    author: str,
) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, int]]:
    inputs = [
        StoryInput(
            report_id,
            documents[report_id].text,
            frozenset(entity_ids[report_id]),
            documents[report_id].published,
            documents[report_id].source,
        )
        for report_id in reports
    ]
    groupings = []
    story_of: dict[str, str] = {}
    sources_in: dict[str, int] = {}
    for members in stories(inputs):
        ordered = sorted(members, key=lambda r: (reports[r]["published"], r))
        grouping_id = derived_id("grouping", "story:" + ",".join(sorted(members)))
        latest = max(reports[r]["published"] for r in members)
        groupings.append(
            {
                "type": "grouping",
                "spec_version": "2.1",
                "id": grouping_id,
                "created_by_ref": author,
                "created": latest,
                "modified": latest,
                "name": f"Same story: {reports[ordered[0]]['name']}"[:300],
                "description": (
                    f"{len(members)} documents from "
                    f"{len({documents[r].source for r in members})} independent sources"
                ),
                "context": "unspecified",
                "object_refs": ordered,
                "object_marking_refs": [TLP_CLEAR],
            }
        )
        independent = len({documents[r].source for r in members})
        for report_id in members:
            story_of[report_id] = grouping_id
            sources_in[report_id] = independent
    return groupings, story_of, sources_in
