"""cozepy's conversations and messages: `conversations.create / list / retrieve / update / delete / clear` and
`conversations.messages.create / list / retrieve / update / delete`, with cozepy's shapes and paging.

Every call that names a conversation takes `connector_id` in the query (default 1024): conversations of
another channel are absent, as the chat and run-history calls treat them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from knotflow.api import errors
from knotflow.api.chat_sse import conversation_data
from knotflow.api.requests import M, _id_text, int_query, parse_body
from knotflow.api.state import AppState, open_api
from knotflow.errors import BadRequest
from knotflow.service.conversations import MAX_PAGE, NewMessage
from knotflow.service.runs import DEFAULT_CONNECTOR
from knotflow.store.records import ChatMessage


class MessageBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str
    content: str = ""
    content_type: str = "text"
    meta_data: dict[str, str] | None = None

    def to_message(self) -> NewMessage:
        return NewMessage(self.role, self.content, self.content_type, dict(self.meta_data or {}))


class ConversationBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    bot_id: str | None = None
    connector_id: str | None = None
    name: str | None = None
    meta_data: dict[str, str] | None = None
    messages: list[MessageBody] | None = None

    _ids = field_validator("bot_id", "connector_id", mode="before")(_id_text)


class RenameBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None


class EditBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    content: str | None = None
    content_type: str | None = None
    meta_data: dict[str, str] | None = None


class ListBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    order: str | None = None
    chat_id: str | None = None
    before_id: str | None = None
    after_id: str | None = None
    limit: int | None = None

    _ids = field_validator("chat_id", "before_id", "after_id", mode="before")(_id_text)


def message_data(message: ChatMessage) -> dict[str, Any]:
    """cozepy's Message, for a stored message."""
    return {"id": message.id, "conversation_id": message.conversation_id, "bot_id": message.bot_id,
            "chat_id": message.chat_id, "section_id": message.section_id, "role": message.role,
            "type": message.type, "content": message.content, "content_type": message.content_type,
            "meta_data": message.meta_data, "created_at": int(message.created_at),
            "updated_at": int(message.updated_at or message.created_at), "reasoning_content": ""}


def _connector(request: Request) -> str:
    return request.query_params.get("connector_id") or DEFAULT_CONNECTOR


def _query_id(request: Request, name: str) -> str:
    value = (request.query_params.get(name) or "").strip()
    if not value:
        raise BadRequest(f"{name} is required")
    return value


async def _optional_body(request: Request, state: AppState, model: type[M]) -> M:
    """The JSON body as `model`; none at all reads as `{}` (cozepy sends no body on some calls)."""
    headers = request.headers
    if headers.get("content-length") == "0" or ("content-length" not in headers
                                                and "transfer-encoding" not in headers):
        return parse_body(model, {})
    return await state.json_body(request, model)


@open_api
async def create_conversation(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    body = await state.json_body(request, ConversationBody)
    conversation = await state.conversations.create(
        token, body.connector_id or DEFAULT_CONNECTOR, bot_id=body.bot_id or "", name=body.name or "",
        meta_data=body.meta_data, messages=[m.to_message() for m in body.messages or []])
    return errors.ok(conversation_data(conversation), logid)


@open_api
async def retrieve_conversation(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    conversation = await state.conversations.get(token, _query_id(request, "conversation_id"), _connector(request))
    return errors.ok(conversation_data(conversation), logid)


@open_api
async def list_conversations(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    sort = (request.query_params.get("sort_order") or "DESC").upper()
    if sort not in ("ASC", "DESC"):
        raise BadRequest("sort_order must be ASC or DESC")
    conversations, has_more = await state.conversations.list_conversations(
        token, (request.query_params.get("bot_id") or "").strip(), _connector(request),
        page_num=int_query(request, "page_num", 1, 1, 1_000_000),
        page_size=int_query(request, "page_size", MAX_PAGE, 1, MAX_PAGE), ascending=sort == "ASC")
    return errors.ok({"conversations": [conversation_data(c) for c in conversations], "has_more": has_more}, logid)


@open_api
async def update_conversation(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    body = await _optional_body(request, state, RenameBody)
    conversation = await state.conversations.rename(token, request.path_params["conversation_id"], body.name,
                                                    _connector(request))
    return errors.ok(conversation_data(conversation), logid)


@open_api
async def delete_conversation(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    await state.conversations.delete(token, request.path_params["conversation_id"], _connector(request))
    return errors.ok({}, logid)


@open_api
async def clear_conversation(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    conversation_id = request.path_params["conversation_id"]
    section_id = await state.conversations.clear(token, conversation_id, _connector(request))
    return errors.ok({"id": section_id, "conversation_id": conversation_id}, logid)


@open_api
async def create_message(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    body = await state.json_body(request, MessageBody)
    message = await state.conversations.add_message(token, _query_id(request, "conversation_id"), body.to_message(),
                                                    _connector(request))
    return errors.ok(message_data(message), logid)


@open_api
async def retrieve_message(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    message = await state.conversations.get_message(token, _query_id(request, "conversation_id"),
                                                    _query_id(request, "message_id"), _connector(request))
    return errors.ok(message_data(message), logid)


@open_api
async def modify_message(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    body = await _optional_body(request, state, EditBody)
    message = await state.conversations.edit_message(
        token, _query_id(request, "conversation_id"), _query_id(request, "message_id"), _connector(request),
        content=body.content, content_type=body.content_type, meta_data=body.meta_data)
    # cozepy reads this one response's payload from `message`, not `data`.
    return errors.JSONBody({"code": 0, "msg": "", "message": message_data(message), "detail": {"logid": logid}},
                           headers={errors.LOGID_HEADER: logid})


@open_api
async def delete_message(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    message = await state.conversations.delete_message(token, _query_id(request, "conversation_id"),
                                                       _query_id(request, "message_id"), _connector(request))
    return errors.ok(message_data(message), logid)


@open_api
async def list_messages(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    body = await _optional_body(request, state, ListBody)
    listed = await state.conversations.list_messages(
        token, _query_id(request, "conversation_id"), _connector(request), order=(body.order or "desc").lower(),
        chat_id=body.chat_id, before_id=body.before_id, after_id=body.after_id,
        limit=MAX_PAGE if body.limit is None else body.limit)
    # cozepy pages on the top-level first_id / last_id / has_more beside `data`.
    return errors.JSONBody({"code": 0, "msg": "", "data": [message_data(m) for m in listed.messages],
                            "first_id": listed.first_id, "last_id": listed.last_id, "has_more": listed.has_more,
                            "detail": {"logid": logid}}, headers={errors.LOGID_HEADER: logid})


def conversation_routes() -> list[Route]:
    return [
        Route("/v1/conversation/create", create_conversation, methods=["POST"]),
        Route("/v1/conversation/retrieve", retrieve_conversation, methods=["GET"]),
        Route("/v1/conversations", list_conversations, methods=["GET"]),
        Route("/v1/conversations/{conversation_id}", update_conversation, methods=["PUT"]),
        Route("/v1/conversations/{conversation_id}", delete_conversation, methods=["DELETE"]),
        Route("/v1/conversations/{conversation_id}/clear", clear_conversation, methods=["POST"]),
        Route("/v1/conversation/message/create", create_message, methods=["POST"]),
        Route("/v1/conversation/message/retrieve", retrieve_message, methods=["GET"]),
        Route("/v1/conversation/message/modify", modify_message, methods=["POST"]),
        Route("/v1/conversation/message/delete", delete_message, methods=["POST"]),
        Route("/v1/conversation/message/list", list_messages, methods=["POST"]),
    ]
