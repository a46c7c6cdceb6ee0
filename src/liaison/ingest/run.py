"""`liaison ingest` end to end: read the documents, build the node's STIX, import it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liaison.importer import ImportReport, built_here, import_objects
from liaison.ingest.pipeline import Ingested, ingest
from liaison.ingest.read import read_paths
from liaison.ingest.sources import load_sources
from liaison.markings.handling import LIAISON_EXTENSION, extension_definition
from liaison.markings.tlp import TLP_CLEAR, tlp_definition
from liaison.node import Node
from liaison.stix.timestamps import stix_now
from liaison.store.objects import versions_of

SOURCES_FILE = "sources.toml"


@dataclass(frozen=True)
class IngestRun:
    ingested: Ingested
    imported: ImportReport | None  # None when no document could be read


def sources_file(node: Node, given: Path | None) -> Path | None:
    """The source ratings to use: the file given, else ``$LIAISON_HOME/sources.toml``."""
    if given is not None:
        return given
    default = node.settings.home / SOURCES_FILE
    return default if default.exists() else None


def definitions(node: Node) -> list[dict[str, Any]]:
    """What ingested objects refer to: TLP:CLEAR, and Liaison's extension (the Admiralty
    grade) unless the store already holds its definition."""
    found = [tlp_definition(TLP_CLEAR)]
    with node.engine.connect() as connection:
        if not versions_of(connection, LIAISON_EXTENSION):
            found.append(extension_definition(node.identity_id))
    return found


def run_ingest(
    node: Node,
    paths: Sequence[Path],
    *,
    source: str | None = None,
    sources: Path | None = None,
    on_document: Callable[[], None] | None = None,
) -> IngestRun:
    """Ingest ``paths`` into ``node``'s store."""
    ratings = load_sources(sources_file(node, sources))
    ingested = ingest(read_paths(paths, source), node.identity_id, ratings, on_document=on_document)
    if ingested.empty:
        ingested.close()
        return IngestRun(ingested, None)
    with ingested:
        return IngestRun(ingested, store(node, ingested))


def store(node: Node, ingested: Ingested) -> ImportReport:
    """Import the run's objects batch by batch, each batch in its own transaction: memory
    stays flat however many documents there are. Every object follows what it refers to,
    and every id derives from content, so an interrupted run is completed by running it
    again. The node built every object here itself: they skip the validator (``built_here``
    says why that is safe)."""
    total = ImportReport(request_timestamp=stix_now())
    first = True
    for batch in ingested.batches():
        objects = [*definitions(node), *batch] if first else batch
        first = False
        report = import_objects(node.engine, objects, validate=built_here)
        total.statuses.extend(report.statuses)
    return total
