"""What every request handler shares, built once at start-up, and how a handler reaches it."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from knotflow.api import errors
from knotflow.api.auth import Authenticator
from knotflow.api.bodies import read_json_body
from knotflow.api.console_auth import ConsoleAuth
from knotflow.api.requests import M, parse_body
from knotflow.config import Settings
from knotflow.errors import KnotflowError
from knotflow.files.storage import FileStorage
from knotflow.service.container import Container
from knotflow.service.runs import DEFAULT_CONNECTOR
from knotflow.service.sessions import ConsoleSessions
from knotflow.service.signals import REVOKED
from knotflow.store.records import Run, Token


class AppState:
    """What every request handler reaches: the started application, the settings, the authenticator."""

    def __init__(self, app: Container) -> None:
        self.app = app
        self.settings = app.settings
        self.store = app.store
        self.runs = app.runs
        self.chat = app.chat
        self.conversations = app.conversations
        self.files: FileStorage = app.file_storage
        self.file_links = app.file_links
        self.control = app.control
        self.limits = app.scale.limits
        self._authenticate = Authenticator(app.store, self.settings.token_cache_seconds)
        app.scale.signals.on(REVOKED, self._authenticate.forget)
        self.node_types = app.node_types
        self.console = ConsoleAuth(ConsoleSessions(app.store, self.settings.console_session_ttl),
                                   secure=self.settings.base_url().startswith("https://"))

    async def auth(self, request: Request) -> Token:
        """The request's token, counted against its requests-per-second limit (4013 beyond it)."""
        token = await self._authenticate(request)
        await self.limits.hit(token.id)
        return token

    async def json_body(self, request: Request, model: type[M]) -> M:
        """The request's JSON body as `model`, within the size limit and the body timeout."""
        return parse_body(model, await read_json_body(request, self.settings.max_request_bytes,
                                                      self.settings.body_timeout))

    def debug_url(self, run: Run) -> str:
        return debug_url(self.settings, run)


def debug_url(settings: Settings, run: Run) -> str:
    """The run's trace (on the server, also for runs made by `knotflow run`); a run of another connector than the
    API's names it (the trace is per connector). Opened in a browser, it leads to the run's console page."""
    url = (f"{settings.base_url()}/work_flow?execute_id={run.execute_id}&space_id={run.space_id}"
           f"&workflow_id={run.workflow_id}&execute_mode=2")
    return url if run.connector_id == DEFAULT_CONNECTOR else f"{url}&connector_id={run.connector_id}"


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.knotflow
    return state


Handler = Callable[[Request, AppState, str], Awaitable[Response]]


def open_api(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An open-API endpoint: the handler gets the app state and the response's log id, and a KnotflowError it
    raises becomes Coze's error envelope (HTTP 200, `code`, `msg`, `detail.logid`, `x-tt-logid`)."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        logid = errors.new_logid()
        try:
            return await handler(request, state_of(request), logid)
        except KnotflowError as exc:
            return errors.error(exc.code, exc.message, logid)

    return endpoint
