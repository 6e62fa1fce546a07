"""Reading the catalog: list workflows, one workflow, its published versions."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from knotflow.api import errors
from knotflow.api.requests import int_query
from knotflow.api.state import AppState, open_api
from knotflow.errors import BadRequest
from knotflow.service.access import PERMISSION_READ, check_permission, listable_spaces, visible_workflow
from knotflow.store.records import Workflow, WorkflowVersion
from knotflow.store.repository import PublishStatus

MODES = frozenset({"workflow", "chatflow"})
MAX_PAGE_TOKEN_DIGITS = 9  # an offset; larger ones overflow the databases' integers


def _basic(workflow: Workflow) -> dict[str, Any]:
    return {
        "workflow_id": workflow.id,
        "workflow_name": workflow.name,
        "description": workflow.description,
        "icon_url": workflow.icon_url,
        "app_id": workflow.app_id or "",
        "created_at": int(workflow.created_at),
        "updated_at": int(workflow.updated_at),
        "creator": {"id": workflow.creator_id or "0", "name": ""},
    }


def _version(version: WorkflowVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "description": version.description,
        "created_at": str(int(version.created_at)),
        "updated_at": str(int(version.created_at)),
        "workflow_id": version.workflow_id,
        "creator": {"id": version.creator_id or "0", "name": ""},
    }


@open_api
async def list_workflows(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    check_permission(token, PERMISSION_READ)
    query = request.query_params
    page_num = int_query(request, "page_num", 1, 1, 1_000_000)
    page_size = int_query(request, "page_size", 100, 1, 1000)
    mode = query.get("workflow_mode") or None
    if mode is not None and mode not in MODES:
        raise BadRequest("workflow_mode must be 'workflow' or 'chatflow'")
    try:
        status = PublishStatus(query.get("publish_status") or PublishStatus.ALL)
    except ValueError as exc:
        raise BadRequest(f"publish_status must be one of {', '.join(sorted(PublishStatus))}") from exc
    spaces = listable_spaces(token, query.get("workspace_id"))
    items, has_more = await state.store.list_workflows(
        space_ids=spaces,
        mode=mode,
        app_id=query.get("app_id") or None,
        publish_status=status,
        offset=(page_num - 1) * page_size,
        limit=page_size,
    )
    return errors.ok({"items": [_basic(w) for w in items], "has_more": has_more}, logid)


async def _visible_workflow(request: Request, state: AppState) -> Workflow:
    token = await state.auth(request)
    check_permission(token, PERMISSION_READ)
    workflow_id = request.path_params["workflow_id"]
    return visible_workflow(token, await state.store.get_workflow(workflow_id), workflow_id)


@open_api
async def retrieve_workflow(request: Request, state: AppState, logid: str) -> Response:
    workflow = await _visible_workflow(request, state)
    return errors.ok({"workflow_detail": _basic(workflow)}, logid)


@open_api
async def list_versions(request: Request, state: AppState, logid: str) -> Response:
    workflow = await _visible_workflow(request, state)
    page_size = int_query(request, "page_size", 10, 1, 1000)
    token = request.query_params.get("page_token") or "0"
    if not (token.isascii() and token.isdigit() and len(token) <= MAX_PAGE_TOKEN_DIGITS):
        raise BadRequest("page_token is invalid: pass the next_page_token of the previous page")
    status = request.query_params.get("publish_status")
    offset = int(token)
    versions: list[WorkflowVersion] = []
    has_more = False
    if status != "unpublished_draft":  # a draft that was never published has no versions
        versions, has_more = await state.store.list_versions(workflow.id, offset=offset, limit=page_size)
    data: dict[str, Any] = {"items": [_version(v) for v in versions], "has_more": has_more}
    if has_more:
        data["next_page_token"] = str(offset + len(versions))
    return errors.ok(data, logid)


def workflow_routes() -> list[Route]:
    return [
        Route("/v1/workflows", list_workflows, methods=["GET"]),
        Route("/v1/workflows/{workflow_id}", retrieve_workflow, methods=["GET"]),
        Route("/v1/workflows/{workflow_id}/versions", list_versions, methods=["GET"]),
    ]
