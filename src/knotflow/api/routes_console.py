"""The web console's JSON API (`/console/api/…`), used by the console's pages: sign-in, workflows, canvases,
runs and their timelines, and Try it (runs streamed as Coze's SSE events, answers, file uploads).

Every handler signs the person in from the session cookie (`console_auth`), checks CSRF on changes, and asks
the service layer (`service.console`, `service.access`) what the token may see. Errors are Coze's envelope, as
on the open API (HTTP 200, `code`, `msg`): an expected refusal is not a failed request in the browser's console.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from knotflow.api import errors
from knotflow.api.routes_files import file_item, receive_upload
from knotflow.api.routes_runs import run_stream_response
from knotflow.api.state import AppState, state_of
from knotflow.api.streaming import SSEResponse
from knotflow.dsl import jsonutil
from knotflow.dsl.canvas import load_text
from knotflow.errors import BadRequest, KnotflowError
from knotflow.service import console
from knotflow.service.access import PERMISSION_READ, PERMISSION_RUN, check_edit, token_space
from knotflow.service.catalog import import_workflow, publish
from knotflow.service.runs import ResumeRequest, RunRequest, parse_parameters
from knotflow.store.records import RUN_MODE_STREAM, RUNNING, Token
from knotflow.store.repository import PublishStatus

LIVE_POLL_SECONDS = 0.5

Handler = Callable[[Request, AppState, str], Awaitable[Response]]


# --- request bodies (also the OpenAPI document's schemas) --------------------------------------------------------
class SignInBody(BaseModel):
    token: str


class ImportBody(BaseModel):
    canvas: str  # the file's text: JSON, or its YAML form
    file_name: str = ""  # names the workflow when `name` is empty
    name: str = ""
    space_id: str = ""  # default: the token's first space
    publish: bool = False
    chatflow: bool = False


class PublishBody(BaseModel):
    version: str = ""  # default: the next v0.0.N
    description: str = ""


class TryBody(BaseModel):
    parameters: Any = None  # an object, or a JSON string of one
    bot_id: str | None = None


class AnswerBody(BaseModel):
    event_id: str
    interrupt_type: int
    resume_data: Any = ""  # text, or a form's values as an object


def console_api(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        logid = errors.new_logid()
        try:
            response = await handler(request, state_of(request), logid)
        except KnotflowError as exc:
            response = errors.error(exc.code, exc.message, logid)
        response.headers.setdefault("cache-control", "no-store")
        return response

    return endpoint


def _text(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()
    return value or None


def _number(request: Request, name: str, default: int, lowest: int, highest: int) -> int:
    raw = _text(request, name)
    if raw is None:
        return default
    if not raw.isdigit() or not lowest <= int(raw) <= highest:
        raise BadRequest(f"{name} must be an integer from {lowest} to {highest}")
    return int(raw)


def _time(request: Request, name: str) -> float | None:
    raw = _text(request, name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise BadRequest(f"{name} must be a time in epoch seconds") from exc


# --- the session ----------------------------------------------------------------------------------------------
async def _session_data(state: AppState, token: Token, csrf: str) -> dict[str, Any]:
    spaces = await console.spaces(state.store, token)
    return {"signed_in": True, "csrf": csrf, "token_name": token.name, "permissions": token.permissions,
            "spaces": [{"id": s.id, "name": s.name} for s in spaces]}


@console_api
async def session(request: Request, state: AppState, logid: str) -> Response:
    found = await state.console.current(request)
    if found is not None:
        return errors.ok(await _session_data(state, found[1], found[0].csrf), logid)
    csrf = state.console.sign_in_csrf(request)
    response = errors.ok({"signed_in": False, "csrf": csrf}, logid)
    state.console.remember_sign_in_csrf(response, csrf)
    return response


@console_api
async def sign_in(request: Request, state: AppState, logid: str) -> Response:
    state.console.check_sign_in(request)
    body = await state.json_body(request, SignInBody)
    if not body.token.strip():
        raise BadRequest("enter an API token")
    signed = await state.console.sessions.sign_in(body.token)
    response = errors.ok(await _session_data(state, signed.token, signed.session.csrf), logid)
    state.console.start_session(response, signed.session_id)
    return response


@console_api
async def sign_out(request: Request, state: AppState, logid: str) -> Response:
    await state.console.require(request, None)
    response = errors.ok({"signed_in": False}, logid)
    await state.console.end_session(request, response)
    return response


# --- workflows ------------------------------------------------------------------------------------------------
@console_api
async def list_workflows(request: Request, state: AppState, logid: str) -> Response:
    token = await state.console.require(request)
    try:
        status = PublishStatus(_text(request, "status") or PublishStatus.ALL)
    except ValueError as exc:
        raise BadRequest(f"status must be one of {', '.join(sorted(PublishStatus))}") from exc
    page_size = _number(request, "page_size", 50, 1, 200)
    page = _number(request, "page", 1, 1, 1_000_000)
    query = console.WorkflowQuery(search=_text(request, "q"), space_id=_text(request, "space_id"),
                                  app_id=_text(request, "app_id"), status=status, offset=(page - 1) * page_size,
                                  limit=page_size)
    found, more = await console.list_workflows(state.store, token, query)
    return errors.ok({"items": [console.workflow_item(w) for w in found], "has_more": more, "page": page}, logid)


@console_api
async def import_canvas(request: Request, state: AppState, logid: str) -> Response:
    """A canvas file the person picked, read by the page and sent as text, imported as a new workflow."""
    token = await state.console.require(request, None)
    body = await state.json_body(request, ImportBody)
    if not body.canvas.strip():
        raise BadRequest("choose a canvas file (JSON or YAML, as Coze Studio exports it)")
    space_id = body.space_id or await token_space(state.store, token)
    check_edit(token, space_id)
    workflow, _ = await import_workflow(
        state.store, load_text(body.canvas), name=body.name.strip() or None,
        default_name=body.file_name.rsplit(".", 1)[0] or None, space_id=space_id, chatflow=body.chatflow,
        publish=body.publish, models=state.app.models.current, node_types=state.node_types)
    return errors.ok(console.workflow_item(workflow), logid)


@console_api
async def workflow_detail(request: Request, state: AppState, logid: str) -> Response:
    token = await state.console.require(request)
    found = await console.workflow(state.store, token, request.path_params["workflow_id"])
    versions = await console.versions(state.store, found.id)
    return errors.ok({**console.workflow_item(found),
                "versions": [{"version": v.version, "description": v.description, "created_at": v.created_at}
                             for v in versions]}, logid)


@console_api
async def workflow_canvas(request: Request, state: AppState, logid: str) -> Response:
    token = await state.console.require(request)
    _, which, canvas = await console.canvas_of(state.store, token, request.path_params["workflow_id"],
                                               _text(request, "version"))
    return errors.ok(console.canvas_payload(which, canvas, state.node_types), logid)


@console_api
async def publish_draft(request: Request, state: AppState, logid: str) -> Response:
    token = await state.console.require(request, PERMISSION_READ)
    found = await console.workflow(state.store, token, request.path_params["workflow_id"])
    check_edit(token, found.space_id)
    body = await state.json_body(request, PublishBody)
    published = await publish(state.store, found.id, body.version.strip() or None, body.description,
                              models=state.app.models.current, node_types=state.node_types)
    return errors.ok({"version": published.version, "created_at": published.created_at}, logid)


# --- Try it ---------------------------------------------------------------------------------------------------
@console_api
async def run_workflow(request: Request, state: AppState, logid: str) -> Response:
    """Run the workflow's latest version through the console's connector; the events stream back as Coze's
    SSE (the run's id in a header, so the page can link to the run at once)."""
    token = await state.console.require(request, PERMISSION_RUN)
    found = await console.workflow(state.store, token, request.path_params["workflow_id"])
    body = await state.json_body(request, TryBody)
    run_request = RunRequest(workflow_id=found.id, parameters=parse_parameters(body.parameters),
                             bot_id=body.bot_id or None, app_id=found.app_id, connector_id=console.CONSOLE_CONNECTOR)
    handle = await state.runs.begin(run_request, token, RUN_MODE_STREAM, logid)
    return run_stream_response(state, handle, logid)


@console_api
async def resume_run(request: Request, state: AppState, logid: str) -> Response:
    """Answer the question a run waits on (from Try it, or from the run's page) and stream what follows."""
    token = await state.console.require(request, PERMISSION_RUN)
    found = await console.run(state.store, token, request.path_params["execute_id"])
    body = await state.json_body(request, AnswerBody)
    answer = body.resume_data if isinstance(body.resume_data, str) else jsonutil.dumps(body.resume_data)
    handle = await state.runs.resume(
        ResumeRequest(found.workflow_id, body.event_id, answer, body.interrupt_type, found.connector_id), token,
        logid)
    return run_stream_response(state, handle, logid)


@console_api
async def upload(request: Request, state: AppState, logid: str) -> Response:
    token = await state.console.require(request, PERMISSION_RUN)
    return errors.ok(file_item(await receive_upload(request, state, token)), logid)


# --- runs -----------------------------------------------------------------------------------------------------
@console_api
async def list_runs(request: Request, state: AppState, logid: str) -> Response:
    token = await state.console.require(request)
    query = console.RunQuery(space_id=_text(request, "space_id"), workflow_id=_text(request, "workflow_id"),
                             status=_text(request, "status"), connector_id=_text(request, "connector_id"),
                             since=_time(request, "since"), until=_time(request, "until"),
                             after=_text(request, "after"), limit=_number(request, "page_size", 50, 1, 200))
    found, cursor = await console.list_runs(state.store, token, query)
    return errors.ok({"items": [console.run_item(r) for r in found], "next": cursor,
                "connectors": console.CONNECTORS, "statuses": console.RUN_STATUSES}, logid)


@console_api
async def run_detail(request: Request, state: AppState, logid: str) -> Response:
    token = await state.console.require(request)
    detail = await console.run_detail(state.store, token, request.path_params["execute_id"], state.node_types)
    return errors.ok(detail, logid)


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {jsonutil.dumps(data)}\n\n".encode()


@console_api
async def live(request: Request, state: AppState, logid: str) -> Response:
    """While the run runs: each node execution as it is recorded (`node`), the run when it changes (`run`),
    then `end` once it no longer runs. Read from the store, so a run of any server process shows."""
    token = await state.console.require(request)
    execute_id = request.path_params["execute_id"]
    await console.run(state.store, token, execute_id)  # 404 before the stream starts
    stopped = asyncio.Event()

    async def events() -> AsyncIterator[bytes]:
        sent: set[str] = set()
        last: tuple[str, float] | None = None
        quiet_since = time.monotonic()
        while not stopped.is_set():
            _, run, nodes = await console.run_progress(state.store, token, execute_id)
            for node in nodes:
                if node["node_execute_uuid"] not in sent:
                    sent.add(node["node_execute_uuid"])
                    yield _event("node", node)
            if (run["status"], run["updated_at"]) != last:
                last = (run["status"], run["updated_at"])
                quiet_since = time.monotonic()
                yield _event("run", run)
            if run["status"] != RUNNING:
                yield _event("end", {"status": run["status"]})
                return
            if time.monotonic() - quiet_since > state.settings.ping_interval:
                quiet_since = time.monotonic()
                yield b": ping\n\n"
            await asyncio.sleep(LIVE_POLL_SECONDS)

    return SSEResponse(events(), on_disconnect=stopped.set, headers={errors.LOGID_HEADER: logid})


def console_routes() -> list[Route]:
    return [
        Route("/console/api/session", session, methods=["GET"]),
        Route("/console/api/session", sign_in, methods=["POST"]),
        Route("/console/api/session", sign_out, methods=["DELETE"]),
        Route("/console/api/workflows", list_workflows, methods=["GET"]),
        Route("/console/api/workflows", import_canvas, methods=["POST"]),
        Route("/console/api/workflows/{workflow_id}", workflow_detail, methods=["GET"]),
        Route("/console/api/workflows/{workflow_id}/canvas", workflow_canvas, methods=["GET"]),
        Route("/console/api/workflows/{workflow_id}/publish", publish_draft, methods=["POST"]),
        Route("/console/api/workflows/{workflow_id}/runs", run_workflow, methods=["POST"]),
        Route("/console/api/files", upload, methods=["POST"]),
        Route("/console/api/runs", list_runs, methods=["GET"]),
        Route("/console/api/runs/{execute_id}", run_detail, methods=["GET"]),
        Route("/console/api/runs/{execute_id}/live", live, methods=["GET"]),
        Route("/console/api/runs/{execute_id}/resume", resume_run, methods=["POST"]),
    ]
