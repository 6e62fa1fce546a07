"""What the web console shows, read through the access rules: workflows with their versions and canvases, runs
with their filters and paging, a run's timeline, and the question a run waits on.

Values leave here as plain JSON-ready dicts: the node executions' inputs and outputs parsed from their stored
text (a person reads JSON, not JSON inside a string), times as epoch seconds for the browser to show in local
time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from knotflow.contract import NodeTypes
from knotflow.dsl import jsonutil
from knotflow.errors import BadRequest, NotFound
from knotflow.service.access import listable_spaces, visible_run, visible_workflow
from knotflow.service.canvas_view import canvas_view, start_parameters
from knotflow.store.records import (
    FAIL,
    INTERRUPTED,
    RUNNING,
    SUCCESS,
    InterruptRecord,
    NodeExecution,
    Run,
    RunSummary,
    Space,
    Token,
    Workflow,
    WorkflowVersion,
)
from knotflow.store.repository import PublishStatus, RunCursor, RunFilter, Store

API_CONNECTOR = "1024"
CONSOLE_CONNECTOR = "10000010"  # Coze's own connector id (its Studio's test runs): runs started in the console
CONNECTORS = {API_CONNECTOR: "API", CONSOLE_CONNECTOR: "Console", "999": "Web SDK"}
RUN_STATUSES = (RUNNING, SUCCESS, FAIL, INTERRUPTED)
DRAFT = "draft"


def parsed(text: str | None) -> Any:
    """Stored JSON text as a value; text that is not JSON stays text."""
    if text is None or text == "":
        return None
    try:
        return jsonutil.loads(text)
    except jsonutil.JSONDecodeError:
        return text


# --- spaces and workflows ------------------------------------------------------------------------------------
async def spaces(store: Store, token: Token) -> list[Space]:
    return await store.list_spaces(token.space_ids)


def workflow_item(workflow: Workflow) -> dict[str, Any]:
    return {
        "workflow_id": workflow.id,
        "name": workflow.name,
        "description": workflow.description,
        "mode": workflow.mode,
        "space_id": workflow.space_id,
        "app_id": workflow.app_id or "",
        "requires_bot": workflow.requires_bot,
        "latest_version": workflow.latest_version,
        "published_at": workflow.published_at,
        "draft_changed": workflow.draft_changed,
        "created_at": workflow.created_at,
        "updated_at": workflow.updated_at,
    }


@dataclass(slots=True, frozen=True)
class WorkflowQuery:
    search: str | None = None
    space_id: str | None = None
    app_id: str | None = None
    status: PublishStatus = PublishStatus.ALL
    offset: int = 0
    limit: int = 50


async def list_workflows(store: Store, token: Token, query: WorkflowQuery) -> tuple[list[Workflow], bool]:
    return await store.list_workflows(space_ids=listable_spaces(token, query.space_id), app_id=query.app_id,
                                      publish_status=query.status, search=query.search, offset=query.offset,
                                      limit=query.limit)


async def workflow(store: Store, token: Token, workflow_id: str) -> Workflow:
    found = await store.get_workflow(workflow_id) if workflow_id.isdigit() else None
    return visible_workflow(token, found, workflow_id)


async def versions(store: Store, workflow_id: str, limit: int = 100) -> list[WorkflowVersion]:
    found, _ = await store.list_versions(workflow_id, limit=limit)
    return found


async def canvas_of(store: Store, token: Token, workflow_id: str, version: str | None,
                    ) -> tuple[Workflow, str, dict[str, Any]]:
    """A workflow's canvas: of `version`, or of its draft for "draft" — by default its latest published
    version, else its draft. Returns the workflow, which one it is ("draft" or the version) and the canvas."""
    found = await workflow(store, token, workflow_id)
    wanted = version or found.latest_version or DRAFT
    if wanted == DRAFT:
        return found, DRAFT, found.canvas
    record = await store.get_version(found.id, wanted)
    if record is None:
        raise NotFound(f"workflow {workflow_id} has no version {wanted}")
    return found, record.version, record.canvas


def canvas_payload(which: str, canvas: dict[str, Any], node_types: NodeTypes) -> dict[str, Any]:
    return {"version": which, **canvas_view(canvas, node_types), "parameters": start_parameters(canvas)}


# --- runs ----------------------------------------------------------------------------------------------------
def run_item(run: RunSummary) -> dict[str, Any]:
    return {
        "execute_id": run.execute_id,
        "workflow_id": run.workflow_id,
        "workflow_name": run.workflow_name,
        "version": run.version,
        "space_id": run.space_id,
        "status": run.status,
        "connector_id": run.connector_id,
        "connector": CONNECTORS.get(run.connector_id, run.connector_id),
        "error_code": run.error_code,
        "error_message": run.error_message,
        "tokens": run.input_tokens + run.output_tokens,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
    }


@dataclass(slots=True, frozen=True)
class RunQuery:
    space_id: str | None = None
    workflow_id: str | None = None
    status: str | None = None
    connector_id: str | None = None
    since: float | None = None
    until: float | None = None
    after: str | None = None  # a cursor from the previous page
    limit: int = 50


def _cursor(text: str) -> RunCursor:
    created, _, execute_id = text.partition("_")
    try:
        return float(created), execute_id
    except ValueError as exc:
        raise BadRequest("the page cursor is invalid") from exc


def cursor_of(run: RunSummary) -> str:
    return f"{run.created_at!r}_{run.execute_id}"


async def list_runs(store: Store, token: Token, query: RunQuery) -> tuple[list[RunSummary], str | None]:
    """A page of runs the token may see, newest first, and the cursor of the next page (None: the last)."""
    if query.status is not None and query.status not in RUN_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(RUN_STATUSES)}")
    where = RunFilter(space_ids=listable_spaces(token, query.space_id), workflow_id=query.workflow_id,
                      status=query.status, connector_id=query.connector_id, since=query.since, until=query.until)
    runs, more = await store.list_runs(where, after=_cursor(query.after) if query.after else None,
                                       limit=query.limit)
    return runs, cursor_of(runs[-1]) if more and runs else None


def recorded_parent(node: NodeExecution) -> str | None:
    """The composite node (Loop, Batch, Sub-workflow) a node execution ran inside, by node id."""
    return node.parent_node_id


def timeline(nodes: list[NodeExecution], parent_of: Callable[[NodeExecution], str | None] = recorded_parent,
             ) -> list[dict[str, Any]]:
    """One entry per node execution, in start order, each with its parent execution and its depth. A parent
    named by node id is that node's execution that encloses the child (started no later, finished no earlier;
    the latest such), else its latest that started no later (a composite still running has no record yet)."""
    by_uuid = {node.id: node for node in nodes}
    entries: list[dict[str, Any]] = []
    parents: dict[str, str | None] = {}
    for node in nodes:
        named = parent_of(node)
        parent: str | None = None
        if named in by_uuid:
            parent = named
        elif named is not None:
            earlier = [n for n in nodes if n.node_id == named and n.started_at <= node.started_at and n is not node]
            enclosing = [n for n in earlier if n.finished_at >= node.finished_at]
            chosen = enclosing or earlier
            parent = max(chosen, key=lambda n: n.started_at).id if chosen else None
        parents[node.id] = parent
    for node in nodes:
        depth, seen, cursor = 0, {node.id}, parents[node.id]
        while cursor is not None and cursor not in seen:  # `seen`: a broken record cannot loop forever
            seen.add(cursor)
            depth, cursor = depth + 1, parents.get(cursor)
        entries.append(node_entry(node, parents[node.id], depth))
    return entries


def _error_level(node: NodeExecution) -> str:
    if node.status == FAIL:
        return "Error"
    return "Warn" if node.warnings or node.error else ""


def node_entry(node: NodeExecution, parent: str | None = None, depth: int = 0) -> dict[str, Any]:
    return {
        "node_execute_uuid": node.id,
        "node_id": node.node_id,
        "node_type": node.node_type,
        "title": node.node_title,
        "status": node.status,
        "inputs": parsed(node.inputs),
        "outputs": parsed(node.outputs),
        "error": node.error,
        "error_level": _error_level(node),
        "warnings": node.warnings,
        "started_at": node.started_at,
        "finished_at": node.finished_at,
        "parent": parent,
        "depth": depth,
        "iteration": node.iteration,
        # null for a node that called no model: the timeline shows tokens only where a model was called
        "input_tokens": node.input_tokens,
        "output_tokens": node.output_tokens,
    }


def run_record(run: Run, workflow_name: str) -> dict[str, Any]:
    return {
        "execute_id": run.execute_id,
        "workflow_id": run.workflow_id,
        "workflow_name": workflow_name,
        "version": run.version,
        "space_id": run.space_id,
        "status": run.status,
        "run_mode": run.run_mode,
        "connector_id": run.connector_id,
        "connector": CONNECTORS.get(run.connector_id, run.connector_id),
        "bot_id": run.bot_id,
        "app_id": run.app_id,
        "inputs": parsed(run.inputs),
        "output": parsed(run.output),
        "error_code": run.error_code,
        "error_message": run.error_message,
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "logid": run.logid,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
    }


def interrupt_item(interrupt: InterruptRecord) -> dict[str, Any]:
    return {
        "event_id": f"{interrupt.execute_id}/{interrupt.event_id}",
        "interrupt_type": interrupt.kind,
        "node_id": interrupt.node_id,
        "node_title": interrupt.node_title,
        "node_type": interrupt.node_type,
        "data": parsed(interrupt.data),
        "created_at": interrupt.created_at,
    }


async def run(store: Store, token: Token, execute_id: str) -> Run:
    found = await store.get_run(execute_id) if execute_id.isdigit() else None
    return visible_run(token, found, f"run {execute_id}")


async def run_progress(store: Store, token: Token, execute_id: str) -> tuple[Run, dict[str, Any], list[dict[str, Any]]]:
    """The run (its record, and as the page shows it) and its timeline; a live view polls this while it runs."""
    found = await run(store, token, execute_id)
    nodes = await store.list_node_executions(found.execute_id)
    owner = await store.get_workflow(found.workflow_id, with_canvas=False)
    return found, run_record(found, owner.name if owner else ""), timeline(nodes)


async def run_detail(store: Store, token: Token, execute_id: str, node_types: NodeTypes) -> dict[str, Any]:
    """Everything a run's page shows: the run, its timeline, the question it waits on, its version's canvas."""
    found, record, nodes = await run_progress(store, token, execute_id)
    version = await store.get_version(found.workflow_id, found.version)
    interrupt = await store.pending_interrupt(found.execute_id) if found.status == INTERRUPTED else None
    return {
        "run": record,
        "nodes": nodes,
        "interrupt": interrupt_item(interrupt) if interrupt else None,
        "canvas": canvas_payload(version.version, version.canvas, node_types) if version else None,
    }
