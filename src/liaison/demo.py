"""The demo: a Canadian node, the demo alliance, and open-source documents ingested as the
node's own graded intelligence."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from liaison.errors import InputError

# `liaison demo --help` shows the defaults below: the demo's machinery (ingestion, the
# validator, the store) is imported when it runs.
if TYPE_CHECKING:
    from liaison.importer import ImportReport
    from liaison.node import Node
    from liaison.settings import Settings
    from liaison.store.alliance import AllianceChanges

# The repository's examples/, when running from a checkout (editable install).
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEFAULT_ALLIANCE = EXAMPLES / "alliance.toml"
DEFAULT_DOCUMENTS = EXAMPLES / "documents"
DEFAULT_INTELLIGENCE = EXAMPLES / "intelligence.json"
DEFAULT_SOURCES = EXAMPLES / "sources.toml"


@dataclass(frozen=True)
class DemoResult:
    node: Node
    created: bool
    alliance: AllianceChanges
    reports: ImportReport


def run_demo(
    settings: Settings, documents: Path, alliance: Path, intelligence: Path | None = None
) -> DemoResult:
    """Create (or reopen) the node, apply ``alliance``, import ``documents`` as reports and
    the marked STIX bundle ``intelligence``."""
    from liaison.alliance import load_alliance_file
    from liaison.importer import import_objects
    from liaison.ingest.pipeline import ingest
    from liaison.ingest.read import read_paths
    from liaison.ingest.run import definitions
    from liaison.ingest.sources import load_sources
    from liaison.node import apply_alliance, init_node
    from liaison.stix.parse import parse_payload

    config = load_alliance_file(alliance)
    node, created = init_node(settings, config.node.country, config.node.name)
    changes = apply_alliance(node, alliance)
    if not documents.is_dir():
        raise InputError(f"{documents} is not a directory of documents")
    ratings = load_sources(DEFAULT_SOURCES if DEFAULT_SOURCES.exists() else None)
    ingested = ingest(read_paths([documents]), node.identity_id, ratings)
    with ingested:
        objects = ingested.objects
    if not objects:
        raise InputError(f"{documents} holds no readable documents")
    if intelligence is not None:
        objects = [*parse_payload(_read(intelligence), settings.limits), *objects]
    ids = {o.get("id") for o in objects}
    objects = [d for d in definitions(node) if d["id"] not in ids] + objects
    report = import_objects(node.engine, objects, workers=settings.validation_workers)
    return DemoResult(node, created, changes, report)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def holdings(node: Node) -> Counter[tuple[str, str]]:
    """How many objects (latest versions) the node holds, by type and marking."""
    from liaison.markings.names import marking_name
    from liaison.store.objects import latest_versions

    counts: Counter[tuple[str, str]] = Counter()
    with node.engine.connect() as connection:
        latest = [stored.object for stored in latest_versions(connection)]
    definitions = {obj["id"]: obj for obj in latest if obj["type"] == "marking-definition"}
    for obj in latest:
        refs = obj.get("object_marking_refs") or []
        label = ", ".join(marking_name(ref, definitions.get(ref)) for ref in refs) or "unmarked"
        counts[(obj["type"], label)] += 1
    return counts
