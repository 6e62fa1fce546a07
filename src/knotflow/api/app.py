"""The ASGI application: Coze-compatible open API routes on Starlette."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator
from importlib.metadata import version as package_version
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from knotflow.api import errors, openapi
from knotflow.api.bodies import read_json_body
from knotflow.api.body_budget import BodyBudget
from knotflow.api.console_pages import console_page_routes
from knotflow.api.request_log import RequestLog
from knotflow.api.routes_chat import chat_routes
from knotflow.api.routes_console import console_routes
from knotflow.api.routes_conversations import conversation_routes
from knotflow.api.routes_files import file_routes
from knotflow.api.routes_runs import run_routes
from knotflow.api.routes_variables import variable_routes
from knotflow.api.routes_workflows import workflow_routes
from knotflow.api.state import AppState
from knotflow.config import Settings, get_settings
from knotflow.contract import NodeTypes
from knotflow.nodes import NODE_TYPES
from knotflow.service.container import Container

log = logging.getLogger(__name__)


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    logid = errors.new_logid()
    if status == 405:
        return errors.error(4000, f"{request.method} is not allowed on {request.url.path}", logid)
    return errors.error(
        4000, f"The requested API endpoint {request.method} {request.url.path} does not exist.", logid
    )


class InternalErrors:
    """A bug in a handler answers in Coze's envelope (5000) and the connection stays usable.

    Starlette's own last-resort handler (ServerErrorMiddleware) sends its response and then re-raises, so the
    server drops the keep-alive connection without `Connection: close` and the client's next request on it
    fails. This middleware sits inside it and ends the exchange cleanly instead; only when the response had
    already started can nothing be sent, and the error goes on to close the connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            if started:
                raise
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            response = errors.error(5000, "internal server error", errors.new_logid())
            await response(scope, receive, send)


def create_app(settings: Settings | None = None, *, migrate: bool = True, node_types: NodeTypes = NODE_TYPES,
               ) -> Starlette:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with Container(settings, node_types=node_types, migrate=migrate) as container:
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                # Only the main thread can take signals; embedded servers (tests) simply do without.
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, container.reload_models)
            app.state.knotflow = AppState(container)
            yield {}

    routes: list[BaseRoute] = [*run_routes(), *workflow_routes(), *file_routes(), *chat_routes(),
                               *conversation_routes(), *variable_routes(), Route("/health", _health), *console_routes(),
                               *console_page_routes()]
    schema: dict[str, Any] = {}

    async def openapi_json(request: Request) -> Response:
        if not schema:  # built on first use: every route is known by then
            schema.update(openapi.document(request.app.routes, knotflow_version()))
        return errors.JSONBody(schema)

    routes.append(Route("/openapi.json", openapi_json))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _not_found},
        # The request line is written outermost: it sees the 5000 answer InternalErrors gives a bug.
        middleware=[Middleware(RequestLog), Middleware(InternalErrors),
                    Middleware(BodyBudget, limit=settings.max_bodies_bytes)],
    )
    # A path with a trailing slash is not a route: answer it like any unknown path (Coze's envelope), not with
    # Starlette's redirect, which is built from the client's Host header.
    app.router.redirect_slashes = False
    return app


def knotflow_version() -> str:
    try:
        return package_version("knotflow")
    except Exception:  # not installed as a distribution (a bare source tree)
        return "0"


async def _health(request: Request) -> Response:
    return errors.ok({"status": "ok", "time": int(time.time())}, errors.new_logid())


__all__ = ["AppState", "create_app", "read_json_body"]
