"""The TAXII 2.1 server (ASGI, FastAPI): each partner reads its own view of the node.

The path of a read: credentials -> partner (``taxii.auth``); its rights, cached per policy
serial (``release.rights``); one page of granted versions (``store.pages``); the partner's
copies, recorded before they are sent (``release.deliver``); response. The endpoints are in
``taxii.routes`` and ``taxii.ledger_extension``; this module assembles them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from liaison.errors import LiaisonError, SignInRefused
from liaison.node import Node
from liaison.taxii import ledger_extension, routes
from liaison.taxii.context import TaxiiContext
from liaison.taxii.credentials import Authenticator
from liaison.taxii.errors import TaxiiError, error_body
from liaison.taxii.routes import API_ROOT, LEDGER_ENTRIES_HEADER, TaxiiResponse

__all__ = ["API_ROOT", "LEDGER_ENTRIES_HEADER", "app_from_env", "create_app"]

# Handlers running at once in one server process (each holds at most two connections).
REQUEST_THREADS = 16


def _taxii_error(status: int, title: str, description: str = "") -> TaxiiResponse:
    headers = {"WWW-Authenticate": 'Basic realm="liaison"'} if status == 401 else None
    return TaxiiResponse(error_body(status, title, description), status, headers=headers)


async def _taxii(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, TaxiiError)
    return _taxii_error(exc.http_status, exc.title, exc.description)


async def _liaison(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, LiaisonError)
    status = exc.http_status if exc.http_status < 500 else 500
    text = str(exc) if status < 500 else "the server could not complete the request"
    return _taxii_error(status, exc.title, text)


async def _refused(_: Request, exc: Exception) -> Response:
    # Throttled (429) or every password-check slot busy (503): when to come back.
    assert isinstance(exc, SignInRefused)
    body = error_body(exc.http_status, exc.title, str(exc))
    return TaxiiResponse(body, exc.http_status, headers={"Retry-After": str(exc.retry_after)})


async def _invalid(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    return _taxii_error(400, "Bad request", f"{where}: {first.get('msg', 'invalid')}")


async def _http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return _taxii_error(exc.status_code, str(exc.detail))


async def _unexpected(_: Request, __: Exception) -> Response:
    # Never echo the exception: it may name tables, paths or objects.
    return _taxii_error(500, "Internal error", "the server could not complete the request")


def create_app(node: Node, authenticator: Authenticator | None = None) -> FastAPI:
    """The TAXII server of ``node``; ``authenticator`` (tests: a clock, a hasher) defaults to
    the one the node's settings describe."""
    context = TaxiiContext.for_node(node, authenticator)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Handlers run in threads; bounding them bounds the connections they hold
        # (store/engine.py, POOL_SIZE): 32 waiting partners queue, none deadlocks.
        to_thread.current_default_thread_limiter().total_tokens = REQUEST_THREADS
        context.preparer.start()
        try:
            yield
        finally:
            context.preparer.stop()
            context.validator.close()

    app = FastAPI(
        title="Liaison TAXII 2.1",
        version="2.1",
        openapi_url="/taxii2/openapi.json",
        docs_url=None,
        redoc_url=None,
        default_response_class=TaxiiResponse,
        lifespan=lifespan,
    )
    app.state.taxii = context
    app.add_exception_handler(TaxiiError, _taxii)
    app.add_exception_handler(LiaisonError, _liaison)
    app.add_exception_handler(SignInRefused, _refused)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
    app.include_router(routes.router)
    app.include_router(ledger_extension.router)
    return app


def app_from_env() -> FastAPI:
    """The server of the node the environment names: the factory uvicorn's worker processes
    call (`liaison serve --workers N`), each opening the store for itself."""
    from liaison.node import open_node
    from liaison.settings import Settings

    return create_app(open_node(Settings.from_env()))
