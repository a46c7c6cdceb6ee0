"""The TAXII 2.1 server (ASGI, FastAPI): each partner reads its own view of the node.

The path of a read: credentials -> partner; collection rights; one page of granted versions
(store.pages); tearline and reference cuts (policy.copies); disclosures recorded in the
same transaction (ledger.disclosures); response. No per-object policy work happens here.
"""

import base64
import binascii
import json
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any, NamedTuple

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from liaison.alliance import Collection
from liaison.errors import InputError, LiaisonError, SignInRefused
from liaison.fingerprint.copies import fingerprint_secret, mark
from liaison.importer import import_objects
from liaison.ledger import log, receipts
from liaison.ledger.disclosures import Disclosure, new_disclosures, record_disclosures
from liaison.ledger.log import SignedCheckpoint
from liaison.ledger.note import MAX_NOTE_SIZE
from liaison.node import Node, load_signing_key
from liaison.policy.copies import released_copies
from liaison.policy.decide import PolicyContext
from liaison.policy.grants import grants_expired, redecide_markings, refresh
from liaison.stix.parse import check_structure
from liaison.stix.timestamps import from_micros, now_micros, to_micros
from liaison.stix.validate import ValidatorProcess
from liaison.store.alliance import read_collections, read_communities
from liaison.store.engine import write_transaction
from liaison.store.objects import Versions, delete_versions
from liaison.store.pages import Page, PageQuery, page
from liaison.store.schema import statuses
from liaison.taxii.credentials import Authenticator, authenticator_for, client_address
from liaison.taxii.cursor import Cursors
from liaison.taxii.errors import TaxiiError, error_body
from liaison.taxii.media import TAXII_MEDIA_TYPE, accepts_taxii, is_taxii_content

API_ROOT = "api"
LEDGER_ENTRIES_HEADER = "X-Liaison-Ledger-Entries"
MAX_PAGE = 1000
DEFAULT_PAGE = 100


class Access(NamedTuple):
    """A collection and what one partner may do with it."""

    collection: Collection
    can_read: bool
    can_write: bool


class TaxiiResponse(JSONResponse):
    media_type = TAXII_MEDIA_TYPE


def _taxii_error(status: int, title: str, description: str = "") -> TaxiiResponse:
    headers = {"WWW-Authenticate": 'Basic realm="liaison"'} if status == 401 else None
    return TaxiiResponse(error_body(status, title, description), status, headers=headers)


