"""The TAXII 2.1 endpoints: discovery, API root, collections, objects, manifest, versions,
status. Each is a module-level function over the request's :class:`TaxiiContext`; what a
partner receives is made by the release path (``liaison.release``), never here."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from liaison.alliance import Collection
from liaison.errors import InputError
from liaison.importer import import_objects
from liaison.ledger.receipts import LEDGER_ENTRIES_HEADER
from liaison.policy.grants import redecide_markings
from liaison.release.deliver import deliver, listed
from liaison.release.rights import Access, Rights, read_rights
from liaison.stix.parse import check_structure
from liaison.stix.timestamps import from_micros, now_micros, to_micros
from liaison.store.engine import write_transaction
from liaison.store.objects import Versions, delete_versions
from liaison.store.pages import Page, PageQuery, page
from liaison.store.schema import statuses
from liaison.taxii.auth import Partner, connection
from liaison.taxii.context import TaxiiContext, context_of
from liaison.taxii.errors import TaxiiError
from liaison.taxii.media import TAXII_MEDIA_TYPE, is_taxii_content

API_ROOT = "api"
MAX_PAGE = 1000
DEFAULT_PAGE = 100

router = APIRouter()


class TaxiiResponse(JSONResponse):
    media_type = TAXII_MEDIA_TYPE


# --- rights ---------------------------------------------------------------------------------


def rights_of(request: Request, conn: sa.Connection, code: str) -> Rights:
    context = context_of(request)
    return context.rights.of(context.node.engine, conn, code)


def collection_for(rights: Rights, collection_id: str) -> Access:
    entry = rights.collections.get(collection_id)
    if entry is not None and (entry.can_read or entry.can_write):
        return entry
    # Unknown and forbidden look the same: a partner learns nothing of the others.
    raise TaxiiError(404, "Collection not found", f"no collection {collection_id}")


def collection_resource(entry: Access) -> dict[str, Any]:
    c = entry.collection
    return {
        "id": c.id,
        "title": c.title,
        "description": c.description,
        "alias": c.alias,
        "can_read": entry.can_read,
        "can_write": entry.can_write,
        "media_types": ["application/stix+json;version=2.1"],
    }


# --- discovery, API root, collections -------------------------------------------------------


@router.get("/taxii2/")
def discovery(request: Request, _: Partner) -> dict[str, Any]:
    node = context_of(request).node
    root = str(request.base_url).rstrip("/")
    return {
        "title": f"Liaison node {node.country}",
        "description": f"{node.name}: TAXII 2.1 for partner agencies",
        "default": f"{root}/{API_ROOT}/",
        "api_roots": [f"{root}/{API_ROOT}/"],
    }


@router.get(f"/{API_ROOT}/")
def api_root(request: Request, _: Partner) -> dict[str, Any]:
    node = context_of(request).node
    return {
        "title": f"Liaison {node.country}",
        "description": "Intelligence released to you under your agency's grants",
        "versions": [TAXII_MEDIA_TYPE],
        "max_content_length": node.settings.limits.max_bytes,
    }


@router.get(f"/{API_ROOT}/collections/")
def list_collections(request: Request, code: Partner) -> dict[str, Any]:
    with connection(request) as conn:
        rights = rights_of(request, conn, code)
    visible = [
        collection_resource(entry)
        for entry in rights.collections.values()
        if entry.can_read or entry.can_write
    ]
    return {"collections": visible} if visible else {}


@router.get(f"/{API_ROOT}/collections/{{collection_id}}/")
def get_collection(collection_id: str, request: Request, code: Partner) -> dict[str, Any]:
    with connection(request) as conn:
        rights = rights_of(request, conn, code)
    return collection_resource(collection_for(rights, collection_id))


# --- pages ----------------------------------------------------------------------------------


def filters(
    added_after: Annotated[str | None, Query()] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    next_cursor: Annotated[str | None, Query(alias="next")] = None,
    match_id: Annotated[str | None, Query(alias="match[id]")] = None,
    match_type: Annotated[str | None, Query(alias="match[type]")] = None,
    match_version: Annotated[str | None, Query(alias="match[version]")] = None,
    match_spec_version: Annotated[str | None, Query(alias="match[spec_version]")] = None,
) -> dict[str, Any]:
    return {
        "added_after": added_after,
        "limit": limit,
        "next_cursor": next_cursor,
        "match_id": match_id,
        "match_type": match_type,
        "match_version": match_version,
        "match_spec_version": match_spec_version,
    }


Filters = Annotated[dict[str, Any], Depends(filters)]


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


def _scope(code: str, collection: Collection, request: Request) -> str:
    params = sorted((k, v) for k, v in request.query_params.multi_items() if k != "next")
    return json.dumps([code, collection.id, params])


def read_page(
    request: Request, conn: sa.Connection, code: str, collection_id: str, query: dict[str, Any]
) -> tuple[Page, str | None]:
    """One page of what ``code`` may read in the collection, and the ``next`` token."""
    rights = rights_of(request, conn, code)
    entry = collection_for(rights, collection_id)
    if not entry.can_read:
        raise TaxiiError(403, "Forbidden", "you may not read this collection")
    cursors = context_of(request).cursors
    filters = dict(query)
    next_cursor = filters.pop("next_cursor")
    scope = _scope(code, entry.collection, request)
    after = cursors.read(scope, next_cursor) if next_cursor else None
    result = page(conn, code, page_query(entry.collection, after=after, **filters), rights.granted)
    token = cursors.make(scope, result.versions[-1].date_added) if result.more else None
    return result, token


def _head(result: Page, token: str | None) -> dict[str, Any]:
    head: dict[str, Any] = {"more": result.more}
    if token:
        head["next"] = token
    return head


def _date_headers(result: Page) -> dict[str, str]:
    if not result.versions:
        return {}
    return {
        "X-TAXII-Date-Added-First": from_micros(result.versions[0].date_added),
        "X-TAXII-Date-Added-Last": from_micros(result.versions[-1].date_added),
    }


def _delivered(
    request: Request, conn: sa.Connection, code: str, result: Page, token: str | None
) -> Response:
    context = context_of(request)
    delivery = deliver(
        context.node.engine,
        conn,
        code,
        result.versions,
        context.keys,
        context.copies,
        result.granted,
    )
    head = json.dumps(_head(result, token), separators=(",", ":"))[:-1].encode()
    headers = _date_headers(result)
    if delivery.entries:
        # Where this page's copies are in the ledger: what to ask a receipt for.
        headers[LEDGER_ENTRIES_HEADER] = ",".join(map(str, delivery.entries))
    return Response(delivery.body(head), 200, headers=headers, media_type=TAXII_MEDIA_TYPE)


@router.get(f"/{API_ROOT}/collections/{{collection_id}}/objects/")
def get_objects(collection_id: str, request: Request, code: Partner, query: Filters) -> Response:
    with connection(request) as conn:
        result, token = read_page(request, conn, code, collection_id, query)
        return _delivered(request, conn, code, result, token)


@router.get(f"/{API_ROOT}/collections/{{collection_id}}/objects/{{object_id}}/")
def get_object(
    collection_id: str,
    object_id: str,
    request: Request,
    code: Partner,
    query: Filters,
) -> Response:
    if query["match_id"] is not None:
        raise TaxiiError(400, "Bad request", "match[id] is not allowed on an object")
    with connection(request) as conn:
        one = {**query, "match_id": object_id}
        result, token = read_page(request, conn, code, collection_id, one)
        if not result.versions:
            raise TaxiiError(404, "Object not found", f"no object {object_id} for you here")
        return _delivered(request, conn, code, result, token)


def _version_of(v: Any) -> str:
    return v.object.get("modified") or v.object.get("created") or from_micros(v.date_added)


@router.get(f"/{API_ROOT}/collections/{{collection_id}}/manifest/")
def get_manifest(collection_id: str, request: Request, code: Partner, query: Filters) -> Response:
    with connection(request) as conn:
        result, token = read_page(request, conn, code, collection_id, query)
        # What the objects endpoint would leave out (incomplete copies) is not listed either.
        listing = listed(conn, code, result.versions, context_of(request).copies, result.granted)
    entries = [
        {
            "id": v.object["id"],
            "date_added": from_micros(v.date_added),
            "version": _version_of(v),
            "media_type": "application/stix+json;version=2.1",
        }
        for v in listing
    ]
    body = _head(result, token)
    if entries:
        body["objects"] = entries
    return TaxiiResponse(body, headers=_date_headers(result))


@router.get(f"/{API_ROOT}/collections/{{collection_id}}/objects/{{object_id}}/versions/")
def get_versions(
    collection_id: str,
    object_id: str,
    request: Request,
    code: Partner,
    query: Filters,
) -> Response:
    for name in ("match_id", "match_type", "match_version"):
        if query[name] is not None:
            raise TaxiiError(400, "Bad request", f"{name} is not allowed on versions")
    query = {**query, "match_id": object_id, "match_version": "all"}
    with connection(request) as conn:
        result, token = read_page(request, conn, code, collection_id, query)
        sent = listed(conn, code, result.versions, context_of(request).copies, result.granted)
    if not sent and not query["next_cursor"] and not query["added_after"]:
        raise TaxiiError(404, "Object not found", f"no object {object_id} for you here")
    body = _head(result, token)
    if sent:
        body["versions"] = [_version_of(v) for v in sent]
    return TaxiiResponse(body, headers=_date_headers(result))


# --- writes ---------------------------------------------------------------------------------


@router.post(f"/{API_ROOT}/collections/{{collection_id}}/objects/", status_code=202)
async def post_objects(collection_id: str, request: Request, code: Partner) -> Response:
    context = context_of(request)

    def writable() -> Access:
        with context.node.engine.connect() as conn:
            return collection_for(rights_of(request, conn, code), collection_id)

    entry = await run_in_threadpool(writable)
    if not entry.can_write:
        raise TaxiiError(403, "Forbidden", "you may not write to this collection")
    if not is_taxii_content(request.headers.get("content-type")):
        raise TaxiiError(415, "Unsupported media type", f"send {TAXII_MEDIA_TYPE}")
    limits = context.node.settings.limits
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limits.max_bytes:
            raise TaxiiError(413, "Payload too large", f"the limit is {limits.max_bytes} bytes")
    # Validation and the write block: keep them off the event loop.
    return await run_in_threadpool(post_envelope, context, code, entry.collection, bytes(body))


def post_envelope(
    context: TaxiiContext, code: str, collection: Collection, data: bytes
) -> Response:
    node = context.node
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
    report = import_objects(node.engine, accepted, received_from=code, validate=context.validator)
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
    context.preparer.wake()  # find the new texts' fingerprint slots before they are asked for
    return TaxiiResponse(status, 202)


@router.get(f"/{API_ROOT}/status/{{status_id}}/")
def get_status(status_id: str, request: Request, code: Partner) -> dict[str, Any]:
    with connection(request) as conn:
        row = conn.execute(
            sa.select(statuses.c.body).where(statuses.c.id == status_id, statuses.c.partner == code)
        ).first()
    if row is None:
        raise TaxiiError(404, "Status not found", f"no status {status_id}")
    result: dict[str, Any] = json.loads(row.body)
    return result


@router.delete(f"/{API_ROOT}/collections/{{collection_id}}/objects/{{object_id}}/")
def delete_object(
    collection_id: str,
    object_id: str,
    request: Request,
    code: Partner,
    match_version: Annotated[str | None, Query(alias="match[version]")] = None,
) -> Response:
    # Without match[version], every version goes (TAXII 2.1, 5.7).
    versions = _versions(match_version, default=Versions(last=False, all=True))
    context = context_of(request)
    with write_transaction(context.node.engine) as conn:
        # Read in the writer's own transaction (not the cache, which may write itself).
        rights = read_rights(conn, code, date.today())
        if not collection_for(rights, collection_id).can_write:
            raise TaxiiError(403, "Forbidden", "you may not delete from this collection")
        # A partner deletes only versions it owns: never the node's or a third party's.
        deleted = delete_versions(conn, code, object_id, versions)
        # A deleted marking definition is unknown from now on: what it marks is withheld.
        redecide_markings(conn, [object_id] if deleted else [])
    if not deleted:
        raise TaxiiError(404, "Object not found", f"no object {object_id} from you here")
    return Response(status_code=200, media_type=TAXII_MEDIA_TYPE)


# --- parsing --------------------------------------------------------------------------------


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
        at=tuple(sorted({_timestamp("match[version]", p) for p in parts if p not in keywords})),
    )
