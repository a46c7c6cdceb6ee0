"""Syncing with peer nodes: pulling what a peer lets this node read, pushing what this node
releases to the peer's partner.

**Pull**: each collection a peer lets this node read, from where the last pull stopped, into
the store through the same write path as a partner's POST.

For each readable collection the pull asks for pages of objects ``added_after`` the cursor
kept for that peer and collection, oldest first. Every object must carry its originator's
signature, checked with the keys pinned here (``stix.signature``): one that does not verify
is refused with the reason and never stored. The others go through ``importer`` as written
by the peer's partner, so the ownership rules hold across nodes: a peer may send only what
its own agency originated (a relayed third party's object is refused until consent exists,
issue 20), never a version of this node's objects. Each page is stored in one transaction,
then its cursor (the page's ``X-TAXII-Date-Added-Last``) is kept: a pull stopped at any point,
even killed, resumes at the last kept page and fetches at most that page again, which stores
nothing twice (a re-import of identical content is a no-op).

**Push**: to each collection the peer lets this node write, the versions this node
originated that its policy releases to the peer's partner, added since the last push, as
that partner's copies made by the release path (``release.deliver``: tearline, fingerprint,
signature, disclosures and ledger entries recorded before anything is sent). A push stopped
between recording and sending sends the same copies (the same bytes, the same ledger
entries) on the next run; the peer stores them once.

A peer that cannot be reached, refuses the credentials, or answers what is not a TAXII 2.1
envelope raises ``PeerFailed`` naming the peer and what went wrong; what earlier pages stored
or sent stays, with their cursor.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa

from liaison.errors import InvalidProof, LedgerTampered, LiaisonError, PeerFailed
from liaison.importer import import_objects
from liaison.ledger.audit import audit
from liaison.ledger.log import node_verifier
from liaison.ledger.note import Verifier
from liaison.ledger.receipts import LEDGER_ENTRIES_HEADER, verify_receipt
from liaison.ledger.receipts import MAX_ENTRIES as MAX_RECEIPT_ENTRIES
from liaison.node import Node, load_signing_key
from liaison.release.deliver import Delivery, deliver, node_keys
from liaison.stix.signature import pinned, signed_by_originator, verify
from liaison.stix.timestamps import now_micros
from liaison.store.alliance import public_keys
from liaison.store.engine import upsert, write_transaction
from liaison.store.ownership import STANDARD, version_of
from liaison.store.pages import GrantedVersion, PageQuery, page
from liaison.store.schema import partners, peer_cursors, peer_pushes, received_entries
from liaison.taxii.peers import LedgerCheck, Peer, get_peer, keep_ledger_check, peer_secret

TAXII = "application/taxii+json;version=2.1"
PAGE = 500  # objects asked for per request
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
MAX_PAGE_BYTES = 64 * 1024 * 1024  # a peer's page larger than this is refused
STATUS_WAIT = 300.0  # seconds a push waits for the peer to store what it sent


@dataclass
class Pulled:
    """What one pull of one collection did."""

    peer: str
    collection: str
    received: int = 0  # objects stored (new, or already held identically)
    refused: list[dict[str, str]] = field(default_factory=list)  # {id, reason}
    pages: int = 0
    cursor: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "collection": self.collection,
            "received": self.received,
            "refused": self.refused,
            "pages": self.pages,
            "cursor": self.cursor,
        }


@dataclass
class Pushed:
    """What one push to one collection did."""

    peer: str
    collection: str
    sent: int = 0  # copies the peer stored
    refused: list[dict[str, str]] = field(default_factory=list)  # {id, reason}: the peer's
    pages: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "collection": self.collection,
            "sent": self.sent,
            "refused": self.refused,
            "pages": self.pages,
        }


def pull(
    node: Node,
    name: str,
    *,
    transport: httpx.BaseTransport | None = None,
    on_page: Callable[[Pulled], None] | None = None,
) -> list[Pulled]:
    """Pull every collection peer ``name`` lets this node read. ``transport`` replaces the
    network (tests); ``on_page`` is told after each stored page (progress)."""
    with node.engine.connect() as connection:
        peer, password, cursors = _start(connection, node, name, peer_cursors.c.added_after)
        keys = pinned(public_keys(connection))
        key = keys.get(_identity(connection, peer.partner) or "")
    verifier = node_verifier(peer.partner, key) if key is not None else None
    with _client(peer, password, transport) as client:
        root = _api_root(client, peer)
        results = []
        for collection in _collections(client, peer, root, "can_read"):
            done = Pulled(peer.name, collection, cursor=cursors.get(collection))
            _pull_collection(node, client, peer, root, keys, verifier, done, on_page)
            results.append(done)
    return results


def _pull_collection(
    node: Node,
    client: httpx.Client,
    peer: Peer,
    root: str,
    keys: dict[str, Any],
    verifier: Verifier | None,
    done: Pulled,
    on_page: Callable[[Pulled], None] | None,
) -> None:
    while True:
        params: dict[str, Any] = {"limit": PAGE}
        if done.cursor:
            params["added_after"] = done.cursor
        response = _request(client, peer, f"{root}collections/{done.collection}/objects/", params)
        envelope = _envelope(response, peer)
        objects = envelope.get("objects", [])
        signed = []
        for obj in objects:
            if obj.get("id") in STANDARD:
                continue  # TLP 2.0's and the extensions' definitions: known here, never taken
            if node.identity_id in (obj.get("id"), obj.get("created_by_ref")):
                continue  # this node's own, given back by the peer: the original is here
            verdict = verify(obj, keys)
            if verdict.verified:
                signed.append(obj)
            else:
                done.refused.append({"id": str(obj.get("id")), "reason": verdict.reason or ""})
        if signed:
            report = import_objects(node.engine, signed, received_from=peer.partner)
            for status in report.statuses:
                if status.status == "rejected":
                    done.refused.append({"id": status.id, "reason": "; ".join(status.messages)})
                else:
                    done.received += 1
        entries = response.headers.get(LEDGER_ENTRIES_HEADER)
        if entries and verifier is not None and signed:
            _keep_receipts(node, client, peer, root, verifier, entries, signed)
        last = response.headers.get("X-TAXII-Date-Added-Last")
        if objects and last:
            _keep(node, peer_cursors, peer.name, done.collection, added_after=last)
            done.cursor = last
        done.pages += 1
        if on_page is not None:
            on_page(done)
        if not envelope.get("more") or not objects or not last:
            return


def _keep_receipts(
    node: Node,
    client: httpx.Client,
    peer: Peer,
    root: str,
    verifier: Verifier,
    header: str,
    pulled: list[dict[str, Any]],
) -> None:
    """Keep the peer's ledger entry of each version pulled (``received_entries``), proved by
    the peer's receipts: each entry included in a checkpoint signed with its pinned key. A
    receipt that does not verify fails the pull before its cursor moves."""
    seqs = [part.strip() for part in header.split(",") if part.strip().isdigit()]
    versions = {(o["id"], version_of(o)) for o in pulled}
    rows = []
    for start in range(0, len(seqs), MAX_RECEIPT_ENTRIES):
        chunk = ",".join(seqs[start : start + MAX_RECEIPT_ENTRIES])
        response = _request(client, peer, f"{root}ledger/receipts/", {"entry": chunk})
        document = _envelope(response, peer)
        try:
            checkpoint = verify_receipt(document, verifier)
            contents = [(item["seq"], json.loads(item["entry"])) for item in document["entries"]]
        except (InvalidProof, KeyError, TypeError, ValueError) as exc:
            raise PeerFailed(f"peer {peer.name}: its receipt does not verify ({exc})") from None
        for seq, content in contents:
            key = (content.get("object_id"), version_of({"modified": content.get("version")}))
            if content.get("kind") == "disclosure" and key in versions:
                rows.append(
                    {
                        "object_id": key[0],
                        "version": key[1],
                        "partner": peer.partner,
                        "entry": seq,
                        "tree_size": checkpoint.size,
                    }
                )
    if rows:
        with write_transaction(node.engine) as connection:
            connection.execute(upsert(connection, received_entries).on_conflict_do_nothing(), rows)


def push(
    node: Node,
    name: str,
    *,
    transport: httpx.BaseTransport | None = None,
    on_page: Callable[[Pushed], None] | None = None,
) -> list[Pushed]:
    """Push to every collection peer ``name`` lets this node write (see the module's
    docstring)."""
    keys = node_keys(node)
    with node.engine.connect() as connection:
        peer, password, cursors = _start(connection, node, name, peer_pushes.c.date_added)
    with _client(peer, password, transport) as client:
        root = _api_root(client, peer)
        results = []
        for collection in _collections(client, peer, root, "can_write"):
            done = Pushed(peer.name, collection)
            after = cursors.get(collection)
            while True:
                with node.engine.connect() as connection:
                    found = page(connection, peer.partner, PageQuery(added_after=after, limit=PAGE))
                    sendable = [v for v in found.versions if _pushed(v, node, peer)]
                    delivery = deliver(
                        node.engine, connection, peer.partner, sendable, keys, None, found.granted
                    )
                if delivery.copies:
                    _post(client, peer, root, collection, delivery, done)
                if found.versions:
                    after = found.versions[-1].date_added
                    _keep(node, peer_pushes, peer.name, collection, date_added=after)
                done.pages += 1
                if on_page is not None:
                    on_page(done)
                if not found.more:
                    break
            results.append(done)
    return results


def sync_round(
    node: Node,
    names: list[str],
    *,
    on_page: Callable[[str], None] | None = None,
    again: bool = True,
) -> list[dict[str, Any]]:
    """One sync with each of the peers ``names``: pull, push, check its ledger; then, with
    ``again``, push once more to each, so that onward notices made while pushing to one peer
    reach their originators' nodes whatever order the peers came in. Per peer, what
    ``liaison sync --json`` prints: what was received, refused, sent, the ledger check, or
    the error that stopped it (the other peers are still synced)."""
    results: list[dict[str, Any]] = []
    for name in names:

        def tick(_: object, name: str = name) -> None:
            if on_page is not None:
                on_page(name)

        try:
            pulled = pull(node, name, on_page=tick)
            pushed = push(node, name, on_page=tick)
            ledger = check_ledger(node, name)
        except LiaisonError as exc:
            results.append({"peer": name, "error": str(exc)})
            continue
        results.append(
            {
                "peer": name,
                "received": sum(p.received for p in pulled),
                "refused": [r for p in pulled for r in p.refused],
                "sent": sum(p.sent for p in pushed),
                "refused_by_peer": [r for p in pushed for r in p.refused],
                "checkpoint": ledger.as_json(),
                "collections": [p.as_json() for p in pulled],
                "pushed": [p.as_json() for p in pushed],
            }
        )
    for result in results if again and len(names) > 1 else ():
        if "error" in result:
            continue
        try:
            later = push(node, result["peer"])
        except LiaisonError as exc:
            result["error"] = str(exc)
            continue
        result["sent"] += sum(p.sent for p in later)
        result["refused_by_peer"] += [r for p in later for r in p.refused]
    return results


@dataclass
class Schedule:
    """When each peer is next due under ``liaison sync --watch``: every ``interval``
    seconds while it answers; after a failure, later and later (twice the wait after each
    failure in a row, at most ``longest``) until it answers again."""

    interval: float
    longest: float = 3600.0
    due: dict[str, float] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)

    def ready(self, names: list[str], now: float) -> list[str]:
        return [n for n in names if self.due.get(n, 0.0) <= now]

    def record(self, name: str, ok: bool, now: float) -> None:
        failed = 0 if ok else self.failures.get(name, 0) + 1
        self.failures[name] = failed
        self.due[name] = now + min(self.interval * 2**failed, max(self.longest, self.interval))

    def wait(self, names: list[str], now: float) -> float:
        """Seconds until the next peer is due."""
        return max(0.0, min(self.due.get(n, 0.0) for n in names) - now)


def check_ledger(
    node: Node, name: str, *, transport: httpx.BaseTransport | None = None
) -> LedgerCheck:
    """Fetch the peer's latest checkpoint, prove it consistent with the one held from the last
    sync (``ledger.audit``), keep it, and keep the verdict on the peer: "consistent",
    "rewritten" (its log no longer extends what it signed before: a ledger rewritten), or
    "unverified" (no checkpoint signed with its pinned key could be had)."""
    with node.engine.connect() as connection:
        peer, password, _ = _start(connection, node, name, peer_cursors.c.added_after)
        key = pinned(public_keys(connection)).get(_identity(connection, peer.partner) or "")
    size: int | None = None
    state, detail = "unverified", None
    if key is None:
        detail = f"no public key is pinned for {peer.partner}"
    else:
        verifier = node_verifier(peer.partner, key)
        with _client(peer, password, transport) as client:
            root = _api_root(client, peer)
        with (
            _client(peer, password, transport, base=str(httpx.URL(peer.url).join(root))) as client,
            write_transaction(node.engine) as connection,
        ):
            try:
                found = audit(connection, client, verifier)
                size, state = found.checkpoint.size, "consistent"
            except LedgerTampered as exc:
                state, detail = "rewritten", str(exc)
            except LiaisonError as exc:  # InvalidProof, or the peer did not answer
                detail = str(exc)
    check = LedgerCheck(size, state, detail, now_micros())
    with write_transaction(node.engine) as connection:
        keep_ledger_check(connection, peer.name, check)
    return check


def _identity(connection: sa.Connection, code: str) -> str | None:
    return connection.execute(
        sa.select(partners.c.identity_id).where(partners.c.code == code)
    ).scalar_one_or_none()


def _pushed(version: GrantedVersion, node: Node, peer: Peer) -> bool:
    """Whether a push sends ``version``: what this node originated, and another originator's
    signed objects the policy releases (with its consent) to a third agency; never TLP
    2.0's or the extensions' definitions, known there."""
    if version.object["id"] in STANDARD:
        return False
    if version.owner == node.country:
        return True
    return version.owner != peer.partner and signed_by_originator(version.object)


def _post(
    client: httpx.Client, peer: Peer, root: str, collection: str, delivery: Delivery, done: Pushed
) -> None:
    path = f"{root}collections/{collection}/objects/"
    try:
        response = client.post(
            path, content=delivery.body(b'{"more":false'), headers={"Content-Type": TAXII}
        )
    except httpx.HTTPError as exc:
        raise PeerFailed(f"peer {peer.name} at {peer.url}: {exc}") from None
    if response.status_code in (401, 403):
        raise PeerFailed(f"peer {peer.name} refused this node's credentials ({path})")
    if response.status_code != 202:
        raise PeerFailed(f"peer {peer.name} answered {response.status_code} to a POST to {path}")
    status = _envelope(response, peer)
    waited, pause = 0.0, 0.05
    while status.get("status") == "pending":
        # The peer validates and stores in the background: its status says when it is done.
        if waited > STATUS_WAIT:
            raise PeerFailed(f"peer {peer.name} had not stored a push after {STATUS_WAIT:.0f} s")
        time.sleep(pause)
        waited, pause = waited + pause, min(pause * 2, 2.0)
        status = _get(client, peer, f"{root}status/{status.get('id')}/")
    done.sent += int(status.get("success_count") or 0)
    for failure in status.get("failures") or []:
        if isinstance(failure, dict):
            done.refused.append(
                {"id": str(failure.get("id")), "reason": str(failure.get("message", ""))}
            )


def _start(
    connection: sa.Connection, node: Node, name: str, cursor: sa.Column[Any]
) -> tuple[Peer, str, dict[str, Any]]:
    """The peer, its password, and where each of its collections stopped (``cursor``: a
    column of ``peer_cursors`` or ``peer_pushes``)."""
    peer = get_peer(connection, name)
    secret = peer_secret(connection, load_signing_key(node.settings.home), name)
    table = cursor.table
    rows = connection.execute(
        sa.select(table.c.collection, cursor).where(table.c.peer == name)
    ).all()
    return peer, secret.password, dict(rows)


def _client(
    peer: Peer, password: str, transport: httpx.BaseTransport | None, base: str | None = None
) -> httpx.Client:
    return httpx.Client(
        base_url=base or peer.url,
        auth=httpx.BasicAuth(peer.username, password),
        headers={"Accept": TAXII},
        timeout=TIMEOUT,
        transport=transport,
        follow_redirects=False,
    )


def _keep(node: Node, table: sa.Table, peer: str, collection: str, **where: Any) -> None:
    """Keep where a pull (``peer_cursors``) or a push (``peer_pushes``) of one peer collection
    stopped, in a transaction of its own, after the page it follows is stored or sent."""
    values = {**where, "updated": now_micros()}
    with write_transaction(node.engine) as connection:
        statement = upsert(connection, table).values(peer=peer, collection=collection, **values)
        connection.execute(
            statement.on_conflict_do_update(index_elements=["peer", "collection"], set_=values)
        )


def _api_root(client: httpx.Client, peer: Peer) -> str:
    discovery = _get(client, peer, "/taxii2/")
    root = discovery.get("default") or next(iter(discovery.get("api_roots") or []), None)
    if not isinstance(root, str):
        raise PeerFailed(f"peer {peer.name}: its discovery names no API root")
    # Same origin only: a peer's discovery does not send our credentials elsewhere.
    base = httpx.URL(peer.url)
    url = base.join(root)
    if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
        raise PeerFailed(f"peer {peer.name}: its API root {root} is not on {peer.url}")
    return url.path if url.path.endswith("/") else url.path + "/"


def _collections(client: httpx.Client, peer: Peer, root: str, right: str) -> list[str]:
    """The ids of the peer's collections this node has ``right`` on (can_read, can_write)."""
    listed = _get(client, peer, f"{root}collections/").get("collections", [])
    return [
        c["id"]
        for c in listed
        if isinstance(c, dict) and c.get(right) is True and isinstance(c.get("id"), str)
    ]


def _get(client: httpx.Client, peer: Peer, path: str) -> dict[str, Any]:
    return _envelope(_request(client, peer, path, None), peer)


def _request(
    client: httpx.Client, peer: Peer, path: str, params: dict[str, Any] | None
) -> httpx.Response:
    try:
        response = client.get(path, params=params)
    except httpx.HTTPError as exc:
        raise PeerFailed(f"peer {peer.name} at {peer.url}: {exc}") from None
    if response.status_code in (401, 403):
        raise PeerFailed(f"peer {peer.name} refused this node's credentials ({path})")
    if response.status_code != 200:
        raise PeerFailed(f"peer {peer.name} answered {response.status_code} to {path}")
    if len(response.content) > MAX_PAGE_BYTES:
        raise PeerFailed(f"peer {peer.name}: an answer of {len(response.content):,} bytes")
    return response


def _envelope(response: httpx.Response, peer: Peer) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise PeerFailed(f"peer {peer.name} answered what is not TAXII JSON ({response.url.path})")
    objects = body.get("objects", [])
    if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
        raise PeerFailed(f"peer {peer.name}: 'objects' is not a list of objects")
    return body
