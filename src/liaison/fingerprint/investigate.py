"""Investigating a leak: the disclosed texts it was drawn from, the bit each of their slots
shows in it, and the partners those bits accuse.

1. **Sources** (:func:`find_sources`). The leak (an excerpt, retyped, with typos, or stitched
   from several copies and several documents) is cut into word 3-shingles, and each disclosed
   object version is scored by *containment*: how many of the leak's shingles its text holds.
   An excerpt is contained in its original however short it is, where Jaccard similarity would
   fall with the excerpt's length. Only shingles in a *dense* stretch count (the version holds
   at least :data:`DENSITY` of the shingles around them): a passage copied from a text is
   dense in it, typos and slots notwithstanding, while the stock phrases reports share
   ("declined to comment on the") are scattered. Versions are then taken greedily, the one
   that explains most of the leak not yet explained first, while it explains at least
   :data:`MIN_SHINGLES` more, so a leak stitched from several documents finds each of them.
   Each stretch of the leak goes to one source, the one that holds most of it (its
   *passage*); versions whose texts explain exactly the same shingles (a new version that
   changed no prose the leak shows) are all sources: nothing in the text tells them apart.
2. **Marks** (:func:`read_marks`). Each field of each source is read with
   :func:`~liaison.fingerprint.slots.read_bits` against the passages of the leak drawn from it;
   every slot gives its mark (:func:`~liaison.fingerprint.copies.mark_key`) a 0, a 1 or None
   (unreadable, and so scoring 0 for every partner).
3. **Candidates** (:func:`investigate`). The partners the ledger says received a fingerprinted
   copy (one recorded with this code's :data:`~liaison.fingerprint.tardos.SCHEME`) of at least
   one source. Each candidate is scored on every mark read, including marks of sources it did
   not receive. The ledger, the authority on who received what, is read only for the
   sources' objects: it holds an entry per partner per version delivered, far more than
   there are versions. The texts searched are those of the versions the ``disclosures`` table
   lists, streamed from the store.
4. **Accusation**: :func:`liaison.fingerprint.tardos.accuse` over the candidates, with the
   threshold that keeps the probability of accusing any innocent candidate at most ``epsilon``.

Why the candidate rule keeps the ε guarantee
--------------------------------------------
The threshold of ``tardos.accuse`` bounds, for each innocent partner, the probability that its
score reaches the threshold by ``ε/n``, using only that the innocent's bits are independent
of the leak; the union bound over the ``n`` partners scored gives ``ε``. Both hold here:

- an innocent's bits at a version it never received are independent of the leak too (they
  exist, derived from the secret, whether or not a copy carrying them was ever sent), so
  scoring every candidate on every mark read keeps each innocent's bound;
- choosing the candidates and the marks looks only at the leak's text, the stored originals
  and the ledger, never at any partner's bits, so the choice cannot favour an innocent's
  score; ``n`` is the number of candidates actually scored, the partners not scored cannot be
  accused.

What the rule costs is power, not soundness: a colluder is also scored on marks from the
parts of a stitched leak that another colluder supplied, where its bits are noise. Scoring each
partner only on the versions it received would avoid that, but then each partner would need
its own threshold (its marks differ), and an investigation would no longer have one threshold
and one ε to report. Partners that received none of the sources are left out: they could not
have supplied any of the leak, and fewer candidates lower the threshold. A copy recorded
without a fingerprint (sent before fingerprinting, or of a text without slots) carried no
bits, so it makes nobody a candidate.

Nothing here may depend on the scores: choosing among sources, versions or candidates by the
score they give would be a search over hypotheses that the ε of one accusation does not cover.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from liaison.errors import InputError
from liaison.fingerprint import tardos
from liaison.fingerprint.copies import mark_key, marked_version
from liaison.fingerprint.slots import TOKEN, find_slots, read_bits, text_fields
from liaison.ingest.read import HTML_SUFFIXES, MAX_DOCUMENT_BYTES, Failure, read_html
from liaison.ledger import log
from liaison.stix.timestamps import to_micros
from liaison.store.schema import disclosures, objects

SHINGLE_WORDS = 3
MIN_SHINGLES = 8
"""The fewest of the leak's shingles, not explained by a better source, that make a source."""
HALF_WINDOW = 10
DENSITY = 0.4
"""A source supplied the words around a shingle of the leak when it holds at least this share
of the 2 x HALF_WINDOW + 1 shingles centred there: an excerpt with 2 % typos keeps about 70 %
of its shingles, while phrases shared by unrelated reports rarely fill a quarter of a window."""
RUN_GAP = 2 * HALF_WINDOW
"""Shingles between two dense runs of one source below which they are one passage."""
OWNER_WINDOW = 4 * HALF_WINDOW
"""Half the window over which sources dense at one place compete for it (see _shared_out)."""
MARGIN = 8
"""Words read on either side of a passage: the slots whose variants broke its edge shingles."""