def create_app(node: Node, authenticator: Authenticator | None = None) -> FastAPI:
    """The TAXII server of ``node``; ``authenticator`` (tests: a clock, a hasher) defaults to
    the one the node's settings describe."""
    app = FastAPI(
        title="Liaison TAXII 2.1",
        version="2.1",
        openapi_url="/taxii2/openapi.json",
        docs_url=None,
        redoc_url=None,
        default_response_class=TaxiiResponse,
    )
    sign_in = authenticator or authenticator_for(node.engine, node.settings)
    signing_key = load_signing_key(node.settings.home)
    private = signing_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    cursors = Cursors(private)
    fingerprints = fingerprint_secret(signing_key)
    verifier = log.node_verifier(node.country, node.public_key)
    settings = node.settings
    validator = ValidatorProcess()
    app.router.on_shutdown.append(validator.close)

    @app.exception_handler(TaxiiError)
    async def _taxii(_: Request, exc: TaxiiError) -> Response:
        return _taxii_error(exc.http_status, exc.title, exc.description)

    @app.exception_handler(LiaisonError)
    async def _liaison(_: Request, exc: LiaisonError) -> Response:
        status = exc.http_status if exc.http_status < 500 else 500
        text = str(exc) if status < 500 else "the server could not complete the request"
        return _taxii_error(status, exc.title, text)

    @app.exception_handler(SignInRefused)
    async def _refused(_: Request, exc: SignInRefused) -> Response:
        # Throttled (429) or every password-check slot busy (503): when to come back.
        body = error_body(exc.http_status, exc.title, str(exc))
        headers = {"Retry-After": str(exc.retry_after)}
        return TaxiiResponse(body, exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return _taxii_error(400, "Bad request", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        return _taxii_error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, __: Exception) -> Response:
        # Never echo the exception: it may name tables, paths or objects.
        return _taxii_error(500, "Internal error", "the server could not complete the request")

    def connection() -> Iterator[sa.Connection]:
        with node.engine.connect() as conn:
            yield conn

    def partner(request: Request, conn: Annotated[sa.Connection, Depends(connection)]) -> str:
        if not accepts_taxii(request.headers.get("accept")):
            raise TaxiiError(406, "Not acceptable", f"this server speaks {TAXII_MEDIA_TYPE}")
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        found: str | None = None
        peer = request.client.host if request.client else ""
        # Failures count per address too: a trusted proxy's X-Forwarded-For names it.
        address = client_address(
            peer, request.headers.getlist("x-forwarded-for"), settings.trusted_proxies
        )
        if scheme.lower() == "basic":
            try:
                username, _, password = (
                    base64.b64decode(value, validate=True).decode().partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                username, password = "", ""
            # Throttled (429) or busy (503) raise SignInRefused before any secret is checked.
            found = sign_in.basic(conn, username, password, address)
        elif scheme.lower() == "bearer":
            found = sign_in.bearer(conn, value.strip(), address)
        elif not header and settings.client_cert_header:
            # Mutual TLS, terminated by a proxy that passes the verified certificate's
            # fingerprint; only proxies the node trusts may speak for a client.
            presented = request.headers.get(settings.client_cert_header, "")
            if presented and peer in settings.trusted_proxies:
                found = sign_in.certificate(conn, presented)
        if found is None:
            raise TaxiiError(401, "Unauthorized", "valid credentials are required")
        return found

    Partner = Annotated[str, Depends(partner)]
    Conn = Annotated[sa.Connection, Depends(connection)]

    def access(conn: sa.Connection, code: str) -> dict[str, Access]:
        """Every collection with whether ``code`` may read and write it (one read of the
        collections and communities per request)."""
        context = PolicyContext(node.country, {}, tuple(read_communities(conn)))
        names = context.communities_of(code, date.today()) | {code}
        return {
            c.id: Access(c, bool(names & set(c.read)), bool(names & set(c.write)))
            for c in read_collections(conn)
        }

    def collection_for(conn: sa.Connection, code: str, collection_id: str) -> Access:
        entry = access(conn, code).get(collection_id)
        if entry is not None and (entry.can_read or entry.can_write):
            return entry
        # Unknown and forbidden look the same: a partner learns nothing of the others.
        raise TaxiiError(404, "Collection not found", f"no collection {collection_id}")

    def collection_resource(entry: Access) -> dict[str, Any]:
        c, can_read, can_write = entry
        return {
            "id": c.id,
            "title": c.title,
            "description": c.description,
            "alias": c.alias,
            "can_read": can_read,
            "can_write": can_write,
            "media_types": ["application/stix+json;version=2.1"],
        }

    @app.get("/taxii2/")
    def discovery(request: Request, _: Partner) -> dict[str, Any]:
        root = str(request.base_url).rstrip("/")
        return {
            "title": f"Liaison node {node.country}",
            "description": f"{node.name}: TAXII 2.1 for partner agencies",
            "default": f"{root}/{API_ROOT}/",
            "api_roots": [f"{root}/{API_ROOT}/"],
        }

    @app.get(f"/{API_ROOT}/")
    def api_root(_: Partner) -> dict[str, Any]:
        return {
            "title": f"Liaison {node.country}",
            "description": "Intelligence released to you under your agency's grants",
            "versions": [TAXII_MEDIA_TYPE],
            "max_content_length": node.settings.limits.max_bytes,
        }

    @app.get(f"/{API_ROOT}/collections/")
    def list_collections(code: Partner, conn: Conn) -> dict[str, Any]:
        visible = [
            collection_resource(entry)
            for entry in access(conn, code).values()
            if entry.can_read or entry.can_write
        ]
        return {"collections": visible} if visible else {}

    @app.get(f"/{API_ROOT}/collections/{{collection_id}}/")
    def get_collection(collection_id: str, code: Partner, conn: Conn) -> dict[str, Any]:
        return collection_resource(collection_for(conn, code, collection_id))

    def page_query(
        collection: Collection,
        added_after: str | None,
        limit: int | None,
        match_id: str | None,
        match_type: str | None,
        match_version: str | None,
        match_spec_version: str | None,
        after: int | None = None,
    ) -> PageQuery:
        types = _split(match_type)
        if collection.types:
            types = tuple(t for t in types if t in collection.types) if types else collection.types
            if not types:
                types = ("-none-",)
        start = _timestamp("added_after", added_after) if added_after else None
        if after is not None:
            start = after if start is None else max(start, after)
        return PageQuery(
            types=types,
            ids=_split(match_id),
            versions=_versions(match_version),
            spec_versions=_split(match_spec_version),
            added_after=start,
            limit=min(limit or DEFAULT_PAGE, MAX_PAGE),
        )

    def scope(code: str, collection: Collection, request: Request) -> str:
        params = sorted((k, v) for k, v in request.query_params.multi_items() if k != "next")
        return json.dumps([code, collection.id, params])

    def headers_of(result: Page) -> dict[str, str]:
        if not result.versions:
            return {}
        return {
            "X-TAXII-Date-Added-First": from_micros(result.versions[0].date_added),
            "X-TAXII-Date-Added-Last": from_micros(result.versions[-1].date_added),
        }

    def read_page(
        code: str, entry: Access, request: Request, conn: sa.Connection, **filters: Any
    ) -> tuple[Page, str | None]:
        collection = entry.collection
        if not entry.can_read:
            raise TaxiiError(403, "Forbidden", "you may not read this collection")
        if grants_expired(conn):
            # A membership date has passed since the grants were decided.
            with write_transaction(node.engine) as writer:
                refresh(writer)
            conn.commit()  # read the new grants, not this transaction's snapshot
        next_cursor = filters.pop("next_cursor")
        after = cursors.read(scope(code, collection, request), next_cursor) if next_cursor else None
        result = page(conn, code, page_query(collection, after=after, **filters))
        token = (
            cursors.make(scope(code, collection, request), result.versions[-1].date_added)
            if result.more
            else None
        )
        return result, token

    def envelope(
        code: str, result: Page, token: str | None, conn: sa.Connection
    ) -> tuple[bytes, list[Disclosure]]:
        copies = released_copies(conn, code, result.versions)
        pieces, delivered = [], []
        for copy in copies:
            # The partner's own wording, after the tearline and before the hash is taken.
            marked = mark(copy.object, code, fingerprints)
            if marked.object is copy.source.object and copy.source.text:
                data = copy.source.text.encode()  # nothing changed: the stored text is the copy
            else:
                data = marked.data()
            pieces.append(data)
            delivered.append(
                Disclosure(
                    code,
                    copy.object["id"],
                    copy.source.version,
                    copy.source.release_class,
                    data,
                    marked.fingerprint,
                )
            )
        head: dict[str, Any] = {"more": result.more}
        if token:
            head["next"] = token
        prefix = json.dumps(head, separators=(",", ":"))[:-1].encode()
        body = prefix + (b',"objects":[' + b",".join(pieces) + b"]}" if pieces else b"}")
        return body, delivered

    Filters = dict[str, Any]

    def filters(
        added_after: Annotated[str | None, Query()] = None,
        limit: Annotated[int | None, Query(ge=1)] = None,
        next_cursor: Annotated[str | None, Query(alias="next")] = None,
        match_id: Annotated[str | None, Query(alias="match[id]")] = None,
        match_type: Annotated[str | None, Query(alias="match[type]")] = None,
        match_version: Annotated[str | None, Query(alias="match[version]")] = None,
        match_spec_version: Annotated[str | None, Query(alias="match[spec_version]")] = None,
    ) -> Filters:
        return {
            "added_after": added_after,
            "limit": limit,
            "next_cursor": next_cursor,
            "match_id": match_id,
            "match_type": match_type,
            "match_version": match_version,
            "match_spec_version": match_spec_version,
        }

    QueryFilters = Annotated[Filters, Depends(filters)]

    def deliver(code: str, result: Page, token: str | None, conn: sa.Connection) -> Response:
        body, delivered = envelope(code, result, token, conn)
        first_time, entries = new_disclosures(conn, delivered)
        if first_time:
            # Recorded, in the ledger too, before anything is sent: if the write fails,
            # nothing is delivered. Copies already recorded need no write, so repeated reads
            # never queue behind writers.
            with write_transaction(node.engine) as writer:
                entries += record_disclosures(writer, first_time)
        headers = headers_of(result)
        if entries:
            # Where this page's copies are in the ledger: what to ask a receipt for.
            headers[LEDGER_ENTRIES_HEADER] = ",".join(map(str, sorted(set(entries))))
        return Response(body, 200, headers=headers, media_type=TAXII_MEDIA_TYPE)

    @app.get(f"/{API_ROOT}/collections/{{collection_id}}/objects/")
    def get_objects(
        collection_id: str, request: Request, code: Partner, conn: Conn, query: QueryFilters
    ) -> Response:
        entry = collection_for(conn, code, collection_id)
        result, token = read_page(code, entry, request, conn, **query)
        return deliver(code, result, token, conn)

    @app.get(f"/{API_ROOT}/collections/{{collection_id}}/objects/{{object_id}}/")
    def get_object(
        collection_id: str,
        object_id: str,
        request: Request,
        code: Partner,
        conn: Conn,
        query: QueryFilters,
    ) -> Response:
        entry = collection_for(conn, code, collection_id)
        if query["match_id"] is not None:
            raise TaxiiError(400, "Bad request", "match[id] is not allowed on an object")
        query["match_id"] = object_id
        result, token = read_page(code, entry, request, conn, **query)
        if not result.versions:
            raise TaxiiError(404, "Object not found", f"no object {object_id} for you here")
        return deliver(code, result, token, conn)

    @app.get(f"/{API_ROOT}/collections/{{collection_id}}/manifest/")
    def get_manifest(
        collection_id: str, request: Request, code: Partner, conn: Conn, query: QueryFilters
    ) -> Response:
        entry = collection_for(conn, code, collection_id)
        result, token = read_page(code, entry, request, conn, **query)
        # What the objects endpoint would leave out (incomplete copies) is not listed either.
        entries = [
            {
                "id": v.object["id"],
                "date_added": from_micros(v.date_added),
                "version": v.object.get("modified")
                or v.object.get("created")
                or from_micros(v.date_added),
                "media_type": "application/stix+json;version=2.1",
            }
            for v in (c.source for c in released_copies(conn, code, result.versions))
        ]
        body: dict[str, Any] = {"more": result.more}
        if token:
            body["next"] = token
        if entries:
            body["objects"] = entries
        return TaxiiResponse(body, headers=headers_of(result))

    @app.get(f"/{API_ROOT}/collections/{{collection_id}}/objects/{{object_id}}/versions/")
    def get_versions(
        collection_id: str,
        object_id: str,
        request: Request,
        code: Partner,
        conn: Conn,
        query: QueryFilters,
    ) -> Response:
        entry = collection_for(conn, code, collection_id)
        for name in ("match_id", "match_type", "match_version"):
            if query[name] is not None:
                raise TaxiiError(400, "Bad request", f"{name} is not allowed on versions")
        query["match_id"], query["match_version"] = object_id, "all"
        result, token = read_page(code, entry, request, conn, **query)
        sent = [c.source for c in released_copies(conn, code, result.versions)]
        if not sent and not query["next_cursor"] and not query["added_after"]:
            raise TaxiiError(404, "Object not found", f"no object {object_id} for you here")
        body: dict[str, Any] = {"more": result.more}
        if token:
            body["next"] = token
        if sent:
            body["versions"] = [
                v.object.get("modified") or v.object.get("created") or from_micros(v.date_added)
                for v in sent
            ]
        return TaxiiResponse(body, headers=headers_of(result))

    @app.post(f"/{API_ROOT}/collections/{{collection_id}}/objects/", status_code=202)
    async def post_objects(collection_id: str, request: Request, code: Partner) -> Response:
        with node.engine.connect() as conn:
            entry = collection_for(conn, code, collection_id)
        if not entry.can_write:
            raise TaxiiError(403, "Forbidden", "you may not write to this collection")
        if not is_taxii_content(request.headers.get("content-type")):
            raise TaxiiError(415, "Unsupported media type", f"send {TAXII_MEDIA_TYPE}")
        limits = node.settings.limits
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limits.max_bytes:
                raise TaxiiError(413, "Payload too large", f"the limit is {limits.max_bytes} bytes")
        # Validation and the write block: keep them off the event loop.
        return await run_in_threadpool(post_envelope, code, entry.collection, bytes(body))

    def post_envelope(code: str, collection: Collection, data: bytes) -> Response:
        try:
            document = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise TaxiiError(400, "Bad request", "the body is not a JSON envelope") from None
        check_structure(document, node.settings.limits)
        if not isinstance(document, dict) or not isinstance(document.get("objects"), list):
            raise TaxiiError(400, "Bad request", "expected an envelope with an objects list")
        accepted, refused = [], []
        for obj in document["objects"]:
            problem = _refusal(obj, collection)
            if problem:
                refused.append({"id": _id_of(obj), "message": problem})
            else:
                accepted.append(obj)
        report = import_objects(node.engine, accepted, received_from=code, validate=validator)
        status = report.as_taxii_status()
        status["id"] = str(uuid.uuid4())
        status["failures"] += refused
        status["failure_count"] += len(refused)
        status["total_count"] += len(refused)
        with write_transaction(node.engine) as conn:
            conn.execute(
                statuses.insert().values(
                    id=status["id"], partner=code, body=json.dumps(status), created=now_micros()
                )
            )
        return TaxiiResponse(status, 202)

    @app.get(f"/{API_ROOT}/status/{{status_id}}/")
    def get_status(status_id: str, code: Partner, conn: Conn) -> dict[str, Any]:
        row = conn.execute(
            sa.select(statuses.c.body).where(statuses.c.id == status_id, statuses.c.partner == code)
        ).first()
        if row is None:
            raise TaxiiError(404, "Status not found", f"no status {status_id}")
        return json.loads(row.body)

    # --- the ledger extension (docs/ledger.md): checkpoints, receipts, consistency ---

    def current_checkpoint() -> SignedCheckpoint:
        with node.engine.connect() as conn:
            latest = log.latest_checkpoint(conn)
            if latest is not None and latest.checkpoint.size == log.tree_size(conn):
                return latest
        with write_transaction(node.engine) as writer:
            return log.checkpoint(writer, node.country, signing_key)

    @app.get(f"/{API_ROOT}/ledger/checkpoint/")
    def get_checkpoint(_: Partner) -> dict[str, Any]:
        signed = current_checkpoint()
        return {
            "checkpoint": signed.note,
            "origin": signed.checkpoint.origin,
            "tree_size": signed.checkpoint.size,
            "verifier_key": verifier.vkey,
        }

    @app.get(f"/{API_ROOT}/ledger/receipts/")
    def get_receipt(
        code: Partner, conn: Conn, entries: Annotated[str, Query(alias="entry")]
    ) -> dict[str, Any]:
        try:
            seqs = [int(part) for part in entries.split(",") if part.strip()]
        except ValueError:
            raise TaxiiError(400, "Bad request", "entry is a comma-separated list") from None
        if not seqs or len(seqs) > receipts.MAX_ENTRIES:
            raise TaxiiError(400, "Bad request", f"ask for 1 to {receipts.MAX_ENTRIES} entries")
        signed = current_checkpoint()
        conn.commit()  # see the checkpoint just written
        return receipts.receipt(conn, code, seqs, signed)

    @app.get(f"/{API_ROOT}/ledger/consistency/")
    def get_consistency(
        _: Partner,
        conn: Conn,
        first: Annotated[int, Query(ge=1)],
        second: Annotated[int, Query(ge=1)],
    ) -> dict[str, Any]:
        proof = log.consistency_proof(conn, first, second)
        return {
            "first": first,
            "second": second,
            "consistency_proof": [base64.b64encode(h).decode() for h in proof],
        }

    @app.post(f"/{API_ROOT}/ledger/cosignatures/")
    async def post_cosignature(request: Request, code: Partner) -> dict[str, Any]:
        if not is_taxii_content(request.headers.get("content-type")):
            raise TaxiiError(415, "Unsupported media type", f"send {TAXII_MEDIA_TYPE}")
        data = await request.body()
        if len(data) > MAX_NOTE_SIZE:
            raise TaxiiError(413, "Payload too large", "a cosigned checkpoint is small")
        try:
            note = json.loads(data)["checkpoint"]
            if not isinstance(note, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise TaxiiError(400, "Bad request", 'send {"checkpoint": "<cosigned note>"}') from None

        def store() -> list[str]:
            with write_transaction(node.engine) as writer:
                return log.add_cosignature(writer, code, note)

        return {"witnesses": await run_in_threadpool(store)}

    @app.delete(f"/{API_ROOT}/collections/{{collection_id}}/objects/{{object_id}}/")
    def delete_object(
        collection_id: str,
        object_id: str,
        code: Partner,
        match_version: Annotated[str | None, Query(alias="match[version]")] = None,
    ) -> Response:
        # Without match[version], every version goes (TAXII 2.1, 5.7).
        versions = _versions(match_version, default=Versions(last=False, all=True))
        with write_transaction(node.engine) as conn:
            if not collection_for(conn, code, collection_id).can_write:
                raise TaxiiError(403, "Forbidden", "you may not delete from this collection")
            # A partner deletes only versions it owns: never the node's or a third party's.
            deleted = delete_versions(conn, code, object_id, versions)
            # A deleted marking definition is unknown from now on: what it marks is withheld.
            redecide_markings(conn, [object_id] if deleted else [])
        if not deleted:
            raise TaxiiError(404, "Object not found", f"no object {object_id} from you here")
        return Response(status_code=200, media_type=TAXII_MEDIA_TYPE)

    return app


def _id_of(obj: Any) -> str:
    return obj.get("id", "?") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else "?"


def _refusal(obj: Any, collection: Collection) -> str | None:
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        return "not a STIX object"
    if not isinstance(obj.get("id"), str):
        return "no id"
    if collection.types and obj["type"] not in collection.types:
        return f"this collection does not hold {obj['type']} objects"
    return None


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else ()


def _timestamp(name: str, value: str) -> int:
    try:
        return to_micros(value)
    except ValueError:
        raise InputError(f"{name} is not a timestamp: {value!r}") from None


def _versions(value: str | None, default: Versions | None = None) -> Versions:
    """``match[version]``: any mix of ``first``, ``last``, ``all`` and timestamps."""
    parts = _split(value)
    if not parts:
        return default or Versions()
    keywords = {"first", "last", "all"}
    return Versions(
        first="first" in parts,
        last="last" in parts,
        all="all" in parts,
        at=tuple(
            sorted({_timestamp("match[version]", p) for p in parts if p not in keywords})
        ),
    )


def app_from_env() -> FastAPI:
    """The server of the node the environment names: the factory uvicorn's worker processes
    call (`liaison serve --workers N`), each opening the store for itself."""
    from liaison.node import open_node
    from liaison.settings import Settings

    return create_app(open_node(Settings.from_env()))
