"""Chatflows: `POST /v1/workflows/chat` (cozepy `workflows.chat.stream`). cozepy's conversation and message
calls are in `routes_conversations.py`.

The chat stream's framing and payloads are in `chat_sse.py`.

`POST /v1/workflow/conversation/create` is Coze Studio's conversation by name (see
`ChatService.named_conversation`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from knotflow.api import errors
from knotflow.api.chat_sse import chat_frames, conversation_data
from knotflow.api.requests import _id_text
from knotflow.api.state import AppState, open_api
from knotflow.api.streaming import SSEResponse
from knotflow.errors import BadRequest
from knotflow.service.chat import ChatRequest, EnterMessage
from knotflow.service.runs import DEFAULT_CONNECTOR, check_ext, parse_parameters

MAX_NAME_LENGTH = 255  # a conversation name's column


class ChatMessageBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str
    content: str = ""
    content_type: str = "text"

    def to_message(self) -> EnterMessage:
        return EnterMessage(self.role, self.content, self.content_type)


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workflow_id: str
    additional_messages: list[ChatMessageBody] = []
    parameters: Any = None
    app_id: str | None = None
    bot_id: str | None = None
    conversation_id: str | None = None
    ext: Any = None
    connector_id: str | None = None

    _ids = field_validator("workflow_id", "app_id", "bot_id", "conversation_id", "connector_id", mode="before")(
        _id_text
    )

    def to_request(self) -> ChatRequest:
        if not self.workflow_id.strip():
            raise BadRequest("workflow_id is required")
        return ChatRequest(
            workflow_id=self.workflow_id.strip(),
            messages=[message.to_message() for message in self.additional_messages],
            parameters=parse_parameters(self.parameters),
            conversation_id=self.conversation_id or None,
            app_id=self.app_id or None,
            bot_id=self.bot_id or None,
            ext=check_ext(self.ext),
            connector_id=self.connector_id or DEFAULT_CONNECTOR,
        )


@open_api
async def workflows_chat(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    body = await state.json_body(request, ChatBody)
    chat = state.chat
    turn = await chat.begin(body.to_request(), token, logid)
    run = turn.handle.run
    chat.start(turn, state.debug_url(run))
    return SSEResponse(chat_frames(turn, chat.events(turn)), on_disconnect=lambda: chat.disconnect(turn),
                       headers={errors.LOGID_HEADER: logid, errors.EXECUTE_ID_HEADER: run.execute_id},
                       send_timeout=state.settings.stream_send_timeout)


class NamedConversationBody(BaseModel):
    """Coze Studio's CreateConversationRequest (`draft_mode` is ignored: only published chatflows chat)."""

    model_config = ConfigDict(extra="ignore")

    conversation_name: str = Field(default="", max_length=MAX_NAME_LENGTH)
    get_or_create: bool = False
    app_id: str | None = None
    connector_id: str | None = None
    workflow_id: str | None = None
    space_id: str | None = None

    _ids = field_validator("app_id", "connector_id", "workflow_id", "space_id", mode="before")(_id_text)


@open_api
async def create_named_conversation(request: Request, state: AppState, logid: str) -> Response:
    token = await state.auth(request)
    body = await state.json_body(request, NamedConversationBody)
    conversation = await state.chat.named_conversation(
        token, body.conversation_name, connector_id=body.connector_id or DEFAULT_CONNECTOR,
        app_id=body.app_id or "", get_or_create=body.get_or_create, workflow_id=body.workflow_id or "",
        space_id=body.space_id or "",
    )
    return errors.ok(conversation_data(conversation), logid)


def chat_routes() -> list[Route]:
    return [
        Route("/v1/workflows/chat", workflows_chat, methods=["POST"]),
        Route("/v1/workflow/conversation/create", create_named_conversation, methods=["POST"]),
    ]
