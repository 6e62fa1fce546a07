"""Running workflows: stream_run, run (sync and async), stream_resume, run histories, node executions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from knotflow.api import errors
from knotflow.api.requests import CancelBody, ResumeBody, RunBody
from knotflow.api.sse import attach_frames, frames
from knotflow.api.state import AppState, open_api
from knotflow.api.streaming import SSEResponse
from knotflow.dsl import jsonutil
from knotflow.errors import BadRequest, NodeError, NotFound
from knotflow.service.access import PERMISSION_READ, check_permission, visible_run
from knotflow.service.run_log import LogEntry
from knotflow.service.runs import DEFAULT_CONNECTOR, Failed, Finished, ResumeRequest, RunHandle
from knotflow.service.trace_values import readable
from knotflow.store.records import (
    FAIL,
    INTERRUPTED,
    QUEUED,
    RUN_MODE_ASYNC,
    RUN_MODE_STREAM,
    RUN_MODE_SYNC,
    RUNNING,
    NodeExecution,
    Run,
)


def run_stream_response(state: AppState, handle: RunHandle, logid: str) -> Response:
    """A run's events as Coze's SSE stream (the console's Try it streams its runs the same way)."""
    run = handle.run
    debug_url = state.debug_url(run)
    items = state.runs.events(handle, state.settings.ping_interval)
    return SSEResponse(frames(items, debug_url), on_disconnect=lambda: state.runs.abandon(handle),
                       headers={errors.LOGID_HEADER: logid, errors.EXECUTE_ID_HEADER: run.execute_id},
                       send_timeout=state.settings.stream_send_timeout)


def _attach_response(state: AppState, run: Run, events: AsyncIterator[LogEntry | None], last_id: int,
                     logid: str) -> Response:
    # Leaving a re-attached stream leaves the run alone: only its first stream's client decides (on_disconnect).
    return SSEResponse(attach_frames(events, state.debug_url(run), last_id), on_disconnect=lambda: None,
                       headers={errors.LOGID_HEADER: logid, errors.EXECUTE_ID_HEADER: run.execute_id},
                       send_timeout=state.settings.stream_send_timeout)


IDEMPOTENCY_HEADER = "idempotency-key"


@open_api
async def stream_run(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    body = await state.json_body(request, RunBody)
    started = await state.control.begin_once(request.headers.get(IDEMPOTENCY_HEADER), body.to_request(), token,
                                              RUN_MODE_STREAM, logid)
    if isinstance(started, Run):  # the key's run: re-attach to it from its start
        return _attach_response(state, started, state.control.replay(started), -1, logid)
    return run_stream_response(state, started, logid)


@open_api
async def run_workflow(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    body = await state.json_body(request, RunBody)
    mode = RUN_MODE_ASYNC if body.is_async else RUN_MODE_SYNC
    started = await state.control.begin_once(request.headers.get(IDEMPOTENCY_HEADER), body.to_request(), token,
                                              mode, logid)
    run = started if isinstance(started, Run) else started.run
    debug_url = state.debug_url(run)
    if body.is_async:
        return errors.JSONBody(
            {"code": 0, "msg": "Success", "execute_id": run.execute_id, "debug_url": debug_url,
             "detail": {"logid": logid}},
            headers={errors.LOGID_HEADER: logid},
        )
    if isinstance(started, Run):  # the key's run: answer as its first request was answered
        run = await state.control.outcome(started)
        if run.status == FAIL:
            code = run.error_code if run.error_code < 100_000 else 5000  # Coze's own codes pass, node codes: 5000
            return errors.error(code, f"[{run.error_code}] {run.error_message}", logid, debug_url=debug_url,
                                execute_id=run.execute_id)
        return _sync_success(run, run.input_tokens, run.output_tokens, debug_url, logid)
    outcome = await state.runs.wait(started)
    if isinstance(outcome, Failed):
        error = outcome.error
        code = 5000 if isinstance(error, NodeError) else error.code
        return errors.error(code, error.stream_message(), logid, debug_url=debug_url, execute_id=run.execute_id)
    assert isinstance(outcome, Finished)
    usage = outcome.result.usage
    return _sync_success(run, usage.input_count, usage.output_count, debug_url, logid)


def _sync_success(run: Run, input_tokens: int, output_tokens: int, debug_url: str, logid: str) -> Response:
    usage = {"token_count": input_tokens + output_tokens, "output_count": output_tokens,
             "input_count": input_tokens}
    return errors.JSONBody(
        {"code": 0, "msg": "", "data": run.output, "execute_id": run.execute_id, "debug_url": debug_url,
         "usage": usage, "token": input_tokens + output_tokens, "cost": "0", "detail": {"logid": logid}},
        headers={errors.LOGID_HEADER: logid},
    )


@open_api
async def stream_attach(request: Request, state: AppState, logid: str) -> Response:
    """knotflow's own re-attach: the run's latest stream after `Last-Event-ID`, then its live events, then its
    end, in Coze's framing with the run's own event ids."""
    token = await state.auth(request)
    raw = request.headers.get("last-event-id", "").strip()
    if raw and not (raw.isascii() and raw.lstrip("-").isdigit()):
        raise BadRequest("Last-Event-ID must be the id of an event of the run's stream")
    last_id = max(-1, int(raw)) if raw else -1
    run, events = await state.control.attach(
        token, request.query_params.get("workflow_id", ""), request.query_params.get("execute_id", ""),
        request.query_params.get("connector_id") or DEFAULT_CONNECTOR, last_id)
    return _attach_response(state, run, events, last_id, logid)


@open_api
async def cancel_run(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    body = await state.json_body(request, CancelBody)
    run = await state.control.cancel(token, body.workflow_id, body.execute_id,
                                     body.connector_id or DEFAULT_CONNECTOR)
    return errors.ok({"execute_id": run.execute_id, "execute_status": _cozepy_status(run.status),
                      "error_message": run.error_message}, logid)


def _cozepy_status(status: str) -> str:
    """cozepy knows Success, Running and Fail; a run waiting for an answer or for a worker is still running, as
    Coze's cloud shows it (the trace says Interrupted or Queued)."""
    return RUNNING if status in (INTERRUPTED, QUEUED) else status


@open_api
async def stream_resume(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    body = await state.json_body(request, ResumeBody)
    handle = await state.runs.resume(
        ResumeRequest(body.workflow_id, body.event_id, body.resume_data, body.interrupt_type,
                      body.connector_id or DEFAULT_CONNECTOR),
        token,
        logid,
    )
    return run_stream_response(state, handle, logid)


def _history_item(state: AppState, run: Run, nodes: list[NodeExecution]) -> dict[str, Any]:
    # Output-node texts by title, then the End node's output under "Output" (it wins a title clash).
    output: dict[str, Any] = {**run.extra, "node_status": "{}", "Output": run.output}
    node_status = _node_execute_status(nodes)
    usage = {"token_count": run.input_tokens + run.output_tokens, "output_count": run.output_tokens,
             "input_count": run.input_tokens}
    return {
        "execute_id": run.execute_id,
        "execute_status": _cozepy_status(run.status),
        "bot_id": run.bot_id or "0",
        "connector_id": run.connector_id,
        "connector_uid": run.connector_uid,
        "run_mode": run.run_mode,
        "logid": run.logid,
        "create_time": int(run.created_at),
        "update_time": int(run.updated_at),
        "output": jsonutil.dumps(output),
        "token": str(run.input_tokens + run.output_tokens),
        "usage": usage,
        "error_code": str(run.error_code) if run.error_code else "",
        "error_message": run.error_message,
        "debug_url": state.debug_url(run),
        "node_execute_status": node_status,
        "is_output_trimmed": False,
    }


BATCH_TYPE, SUB_WORKFLOW_TYPE = "28", "9"  # inside a Batch's item a node has a batch_index, in a Loop a loop_index


def _node_execute_status(nodes: list[NodeExecution]) -> dict[str, dict[str, Any]]:
    """Each node's latest execution by title; one inside a Loop or Batch under "title[index]" with its loop_index
    or batch_index, one inside a sub-workflow under "sub-workflow title/title". A Sub-workflow node's execution
    and those of the nodes inside it share a `sub_execute_id`: the Sub-workflow node's node_execute_uuid (knotflow
    runs a child inside its parent's run, not as a run of its own)."""
    outer = {node.node_id: node for node in nodes if node.parent_node_id is None}
    status: dict[str, dict[str, Any]] = {}
    for node in nodes:
        key = node.node_title or node.node_id
        entry: dict[str, Any] = {"node_id": node.node_id, "is_finish": node.status in ("Success", "Fail", "Skipped"),
                                 "update_time": int(node.finished_at), "node_execute_uuid": node.id}
        if node.node_type == SUB_WORKFLOW_TYPE:
            entry["sub_execute_id"] = node.id
        parent = outer.get(node.parent_node_id) if node.parent_node_id is not None else None
        if node.parent_node_id is not None:
            parent_title = (parent.node_title or parent.node_id) if parent is not None else node.parent_node_id
            if node.iteration is None:
                key = f"{parent_title}/{key}"
            else:
                in_batch = parent is not None and parent.node_type == BATCH_TYPE
                entry["batch_index" if in_batch else "loop_index"] = node.iteration
                key = f"{key}[{node.iteration}]"
            if parent is not None and parent.node_type == SUB_WORKFLOW_TYPE:
                entry["sub_execute_id"] = parent.id
        status[key] = entry
    return status


async def _visible_run(request: Request, state: AppState, execute_id: str, workflow_id: str | None = None,
                       ) -> Run:
    """The run as the caller's connector sees it (`?connector_id=`, default the API's)."""
    token = await state.auth(request)
    check_permission(token, PERMISSION_READ)
    connector_id = request.query_params.get("connector_id") or DEFAULT_CONNECTOR
    run = await state.store.get_run(execute_id) if execute_id.isascii() and execute_id.isdigit() else None
    what = f"run {execute_id or '(none)'}" + (f" of workflow {workflow_id}" if workflow_id else "")
    return visible_run(token, run, what, workflow_id=workflow_id, connector_id=connector_id)


@open_api
async def run_history(request: Request, state: AppState, logid: str) -> Response:
    run = await _visible_run(request, state, request.path_params["execute_id"], request.path_params["workflow_id"])
    nodes = await state.store.list_node_executions(run.execute_id)
    return errors.ok([_history_item(state, run, nodes)], logid)


@open_api
async def node_execution(request: Request, state: AppState, logid: str) -> Response:
    run = await _visible_run(request, state, request.path_params["execute_id"], request.path_params["workflow_id"])
    uuid = request.path_params["node_execute_uuid"]
    node = await state.store.get_node_execution(run.execute_id, uuid)
    if node is None:
        raise NotFound(f"node execution {uuid} of run {run.execute_id} does not exist")
    return errors.ok({"is_finish": node.status in ("Success", "Fail", "Skipped"), "node_output": node.outputs},
                     logid)


def _error_level(node: NodeExecution) -> str:
    """Coze Studio's errorLevel of a node result: "Error" when it failed, "Warn" when it succeeded with warnings
    or with an error its settingOnError handled, "" otherwise."""
    if node.status == "Fail":
        return "Error"
    return "Warn" if node.warnings or node.error else ""


def _wants_page(request: Request) -> bool:
    """A browser opening the debug_url: it sends no token and asks for HTML."""
    return "authorization" not in request.headers and "text/html" in request.headers.get("accept", "")


@open_api
async def trace(request: Request, state: AppState, logid: str) -> Response:
    """The debug_url target: the run and every node's inputs, outputs, status and timing, as JSON for a client
    with a token; a browser is sent to the run's console page (the console signs the person in first)."""
    execute_id = request.query_params.get("execute_id", "")
    if _wants_page(request):
        target = f"/console/runs/{execute_id}" if execute_id.isascii() and execute_id.isdigit() else "/console/runs"
        return RedirectResponse(target, status_code=303, headers={errors.LOGID_HEADER: logid})
    run = await _visible_run(request, state, execute_id)
    nodes = await state.store.list_node_executions(run.execute_id)
    return errors.ok(
        {
            "execute_id": run.execute_id,
            "workflow_id": run.workflow_id,
            "version": run.version,
            "status": run.status,
            "error_code": run.error_code,
            "error_message": run.error_message,
            "inputs": readable(run.inputs),
            "output": run.output,
            "nodes": [
                {"node_execute_uuid": n.id, "node_id": n.node_id, "node_type": n.node_type, "title": n.node_title,
                 "status": n.status, "inputs": n.inputs, "outputs": n.outputs, "error": n.error,
                 "error_level": _error_level(n), "warnings": n.warnings,
                 "started_at": n.started_at, "duration_ms": round((n.finished_at - n.started_at) * 1000, 3),
                 "parent_node_id": n.parent_node_id, "iteration": n.iteration,
                 "input_tokens": n.input_tokens, "output_tokens": n.output_tokens}
                for n in nodes
            ],
        },
        logid,
    )


def run_routes() -> list[Route]:
    return [
        Route("/v1/workflow/stream_run", stream_run, methods=["POST"]),
        Route("/v1/workflow/run", run_workflow, methods=["POST"]),
        Route("/v1/workflow/stream_resume", stream_resume, methods=["POST"]),
        Route("/v1/workflow/stream_attach", stream_attach, methods=["GET"]),
        Route("/v1/workflow/cancel", cancel_run, methods=["POST"]),
        Route("/v1/workflows/{workflow_id}/run_histories/{execute_id}", run_history, methods=["GET"]),
        Route(
            "/v1/workflows/{workflow_id}/run_histories/{execute_id}/execute_nodes/{node_execute_uuid}",
            node_execution,
            methods=["GET"],
        ),
        Route("/work_flow", trace, methods=["GET"]),
    ]
