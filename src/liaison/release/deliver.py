"""A page of granted versions made into one partner's copies, recorded, then sent.

The steps, in this order:

1. the copies (``policy.copies.released_copies``): the grant's tearline applied, references to
   what the partner may not see cut, incomplete copies left out;
2. the partner's fingerprint written into each copy's prose (``fingerprint.copies.mark``),
   with the slots of each text read from the store (``fingerprint.prepared``) and found only
   for texts not prepared yet;
3. the node's signature on each copy of what it originated, over the copy as sent
   (``stix.signature``; not on the standard definitions, TLP 2.0's and the extensions',
   which nobody takes from a partner); another originator's signed object goes whole as
   it was received, unmarked, so that its signature holds wherever it is relayed
   (docs/consent.md), and a cut copy of it goes without that signature;
4. the disclosures not recorded yet (that exact copy has not gone to that partner), and for
   another originator's object passed on, a notice to its originator (``release.onward``).

Transaction boundary: steps 1-4 read in the caller's connection (one snapshot, the one the
page was read in). Then, only if a copy goes to its partner for the first time or slots
were found, one write transaction records the disclosures and their ledger entries
(``ledger.disclosures.record_disclosures``, which locks the ledger's head and looks again)
and keeps the slots. It commits before :func:`deliver` returns; if it fails, ``deliver``
raises and nothing is sent. A repeated copy writes nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from liaison.fingerprint.copies import fingerprint_secret, mark
from liaison.fingerprint.prepared import SlotBook, keep, object_texts
from liaison.ledger.disclosures import (
    Disclosure,
    entries_of,
    new_disclosures,
    record_disclosures,
)
from liaison.node import Node, load_signing_key
from liaison.policy.copies import ReleasedCopy, VersionFacts, released_copies
from liaison.release.onward import make_notices, noticed
from liaison.stix.signature import Signer, sign, signed_by_originator, unsigned
from liaison.store.engine import write_transaction
from liaison.store.objects import stored_text
from liaison.store.ownership import STANDARD
from liaison.store.pages import Granted, GrantedVersion


@dataclass(frozen=True)
class Keys:
    """What a delivery needs of the node's keys (``node_keys``)."""

    fingerprints: bytes  # the fingerprint secret
    signer: Signer  # the node's identity and signing key
    country: str  # the node's country: the owner of what it originated


@dataclass(frozen=True)
class Copy:
    """One object version as it goes to the partner."""

    released: ReleasedCopy  # the version, its cut fields and references
    data: bytes  # the exact bytes sent (and hashed in the ledger)
    fingerprint: str | None  # "<scheme>:<code id>"; None when the copy carries no marks
    marks: int

    @property
    def object_id(self) -> str:
        return self.released.source.id


@dataclass(frozen=True)
class Delivery:
    copies: list[Copy]
    entries: list[int]  # the ledger entries of these copies, recorded now or before

    def body(self, head: bytes) -> bytes:
        """A TAXII envelope: ``head`` is the JSON object's opening members without the
        closing brace (``{"more":false``); the copies are spliced in as they are."""
        if not self.copies:
            return head + b"}"
        return head + b',"objects":[' + b",".join(c.data for c in self.copies) + b"]}"


# (partner, object id, version, cut fields, cut references): what a copy's bytes depend on,
# given the node's keys.
CopyKey = tuple[str, str, int, tuple[str, ...], tuple[str, ...]]


class CopyCache:
    """The bytes of recently delivered copies, at most ``budget`` bytes of them: a repeated
    page is served from here instead of being marked and encoded again. A copy's bytes depend
    only on its key (and the node's keys, fixed for a cache's life), so an entry never goes stale;
    what the partner may see is decided anew on every request before the cache is asked.
    ``facts`` remembers what the versions delivered point at, for the same reason."""

    def __init__(self, budget: int = 32 * 1024 * 1024) -> None:
        self.facts = VersionFacts()
        self._budget = budget
        self._used = 0
        self._entries: OrderedDict[CopyKey, tuple[bytes, str | None, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: CopyKey) -> tuple[bytes, str | None, int] | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: CopyKey, value: tuple[bytes, str | None, int]) -> None:
        with self._lock:
            if key in self._entries or len(value[0]) > self._budget:
                return
            self._entries[key] = value
            self._used += len(value[0])
            while self._used > self._budget:
                _, (data, _, _) = self._entries.popitem(last=False)
                self._used -= len(data)


