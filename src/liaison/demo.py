"""The demo: a Canadian node, the demo alliance, and open-source documents ingested as the
node's own graded intelligence."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def seen_from(alliance: Path, country: str) -> str:
    """The alliance file ``alliance`` as the node of ``country``, one of its partners, sees
    it: that partner becomes the node and the file's node a partner (cleared to its own top
    level, trusted highly); communities, collections and rules stay. TOML text."""
    import tomllib

    import tomli_w

    try:
        data = tomllib.loads(alliance.read_text(encoding="utf-8"))
        home = data["node"]
        partners = data.get("partners", [])
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{alliance} is not an alliance file: {exc}") from None
    me = next((p for p in partners if p.get("country") == country), None)
    if me is None:
        known = ", ".join(sorted(p.get("country", "?") for p in partners))
        raise InputError(f"{country} is not in {alliance.name}: choose one of {known}")
    data["node"] = {"country": country, "name": me["name"]}
    origin = {
        "country": home["country"],
        "name": home["name"],
        "clearance": f"{home['country']}:TOP SECRET",
        "trust": "high",
        "agreement": "the demo alliance",
    }
    data["partners"] = [origin, *(p for p in partners if p.get("country") != country)]
    return (
        f"# The demo alliance seen from {country}, made by `liaison demo --country {country}` "
        f"from {alliance.name}.\n# Format: docs/alliance.md.\n\n" + tomli_w.dumps(data)
    )


def run_demo(
    settings: Settings,
    documents: Path,
    alliance: Path,
    intelligence: Path | None = None,
    country: str | None = None,
) -> DemoResult:
    """Create (or reopen) the node, apply ``alliance``, import ``documents`` as reports and
    the marked STIX bundle ``intelligence``. With ``country`` other than the alliance file's
    node, the node is that partner's, with the alliance seen from it (:func:`seen_from`,
    written to ``alliance.toml`` in its home), and nothing imported but the definitions: the
    documents and the bundle are the file's node's, which it shares by sync."""
    from liaison.alliance import load_alliance_file, parse_alliance
    from liaison.importer import import_objects
    from liaison.ingest.pipeline import ingest
    from liaison.ingest.read import read_paths
    from liaison.ingest.run import definitions
    from liaison.ingest.sources import load_sources
    from liaison.node import apply_alliance, init_node
    from liaison.stix.parse import parse_payload

    config = load_alliance_file(alliance)
    seen = None
    if country is not None and country != config.node.country:
        seen = seen_from(alliance, country)
        config = parse_alliance(seen, source=f"{alliance} seen from {country}")
        intelligence = None
    node, created = init_node(settings, config.node.country, config.node.name)
    if seen is not None:
        alliance = settings.home / "alliance.toml"
        alliance.write_text(seen, encoding="utf-8")
    changes = apply_alliance(node, alliance)
    objects: list[dict[str, Any]] = []
    # Only the file's node ingests the documents: the ids of what ingest makes are the same
    # on every node (the same article, the same place), and ids have one owner, so a second
    # node's copies would refuse the first's (docs/status.md).
    if seen is None:
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
