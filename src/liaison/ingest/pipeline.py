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
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from liaison.ingest import entities as entity_extraction
from liaison.ingest.read import Document, Failure
from liaison.ingest.sources import SourceRatings
from liaison.ingest.stories import StoryInput, credibility, signature_of, stories
from liaison.markings.admiralty import Admiralty, grade
from liaison.markings.tlp import TLP_CLEAR
from liaison.stix.ids import derived_id

# Entities are timeless name records: one fixed timestamp keeps each one byte-identical
# whichever document names it first.
ENTITIES_CREATED = "2000-01-01T00:00:00.000Z"
SOURCE_NAME = "open-source document"
# Objects written to the store per transaction.
BATCH = 500


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


@dataclass(frozen=True)
class _Record:
    """What a run keeps of a document once its report is spooled: enough to group and grade."""

    source: str
    published: str  # the report's
    headline: str  # the report's name
    entities: tuple[str, ...]
    story: StoryInput


class Ingested:
    """The result of a run: one result per document, and the objects, read back in batches
    from a spool on disk so that memory does not grow with the number of documents."""

    def __init__(self) -> None:
        self.results: list[DocumentResult] = []
        self.shared: dict[str, dict[str, Any]] = {}  # entities and relationships, by id
        self.groupings: list[dict[str, Any]] = []
        self.grades: dict[str, Admiralty] = {}  # report id -> its grade
        # Lives as long as the result (close() or the context manager ends it); an unnamed
        # temporary file leaves nothing behind even if the process dies.
        self._spool: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115

    @property
    def failures(self) -> list[DocumentResult]:
        return [r for r in self.results if r.error is not None]

    @property
    def empty(self) -> bool:
        return not self.grades

    def batches(self, size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
        """Every object, in batches: entities and relationships first, then the graded
        reports, then the groupings (each after what it refers to)."""
        shared = list(self.shared.values())
        for start in range(0, len(shared), size):
            yield shared[start : start + size]
        self._spool.seek(0)
        batch: list[dict[str, Any]] = []
        for line in self._spool:
            report = json.loads(line)
            batch.append(grade(report, self.grades[report["id"]]))
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch
        for start in range(0, len(self.groupings), size):
            yield self.groupings[start : start + size]

    @property
    def objects(self) -> list[dict[str, Any]]:
        """Every object at once (small runs and tests)."""
        return [obj for batch in self.batches() for obj in batch]

    def close(self) -> None:
        self._spool.close()

    def __enter__(self) -> Ingested:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


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
    ``author``. ``now`` dates a document that states no date and has no file time. Reports
    go to a spool as they are made; only a compact record of each stays in memory."""
    now = now or datetime.now(UTC)
    result = Ingested()
    records: dict[str, _Record] = {}
    order: list[tuple[str, str] | DocumentResult] = []
    for item in items:
        if isinstance(item, Failure):
            order.append(DocumentResult(item.origin, error=item.error))
        else:
            report, entities = _report(item, author, now, result.shared)
            report_id = report["id"]
            if report_id not in records:
                story = StoryInput(
                    report_id,
                    signature_of(item.text),
                    frozenset(entities),
                    item.published,
                    item.source,
                )
                records[report_id] = _Record(
                    item.source, report["published"], report["name"], entities, story
                )
                result._spool.write(json.dumps(report, ensure_ascii=False) + "\n")
            order.append((report_id, item.origin))
        if on_document is not None:
            on_document()
    story_of, sources_in = _stories(result, records, author)
    for report_id, record in records.items():
        result.grades[report_id] = Admiralty(
            ratings.reliability(record.source), credibility(sources_in.get(report_id, 1))
        )
    for index, grouping in enumerate(result.groupings):
        # A story is as reliable as its most reliable source, as credible as its reports
        # (which all share the story's credibility): the lowest code is that grade.
        best = min((result.grades[r] for r in grouping["object_refs"]), key=lambda g: g.code)
        result.groupings[index] = grade(grouping, best)
    for entry in order:
        if isinstance(entry, DocumentResult):
            result.results.append(entry)
            continue
        report_id, origin = entry  # a copy of an earlier document shares its report
        result.results.append(
            DocumentResult(
                origin,
                report_id,
                records[report_id].entities,
                story_of.get(report_id),
                result.grades[report_id].code,
            )
        )
    return result


def _report(
    document: Document, author: str, now: datetime, shared: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The document's report, and the ids of the entities it names (not the node, which a
    report naming nothing refers to instead)."""
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
    entities = tuple(obj["id"] for obj in objects if obj["type"] != "relationship")
    report: dict[str, Any] = {
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
    return report, entities


def _stories(
    result: Ingested,
    records: dict[str, _Record],
    author: str,
) -> tuple[dict[str, str], dict[str, int]]:
    story_of: dict[str, str] = {}
    sources_in: dict[str, int] = {}
    for members in stories([record.story for record in records.values()]):
        ordered = sorted(members, key=lambda r: (records[r].published, r))
        latest = max(records[r].published for r in members)
        independent = len({records[r].source for r in members})
        grouping_id = derived_id("grouping", "story:" + ",".join(sorted(members)))
        result.groupings.append(
            {
                "type": "grouping",
                "spec_version": "2.1",
                "id": grouping_id,
                "created_by_ref": author,
                "created": latest,
                "modified": latest,
                "name": f"Same story: {records[ordered[0]].headline}"[:300],
                "description": f"{len(members)} documents from {independent} independent sources",
                "context": "unspecified",
                "object_refs": ordered,
                "object_marking_refs": [TLP_CLEAR],
            }
        )
        for report_id in members:
            story_of[report_id] = grouping_id
            sources_in[report_id] = independent
    return story_of, sources_in