def node_keys(node: Node) -> Keys:
    """The keys a delivery from ``node`` uses, all from its signing key."""
    key = load_signing_key(node.settings.home)
    return Keys(fingerprint_secret(key), Signer(node.identity_id, key), node.country)


def _key(partner: str, r: ReleasedCopy) -> CopyKey:
    return (partner, r.source.id, r.source.version, r.cut_fields, r.cut_references)


def listed(
    connection: sa.Connection,
    partner: str,
    versions: Sequence[GrantedVersion],
    cache: CopyCache | None = None,
    granted: Granted | None = None,
) -> list[GrantedVersion]:
    """Of ``versions``, those whose copy would be sent (a manifest or a version list names
    only what the objects endpoint would deliver)."""
    facts = cache.facts if cache else None
    released = released_copies(connection, partner, versions, facts, granted)
    return [c.source for c in released]


def deliver(
    engine: sa.Engine,
    connection: sa.Connection,
    partner: str,
    versions: Sequence[GrantedVersion],
    keys: Keys,
    cache: CopyCache | None = None,
    granted: Granted | None = None,
) -> Delivery:
    """``partner``'s copies of ``versions``, recorded in the ledger before they are returned
    (see the module's docstring for the transaction boundary). ``cache`` (one per set of
    keys) keeps the bytes of copies made, for the next time; ``granted``: the partner's
    grants as the versions were read (``Page.granted``), or read again here."""
    facts = cache.facts if cache else None
    released = released_copies(connection, partner, versions, facts, granted)
    cached = {
        i: found for i, r in enumerate(released) if cache and (found := cache.get(_key(partner, r)))
    }
    # Another originator's signed objects: each goes on as received where nothing is cut (its
    # signature must hold at the next node, so this node does not mark it), and a cut copy
    # of one can no longer carry that signature.
    foreign = {
        i
        for i, r in enumerate(released)
        if i not in cached
        and r.source.owner != keys.country
        and signed_by_originator(r.source.object)
    }
    whole = {i for i in foreign if released[i].cut is None}
    texts = (
        t
        for i, r in enumerate(released)
        if i not in cached and i not in whole
        for t in object_texts(r.object)
    )
    book = SlotBook(connection, texts)
    copies: list[Copy] = []
    for i, r in enumerate(released):
        if i in cached:
            copies.append(Copy(r, *cached[i]))
            continue
        if i in whole:
            copies.append(Copy(r, r.source.text.encode(), None, 0))
            continue
        marked = mark(
            unsigned(r.object) if i in foreign else r.object, partner, keys.fingerprints, book
        )
        if r.source.owner == keys.country and r.object["id"] not in STANDARD:
            data = stored_text(sign(marked.object, keys.signer)).encode()
        elif marked.object is r.source.object:
            data = r.source.text.encode()  # nothing changed: the stored text is the copy
        else:
            data = stored_text(marked.object).encode()
        copies.append(Copy(r, data, marked.fingerprint, marked.marks))
    delivered = [
        Disclosure(
            partner,
            c.object_id,
            c.released.source.version,
            c.released.source.release_class,
            c.data,
            c.fingerprint,
        )
        for c in copies
    ]
    first_time, entries = new_disclosures(connection, delivered)
    if first_time or book.found:
        with write_transaction(engine) as writer:
            entries += record_disclosures(writer, first_time)
            keep(writer, book.found)
            # Another originator's object passed on for the first time: tell its originator.
            new = set(first_time)
            relayed = [
                (c.released.source, d)
                for c, d in zip(copies, delivered, strict=True)
                if d in new and noticed(c.released.source, keys.country, partner)
            ]
            if relayed:
                seqs = entries_of(writer, [d for _, d in relayed])
                make_notices(
                    writer,
                    keys.signer,
                    keys.country,
                    partner,
                    [
                        (v, seq)
                        for (v, _), seq in zip(relayed, seqs, strict=True)
                        if seq is not None
                    ],
                )
    if cache is not None:
        for i, c in enumerate(copies):
            if i not in cached:
                cache.put(_key(partner, c.released), (c.data, c.fingerprint, c.marks))
    return Delivery(copies, sorted(set(entries)))