class Candidate(NamedTuple):
    """One text field of one disclosed object version."""

    object_id: str
    version: str  # as the object writes it (``modified``, else ``created``), as the mark keys
    field: str
    text: str


@dataclass(frozen=True)
class Match:
    """An object version the leak draws from: its text fields, the share of the leak's
    shingles it holds in its passages, and those passages (character spans of the leak)."""

    object_id: str
    version: str
    fields: tuple[Candidate, ...]
    containment: float
    passages: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Source:
    object_id: str
    version: str
    containment: float
    marks_read: int


@dataclass(frozen=True)
class Finding:
    """What an investigation found: the sources, the marks read (0 or 1) from them, and each
    candidate partner's score against ``threshold`` (``inf`` when too few marks were read to
    accuse anybody), highest first."""

    sources: tuple[Source, ...]
    marks_read: int
    threshold: float
    epsilon: float
    suspects: tuple[tardos.Suspect, ...]

    @property
    def accused(self) -> tuple[str, ...]:
        return tuple(s.partner for s in self.suspects if s.accused)


# --- sources ----------------------------------------------------------------------------------


def _words(text: str) -> list[re.Match[str]]:
    return list(TOKEN.finditer(text))


def _shingles(words: Sequence[str]) -> list[str]:
    return [" ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)]


@lru_cache(maxsize=256)
def _shingle_set(text: str) -> frozenset[str]:
    """The shingles of a disclosed text (cached: an investigation's benchmark reads the same
    originals against every leak)."""
    return frozenset(_shingles([m.group().lower() for m in TOKEN.finditer(text)]))


Mask = npt.NDArray[np.bool_]


@dataclass
class _Drawn:
    """What one version (or several with the same text) may have supplied to the leak."""

    keys: list[tuple[str, str]]
    hit: Mask  # the shingles of the leak its text holds
    share: npt.NDArray[np.float64]  # at each shingle of the leak, the share around it it holds
    owned: Mask  # the shingles it holds inside its dense runs


def find_sources(
    leaked: str, candidates: Iterable[Candidate | tuple[str, str, str, str]]
) -> list[Match]:
    """The object versions among ``candidates`` that ``leaked`` draws from, the one that
    explains most of it first (see the module docstring); empty when none does.

    ``candidates`` may be a stream: only the versions whose text shares a shingle with the leak
    are kept. The fields of a version are judged together when they come one after another
    (as the store and :func:`disclosed_texts` give them)."""
    tokens = _words(leaked)
    shingles = _shingles([m.group().lower() for m in tokens])
    count = len(shingles)
    if not count:
        return []
    positions: dict[str, list[int]] = {}
    for i, shingle in enumerate(shingles):
        positions.setdefault(shingle, []).append(i)
    versions: dict[tuple[str, str], list[Candidate]] = {}
    hits: dict[tuple[str, str], list[int]] = {}
    for key, run in groupby(map(Candidate._make, candidates), lambda c: (c.object_id, c.version)):
        fields = list(run)
        found = [
            i
            for field in fields
            for shingle in _shingle_set(field.text).intersection(positions)
            for i in positions[shingle]
        ]
        if found or key in versions:
            versions.setdefault(key, []).extend(fields)
            hits.setdefault(key, []).extend(found)
    drawn: dict[bytes, _Drawn] = {}
    for key, found in hits.items():
        if len(found) < MIN_SHINGLES:
            continue
        hit = np.zeros(count, dtype=np.bool_)
        hit[found] = True
        share = _density(hit, HALF_WINDOW)
        owned = hit & _mask(_runs(share >= DENSITY), count)
        if owned.sum() < MIN_SHINGLES:
            continue
        twin = drawn.setdefault(owned.tobytes(), _Drawn([], hit, share, owned))
        twin.keys.append(key)  # several: the same text as far as the leak shows
    chosen: list[_Drawn] = []
    explained = np.zeros(count, dtype=np.bool_)
    remaining = list(drawn.values())
    while remaining:
        new = [int((d.owned & ~explained).sum()) for d in remaining]
        best = int(np.argmax(new))  # the first of equals
        if new[best] < MIN_SHINGLES:
            break
        chosen.append(remaining.pop(best))
        explained |= chosen[-1].owned
    held = [d.hit & _mask(runs, count) for d, runs in zip(chosen, _shared_out(chosen), strict=True)]
    passages = _passages(held, tokens, len(leaked))
    return [
        Match(key[0], key[1], tuple(versions[key]), int(mask.sum()) / count, spans)
        for d, mask, spans in zip(chosen, held, passages, strict=True)
        if spans
        for key in d.keys
    ]


def _density(hit: Mask, half: int) -> npt.NDArray[np.float64]:
    """At each shingle position, the share of the positions around it (a window of
    ``2 * half + 1``, cut at the ends) where ``hit`` is true."""
    window = np.ones(2 * half + 1)
    inside = np.convolve(np.ones(hit.size), window, "same")
    return np.convolve(hit.astype(np.float64), window, "same") / inside


def _runs(mask: Mask) -> list[tuple[int, int]]:
    """The runs ``[start, end)`` of true positions, joined across gaps up to RUN_GAP, of at
    least MIN_SHINGLES positions."""
    runs: list[tuple[int, int]] = []
    for i in np.flatnonzero(mask).tolist():
        if runs and i - runs[-1][1] <= RUN_GAP:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return [(a, b) for a, b in runs if b - a >= MIN_SHINGLES]


def _mask(runs: Sequence[tuple[int, int]], count: int) -> Mask:
    mask = np.zeros(count, dtype=np.bool_)
    for a, b in runs:
        mask[a:b] = True
    return mask


def _shared_out(chosen: Sequence[_Drawn]) -> list[list[tuple[int, int]]]:
    """Each chosen source's runs once the leak is shared out: a shingle where several sources
    are dense goes to the one that holds most of the shingles around it, and, of sources that
    hold about as many, most of the wider stretch (OWNER_WINDOW): reports written from the
    same stock phrases are each dense wherever one of those phrases stands, but over a few
    sentences only the true source is. The earlier chosen wins a tie."""
    if not chosen:
        return []
    dense = np.stack([d.share >= DENSITY for d in chosen])
    near = np.stack([d.share for d in chosen])
    wide = np.stack([_density(d.hit, OWNER_WINDOW) for d in chosen])
    owner = np.argmax(np.where(dense, near + wide / 2, -1.0), axis=0)  # the first of equals
    return [_runs(dense[k] & (owner == k)) for k in range(len(chosen))]


def _passages(
    held: Sequence[Mask], tokens: Sequence[re.Match[str]], length: int
) -> list[tuple[tuple[int, int], ...]]:
    """Each source's passages as character spans of the leak (of ``length`` characters):
    from the first to the last word of each stretch of shingles it ``held`` (one stretch until
    another source's begins or RUN_GAP shingles go unexplained), widened by up to MARGIN words
    but never past halfway to another source's stretch. Words of a neighbouring passage would
    be aligned to wherever the same words stand in the original, which reads nothing and costs
    much."""
    segments: list[tuple[int, int, int]] = []  # first word, end word, source
    for position in np.flatnonzero(np.any(np.stack(held), axis=0)).tolist() if held else []:
        k = next(k for k, mask in enumerate(held) if mask[position])
        end = position + SHINGLE_WORDS
        if segments and segments[-1][2] == k and position - segments[-1][1] <= RUN_GAP:
            segments[-1] = (segments[-1][0], max(end, segments[-1][1]), k)
        else:
            segments.append((position, end, k))
    words: list[list[tuple[int, int]]] = [[] for _ in held]
    for n, (start, end, k) in enumerate(segments):
        lo, hi = max(0, start - MARGIN), min(len(tokens), end + MARGIN)
        if n > 0:
            lo = min(start, max(lo, (segments[n - 1][1] + start + 1) // 2))
        if n + 1 < len(segments):
            hi = max(end, min(hi, (end + segments[n + 1][0]) // 2))
        words[k].append((lo, hi))
    found: list[tuple[tuple[int, int], ...]] = []
    for spans in words:
        chars: list[tuple[int, int]] = []
        for lo, hi in spans:
            start = 0 if lo == 0 else tokens[lo].start()
            end = length if hi >= len(tokens) else tokens[hi - 1].end()
            if chars and start <= chars[-1][1]:
                chars[-1] = (chars[-1][0], max(end, chars[-1][1]))
            else:
                chars.append((start, end))
        found.append(tuple(chars))
    return found


# --- marks ------------------------------------------------------------------------------------


def _passage_text(leaked: str, passages: Sequence[tuple[int, int]]) -> str:
    return "\n\n".join(leaked[start:end] for start, end in passages)


def read_marks(leaked: str, matches: Sequence[Match]) -> dict[str, int | None]:
    """Every mark of every field of ``matches``: the bit its slot shows in the passages of
    ``leaked`` drawn from that source, or None where it cannot be read."""
    observed: dict[str, int | None] = {}
    for match in matches:
        passage = _passage_text(leaked, match.passages)
        for field in match.fields:
            slots = find_slots(field.text)
            if not slots:
                continue
            bits = read_bits(field.text, slots, passage)
            for slot, bit in zip(slots, bits, strict=True):
                observed[mark_key(match.object_id, match.version, field.field, slot.index)] = bit
    return observed


# --- the investigation ------------------------------------------------------------------------


def trace(
    secret: bytes,
    leaked: str,
    candidates: Iterable[Candidate | tuple[str, str, str, str]],
    recipients: Mapping[tuple[str, str], Iterable[str]],
    epsilon: float = 1e-3,
) -> Finding:
    """The investigation of ``leaked`` without a store: ``candidates`` are the disclosed
    texts, ``recipients`` the partners that received a fingerprinted copy of each
    ``(object id, version)``."""
    matches = find_sources(leaked, candidates)
    return _accuse(secret, leaked, matches, recipients, epsilon)


def investigate(
    connection: sa.Connection, secret: bytes, leaked: str, epsilon: float = 1e-3
) -> Finding:
    """Trace ``leaked`` to the partners whose copies it was made from: its sources among every
    object version this node disclosed, the marks read from them, and the accusation."""
    matches = find_sources(leaked, disclosed_texts(connection))
    return _accuse(secret, leaked, matches, recipients_of(connection, matches), epsilon)


def _accuse(
    secret: bytes,
    leaked: str,
    matches: Sequence[Match],
    recipients: Mapping[tuple[str, str], Iterable[str]],
    epsilon: float,
) -> Finding:
    """Read the marks of ``matches`` in ``leaked`` and score the partners that received them."""
    observed = read_marks(leaked, matches)
    partners = sorted({p for m in matches for p in recipients.get((m.object_id, m.version), ())})
    readable = {key: bit for key, bit in observed.items() if bit is not None}
    sources = tuple(
        Source(
            m.object_id,
            m.version,
            m.containment,
            sum(1 for key in readable if key.startswith(f"{m.object_id}|{m.version}|")),
        )
        for m in matches
    )
    if not partners:
        return Finding(sources, len(readable), float("inf"), epsilon, ())
    accusation = tardos.accuse(secret, partners, readable, epsilon)
    return Finding(
        sources, accusation.marks_read, accusation.threshold, epsilon, accusation.suspects
    )


def disclosed_texts(connection: sa.Connection, batch: int = 500) -> Iterator[Candidate]:
    """The text fields of every stored object version disclosed to some partner (a row in
    ``disclosures``), by object id and version, read ``batch`` versions at a time."""
    query = (
        sa.select(objects.c.id, objects.c.body)
        .where(
            sa.exists().where(
                disclosures.c.object_id == objects.c.id, disclosures.c.version == objects.c.version
            )
        )
        .order_by(objects.c.id, objects.c.version)
    )
    with connection.execution_options(yield_per=batch).execute(query) as rows:
        for object_id, text in rows:
            body = json.loads(text)
            version = marked_version(body)
            for field in text_fields(body):
                yield Candidate(object_id, version, field, body[field])


def recipients_of(
    connection: sa.Connection, matches: Sequence[Match]
) -> dict[tuple[str, str], set[str]]:
    """For each of ``matches``, the partners its ledger entries say received a copy
    fingerprinted with this code: only the entries of the matched objects are read."""
    recipients: dict[tuple[str, str], set[str]] = {}
    by_micros: dict[tuple[str, int], str] = {}  # the store's version keys (0: no timestamp)
    for m in matches:
        recipients[m.object_id, m.version] = set()
        by_micros[m.object_id, to_micros(m.version) if m.version else 0] = m.version
    for object_id in sorted({m.object_id for m in matches}):
        for entry in log.entries(connection, object_id=object_id, kind="disclosure"):
            content = entry.content
            version = by_micros.get((object_id, to_micros(content["version"])))
            scheme, _, code = str(content.get("fingerprint") or "").rpartition(":")
            if version is not None and scheme == tardos.SCHEME and code:
                recipients[object_id, version].add(content["partner"])
    return recipients


# --- reading the leaked file ------------------------------------------------------------------


def leaked_text(path: Path) -> str:
    """The text of a leaked file: plain text (as typed, or extracted from a PDF), an HTML page
    (its main text, by trafilatura), or STIX JSON (a bundle, an object or a list of objects:
    the text fields of every object, one after the other). InputError if it cannot be read."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InputError(f"{path} is larger than {MAX_DOCUMENT_BYTES:,} bytes")
    if b"\x00" in data[:8192]:
        raise InputError(f"{path} is a binary file: extract its text first (PDF: pdftotext)")
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None
    if not content.strip():
        raise InputError(f"{path} is empty")
    head = content[:1000].lstrip()
    if head.startswith(("{", "[")):
        text = _stix_text(content)
        if text is not None:
            return text
    if path.suffix.lower() in HTML_SUFFIXES or head.lower().startswith(("<!doctype html", "<html")):
        document = read_html(str(path), content)
        if isinstance(document, Failure):
            raise InputError(f"{path}: {document.error}")
        return document.text
    return content


def _stix_text(content: str) -> str | None:
    """The text fields of the STIX objects in ``content``; None when it is not STIX JSON."""
    try:
        data: Any = json.loads(content)
    except (ValueError, RecursionError):
        return None
    if isinstance(data, dict) and data.get("type") == "bundle":
        data = data.get("objects")
    objects = data if isinstance(data, list) else [data]
    if not objects or not all(isinstance(o, dict) and "type" in o for o in objects):
        return None
    return "\n\n".join(o[field] for o in objects for field in text_fields(o))
