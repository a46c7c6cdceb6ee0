"""Same story, and how many independent sources tell it.

Two documents are about the same story when their texts are near-duplicates (MinHash over
word 3-shingles, datasketch's LSH, estimated Jaccard >= ``NEAR_DUPLICATE``), or when they
were published within ``SAME_DAYS`` days of each other and share at least ``SHARED_ENTITIES``
entities, with a Jaccard similarity of their entity sets of at least ``ENTITY_OVERLAP`` (two
outlets' accounts of one summit: different words, the same people, places and day). Both
searches use LSH, so the cost grows with the number of documents, not its square. Stories are
the connected groups of such pairs.

Corroboration counts the distinct sources in a story; the Admiralty credibility follows
(:func:`credibility`): one source "cannot be judged" (6), two independent sources "probably
true" (2), three or more "confirmed by other sources" (1).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from datasketch import LeanMinHash, MinHash, MinHashLSH

NEAR_DUPLICATE = 0.5
SAME_DAYS = 2
SHARED_ENTITIES = 3
ENTITY_OVERLAP = 0.4
_PERMUTATIONS = 64
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class StoryInput:
    key: str  # the report id
    signature: MinHash  # of the text's word 3-shingles: signature_of(text)
    entities: frozenset[str]
    published: datetime | None  # only a date the document states
    source: str


def _minhash(features: Iterable[str]) -> MinHash:
    signature = MinHash(num_perm=_PERMUTATIONS)
    signature.update_batch([f.encode() for f in features])
    return signature


def _shingles(text: str) -> set[str]:
    words = _WORD.findall(text.lower())
    return {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}


def signature_of(text: str) -> MinHash:
    """The MinHash of ``text``: all that grouping keeps of a document's words (lean: without
    the permutations every MinHash otherwise carries)."""
    return LeanMinHash(_minhash(_shingles(text)))


def _related(a: StoryInput, b: StoryInput) -> bool:
    if a.published is None or b.published is None:
        return False
    if abs((a.published - b.published).total_seconds()) > SAME_DAYS * 86_400:
        return False
    shared = len(a.entities & b.entities)
    union = len(a.entities | b.entities)
    return shared >= SHARED_ENTITIES and shared >= ENTITY_OVERLAP * union


def stories(items: Sequence[StoryInput]) -> list[list[str]]:
    """The stories told by more than one document: lists of keys, each in input order."""
    parent = {item.key: item.key for item in items}

    def find(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def join(a: str, b: str) -> None:
        parent[find(a)] = find(b)

    texts = MinHashLSH(threshold=NEAR_DUPLICATE * 0.6, num_perm=_PERMUTATIONS)
    # LSH only proposes candidates; a low threshold keeps it from missing true pairs, and
    # each candidate is then checked exactly.
    entities = MinHashLSH(threshold=ENTITY_OVERLAP / 2, num_perm=_PERMUTATIONS)
    seen: dict[str, StoryInput] = {}  # each key once, in input order
    for item in items:
        if item.key in seen:
            continue
        signature = item.signature
        for other in texts.query(signature):
            if signature.jaccard(seen[other].signature) >= NEAR_DUPLICATE:
                join(item.key, other)
        if len(item.entities) >= SHARED_ENTITIES:
            entity_signature = _minhash(item.entities)
            for other in entities.query(entity_signature):
                if _related(item, seen[other]):
                    join(item.key, other)
            entities.insert(item.key, entity_signature)
        texts.insert(item.key, signature)
        seen[item.key] = item
    members: dict[str, list[str]] = {}
    for key in seen:
        members.setdefault(find(key), []).append(key)
    return [keys for keys in members.values() if len(keys) > 1]


def credibility(independent_sources: int) -> int:
    """The Admiralty information credibility of a story told by this many sources."""
    if independent_sources >= 3:
        return 1
    if independent_sources == 2:
        return 2
    return 6
