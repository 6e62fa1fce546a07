"""`GET /openapi.json`: an OpenAPI 3.1 document of every route, Coze-compatible and knotflow's own.

Request bodies are described by the same pydantic models the handlers validate with, so the document cannot
drift from what the server accepts; query parameters and responses are declared here, one entry per route.
`tests/api/test_openapi.py` checks that every route of the app is in the document, and schemathesis fuzzes the
server from it (CI runs a bounded pass; bench/README gives the longer one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.routing import BaseRoute, Route

from knotflow import __name__ as package
from knotflow.api.requests import CancelBody, ResumeBody, RunBody
from knotflow.api.routes_chat import ChatBody, NamedConversationBody
from knotflow.api.routes_console import AnswerBody, ImportBody, PublishBody, SignInBody, TryBody
from knotflow.api.routes_conversations import ConversationBody, EditBody, ListBody, MessageBody, RenameBody
from knotflow.api.routes_variables import VariablesBody

STRING: dict[str, Any] = {"type": "string"}
INTEGER: dict[str, Any] = {"type": "integer"}
ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["code", "msg"],
    "properties": {"code": INTEGER, "msg": STRING, "data": {}, "detail": {"type": "object"}},
}


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    where: str = "query"  # query | path | header
    schema: tuple[tuple[str, Any], ...] = (("type", "string"),)
    required: bool = False

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "in": self.where, "required": self.required or self.where == "path",
                "schema": dict(self.schema)}


def _int(name: str) -> Param:
    return Param(name, schema=(("type", "integer"),))


@dataclass(frozen=True, slots=True)
class Operation:
    summary: str
    body: type[BaseModel] | None = None
    params: tuple[Param, ...] = ()
    stream: bool = False  # answers text/event-stream once the request is accepted
    multipart: bool = False  # a file upload
    authenticated: bool = True
    binary: bool = False  # answers the file's bytes
    page: bool = False  # answers an HTML page (the web console)
    redirect: bool = False  # answers a permanent redirect


CONNECTOR = Param("connector_id")
CONVERSATION_ID = Param("conversation_id", required=True)
MESSAGE_ID = Param("message_id", required=True)

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/v1/workflow/stream_run"): Operation("Run a published workflow, streaming its events", RunBody,
                                                   stream=True),
    ("POST", "/v1/workflow/run"): Operation("Run a published workflow and wait for its result (or is_async)",
                                            RunBody),
    ("POST", "/v1/workflow/stream_resume"): Operation("Answer a run's question and stream on", ResumeBody,
                                                      stream=True),
    ("GET", "/v1/workflow/stream_attach"): Operation(
        "knotflow's own: re-attach to a run's stream after Last-Event-ID", params=(
            Param("workflow_id", required=True), Param("execute_id", required=True), CONNECTOR,
            Param("Last-Event-ID", "header", (("type", "string"), ("pattern", "^-?[0-9]+$")))), stream=True),
    ("POST", "/v1/workflow/cancel"): Operation("knotflow's own: cancel a queued, running or waiting run",
                                               CancelBody),
    ("GET", "/v1/workflows/{workflow_id}/run_histories/{execute_id}"): Operation(
        "A run's history", params=(Param("workflow_id", "path"), Param("execute_id", "path"), CONNECTOR)),
    ("GET", "/v1/workflows/{workflow_id}/run_histories/{execute_id}/execute_nodes/{node_execute_uuid}"): Operation(
        "One node execution of a run", params=(Param("workflow_id", "path"), Param("execute_id", "path"),
                                               Param("node_execute_uuid", "path"), CONNECTOR)),
    ("GET", "/work_flow"): Operation("A run's trace: every node execution", params=(
        Param("execute_id", required=True), CONNECTOR, Param("space_id"), Param("workflow_id"),
        Param("execute_mode"))),
    ("GET", "/v1/workflows"): Operation("List workflows", params=(
        Param("workspace_id"), Param("workflow_mode"), Param("app_id"), Param("publish_status"), _int("page_num"),
        _int("page_size"))),
    ("GET", "/v1/workflows/{workflow_id}"): Operation("A workflow", params=(Param("workflow_id", "path"),)),
    ("GET", "/v1/workflows/{workflow_id}/versions"): Operation("A workflow's published versions", params=(
        Param("workflow_id", "path"), Param("publish_status"), _int("page_size"), Param("page_token"))),
    ("POST", "/v1/files/upload"): Operation("Upload a file (multipart, one part `file`)", multipart=True),
    ("GET", "/v1/files/retrieve"): Operation("A file's metadata", params=(Param("file_id", required=True),)),
    ("GET", "/v1/files/{file_id}/content"): Operation(
        "A file's bytes: with the API token, or through a signed link (expires, signature)", params=(
            Param("file_id", "path"), Param("expires"), Param("signature"), Param("x-wf-file_name")), binary=True),
    ("POST", "/v1/workflows/chat"): Operation("Chat with a published chatflow, streaming conversation events",
                                              ChatBody, stream=True),
    ("POST", "/v1/workflow/conversation/create"): Operation("The conversation a name stands for",
                                                            NamedConversationBody),
    ("POST", "/v1/conversation/create"): Operation("Create a conversation", ConversationBody),
    ("GET", "/v1/conversation/retrieve"): Operation("A conversation", params=(CONVERSATION_ID, CONNECTOR)),
    ("GET", "/v1/conversations"): Operation("List conversations", params=(
        Param("bot_id"), CONNECTOR, _int("page_num"), _int("page_size"), Param("sort_order"))),
    ("PUT", "/v1/conversations/{conversation_id}"): Operation(
        "Rename a conversation", RenameBody, params=(Param("conversation_id", "path"), CONNECTOR)),
    ("DELETE", "/v1/conversations/{conversation_id}"): Operation(
        "Delete a conversation", params=(Param("conversation_id", "path"), CONNECTOR)),
    ("POST", "/v1/conversations/{conversation_id}/clear"): Operation(
        "Clear a conversation's context (a new section)", params=(Param("conversation_id", "path"), CONNECTOR)),
    ("POST", "/v1/conversation/message/create"): Operation("Add a message", MessageBody,
                                                           params=(CONVERSATION_ID, CONNECTOR)),
    ("GET", "/v1/conversation/message/retrieve"): Operation("A message",
                                                            params=(CONVERSATION_ID, MESSAGE_ID, CONNECTOR)),
    ("POST", "/v1/conversation/message/modify"): Operation("Edit a message", EditBody,
                                                           params=(CONVERSATION_ID, MESSAGE_ID, CONNECTOR)),
    ("POST", "/v1/conversation/message/delete"): Operation("Delete a message",
                                                           params=(CONVERSATION_ID, MESSAGE_ID, CONNECTOR)),
    ("POST", "/v1/conversation/message/list"): Operation("List a conversation's messages", ListBody,
                                                         params=(CONVERSATION_ID, CONNECTOR)),
    ("GET", "/v1/variables"): Operation("A user's values of a bot's or app's user variables", params=(
        Param("bot_id"), Param("app_id"), CONNECTOR, Param("connector_uid"), Param("keywords"))),
    ("PUT", "/v1/variables"): Operation("Set a user's values of a bot's or app's user variables", VariablesBody),
    # The web console: its pages, and the JSON API its pages call, signed in by a session cookie (not a token;
    # without one every call answers 4100) and sending X-CSRF-Token with every change.
    ("GET", "/console"): Operation("The web console (redirects to /console/)", authenticated=False, redirect=True),
    ("GET", "/console/"): Operation("The web console's page", authenticated=False, page=True),
    ("GET", "/console/api/session"): Operation("Who is signed in to the console, and the CSRF token",
                                               authenticated=False),
    ("POST", "/console/api/session"): Operation("Sign in to the console with an API token", SignInBody,
                                                authenticated=False),
    ("DELETE", "/console/api/session"): Operation("Sign out of the console"),
    ("GET", "/console/api/workflows"): Operation("The console's workflow list", params=(
        Param("q"), Param("space_id"), Param("app_id"), Param("status"), _int("page"), _int("page_size"))),
    ("POST", "/console/api/workflows"): Operation("Import a canvas as a workflow (console)", ImportBody),
    ("GET", "/console/api/workflows/{workflow_id}"): Operation("A workflow and its versions (console)",
                                                             params=(Param("workflow_id", "path"),)),
    ("GET", "/console/api/workflows/{workflow_id}/canvas"): Operation(
        "A workflow's canvas as the console draws it", params=(Param("workflow_id", "path"), Param("version"))),
    ("POST", "/console/api/workflows/{workflow_id}/publish"): Operation(
        "Publish a workflow's draft (console)", PublishBody, params=(Param("workflow_id", "path"),)),
    ("POST", "/console/api/workflows/{workflow_id}/runs"): Operation(
        "Try a workflow (console), streaming its events", TryBody, params=(Param("workflow_id", "path"),),
        stream=True),
    ("POST", "/console/api/files"): Operation("Upload a file for Try it (console)", multipart=True),
    ("GET", "/console/api/runs"): Operation("The console's run list", params=(
        Param("space_id"), Param("workflow_id"), Param("status"), Param("connector_id"), Param("since"),
        Param("until"), Param("after"), _int("page_size"))),
    ("GET", "/console/api/runs/{execute_id}"): Operation("A run's page data (console)",
                                                       params=(Param("execute_id", "path"),)),
    ("GET", "/console/api/runs/{execute_id}/live"): Operation(
        "A running run's node executions as they are recorded (console)", params=(Param("execute_id", "path"),),
        stream=True),
    ("POST", "/console/api/runs/{execute_id}/resume"): Operation(
        "Answer a run's question (console), streaming on", AnswerBody, params=(Param("execute_id", "path"),),
        stream=True),
    ("GET", "/health"): Operation("Liveness", authenticated=False),
    ("GET", "/openapi.json"): Operation("This document", authenticated=False),
}


class MissingOperation(Exception):
    """A route the document does not describe: add it to OPERATIONS."""


def _operation_spec(key: tuple[str, str], operation: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "Coze's envelope (`code` 0 on success)",
                                         "content": {"application/json": {"schema": ENVELOPE}}}}
    if operation.stream:
        responses["200"]["content"]["text/event-stream"] = {"schema": STRING}
    if operation.page:
        responses["200"]["content"]["text/html"] = {"schema": STRING}
    if operation.redirect:
        responses["308"] = {"description": "Where the console lives"}
    if operation.binary:
        responses["200"]["content"]["application/octet-stream"] = {"schema": {"type": "string",
                                                                             "format": "binary"}}
        responses["403"] = {"description": "A signed link that is invalid or expired",
                            "content": {"application/json": {"schema": ENVELOPE}}}
    spec: dict[str, Any] = {
        "operationId": f"{key[0].lower()}_{key[1].strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
        "summary": operation.summary,
        "parameters": [param.spec() for param in operation.params],
        "responses": responses,
    }
    if not operation.authenticated:
        spec["security"] = []
    if operation.body is not None:
        spec["requestBody"] = {"required": False, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{operation.body.__name__}"}}}}
    elif operation.multipart:
        spec["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}}}}}}
    return spec


def document(routes: list[BaseRoute], version: str) -> dict[str, Any]:
    """The OpenAPI document of `routes`; MissingOperation when one is not described."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for route in routes:
        if not isinstance(route, Route):
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            operation = OPERATIONS.get((method, route.path))
            if operation is None:
                raise MissingOperation(f"{method} {route.path} has no entry in knotflow.api.openapi.OPERATIONS")
            paths.setdefault(route.path, {})[method.lower()] = _operation_spec((method, route.path), operation)
            if operation.body is not None:
                schema = operation.body.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schema.pop("$defs", {}))
                schemas[operation.body.__name__] = schema
    return {
        "openapi": "3.1.0",
        "info": {"title": package, "version": version,
                 "description": "Coze-compatible workflow open API, and knotflow's own routes"},
        "servers": [{"url": "/"}],
        "components": {"schemas": schemas,
                       "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        "security": [{"token": []}],
        "paths": paths,
    }
