"""Chatflows: `workflows.chat` runs a published chatflow inside a conversation, on top of `RunService`.

A chat is one round of a conversation: the user's last message becomes the Start node's `USER_INPUT`, the run's
answers (Output node messages and the End node's answer) are streamed as `conversation.message.*` events, and
both the user's message and the answers are appended to the conversation. Nodes see the conversation's earlier
rounds through `RunServices.extra` (see `knotflow.nodes._chat_history`).

A question (Question or Input node) ends the chat with the question as an assistant message and
`conversation.chat.requires_action`; the conversation remembers the question, and the next chat in it answers
it: its user message resumes the waiting run instead of starting a new one (as Coze Studio's OpenAPIChatFlowRun
does with the conversation's bound interrupt).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from knotflow import jsonutil
from knotflow.engine.events import NodeMessage
from knotflow.errors import BadRequest, KnotflowError, NodeError, NotFound, PermissionDenied
from knotflow.ids import new_id
from knotflow.models.client import Message
from knotflow.nodes._chat_history import CHAT_HISTORY, MAX_ROUNDS, ChatHistory
from knotflow.service.runs import (
    DEFAULT_CONNECTOR,
    Failed,
    Finished,
    Paused,
    ResumeRequest,
    RunHandle,
    RunRequest,
    RunService,
)
from knotflow.store.records import FAIL, RUN_MODE_STREAM, SUCCESS, ChatMessage, Conversation, Token
from knotflow.store.repository import Store

USER, ASSISTANT = "user", "assistant"
QUESTION, ANSWER = "question", "answer"
TEXT, OBJECT_STRING = "text", "object_string"
MAX_ADDITIONAL_MESSAGES = 50  # Coze's limit on additional_messages
ANSWER_NODES = frozenset({"Message", "End"})  # display keys of the nodes whose messages answer the user
USER_INPUT, CONVERSATION_NAME = "USER_INPUT", "CONVERSATION_NAME"  # a chatflow Start node's system inputs
DEFAULT_CONVERSATION_NAME = "Default"

CHAT_CREATED = "conversation.chat.created"
CHAT_IN_PROGRESS = "conversation.chat.in_progress"
MESSAGE_DELTA = "conversation.message.delta"
MESSAGE_COMPLETED = "conversation.message.completed"
CHAT_COMPLETED = "conversation.chat.completed"
CHAT_FAILED = "conversation.chat.failed"
CHAT_REQUIRES_ACTION = "conversation.chat.requires_action"
DONE = "done"


@dataclass(slots=True)
class EnterMessage:
    """A message the caller sends (cozepy's Message: role, content, content_type)."""

    role: str
    content: str
    content_type: str = TEXT

    def text(self) -> str:
        """What the workflow gets as USER_INPUT: the text, or an object_string's texts and file ids joined."""
        if self.content_type == TEXT:
            return self.content
        parts = jsonutil.loads(self.content)
        texts = [str(p["text"]) for p in parts if isinstance(p, dict) and p.get("text")]
        files = [str(p.get("file_url") or p.get("file_id")) for p in parts
                 if isinstance(p, dict) and (p.get("file_url") or p.get("file_id"))]
        return ",".join(texts) + ",".join(files)


@dataclass(slots=True)
class ChatRequest:
    workflow_id: str
    messages: list[EnterMessage]
    parameters: dict[str, Any] = field(default_factory=dict)
    conversation_id: str | None = None
    app_id: str | None = None
    bot_id: str | None = None
    ext: dict[str, str] = field(default_factory=dict)
    connector_id: str = DEFAULT_CONNECTOR


@dataclass(slots=True)
class ChatEvent:
    """One event of a chat stream: its name and its `data` object."""

    event: str
    data: dict[str, Any]


@dataclass(slots=True)
class ChatTurn:
    """A chat under way: the run that answers it and where its messages go."""

    handle: RunHandle
    conversation: Conversation
    chat_id: str
    created_at: float


def check_messages(messages: list[EnterMessage], *, last_from_user: bool = True) -> None:
    if not messages and last_from_user:
        raise BadRequest("additional_messages is required: the last one is the user's message")
    if len(messages) > MAX_ADDITIONAL_MESSAGES:
        raise BadRequest(f"additional_messages holds at most {MAX_ADDITIONAL_MESSAGES} messages")
    for index, message in enumerate(messages):
        if message.role not in (USER, ASSISTANT):
            raise BadRequest(f"additional_messages[{index}].role must be 'user' or 'assistant'")
        if message.content_type not in (TEXT, OBJECT_STRING):
            raise BadRequest(f"additional_messages[{index}].content_type must be 'text' or 'object_string'")
        if message.content_type == OBJECT_STRING:
            try:
                parts = jsonutil.loads(message.content)
            except jsonutil.JSONDecodeError as exc:
                raise BadRequest(f"additional_messages[{index}].content is not a JSON list") from exc
            if not isinstance(parts, list):
                raise BadRequest(f"additional_messages[{index}].content is not a JSON list")
    if last_from_user and messages[-1].role != USER:
        raise BadRequest("the last of additional_messages must be the user's message (role 'user')")


def rounds_of(conversation_id: str, messages: list[EnterMessage], at: float) -> list[ChatMessage]:
    """Earlier messages the caller hands over, as rounds of the conversation: each user message opens a round,
    an assistant message joins the round before it (one before any user message is dropped, as Coze does)."""
    stored: list[ChatMessage] = []
    chat_id = ""
    for message in messages:
        if message.role == USER:
            chat_id = new_id()
        elif not chat_id:
            continue
        stored.append(ChatMessage(id=new_id(), conversation_id=conversation_id, chat_id=chat_id, role=message.role,
                                  type=QUESTION if message.role == USER else ANSWER, content=message.content,
                                  content_type=message.content_type, created_at=at))
    return stored


def question_text(data: str) -> str:
    """The open question of a Question node's interrupt data (`{"messages": [...]}`), options one per line;
    any other payload (an Input node's form) as it is."""
    try:
        payload = jsonutil.loads(data)
    except jsonutil.JSONDecodeError:
        return data
    messages = payload.get("messages") if isinstance(payload, dict) else None
    questions = [m for m in messages or [] if isinstance(m, dict) and m.get("type") == QUESTION]
    if not questions:
        return data
    content = questions[-1].get("content")
    if isinstance(content, dict):
        options = [str(option.get("name", "")) for option in content.get("options") or [] if isinstance(option, dict)]
        return "\n".join([str(content.get("question", "")), *options])
    return str(content)


async def default_space(store: Store, token: Token) -> str:
    """The token's first space, or the default space for a token that may use every space."""
    if token.space_ids is None:
        return (await store.ensure_space()).id
    if not token.space_ids:
        raise PermissionDenied("the token has no access to any space")
    return (await store.ensure_space(token.space_ids[0])).id


class ChatService:
    def __init__(self, runs: RunService, store: Store) -> None:
        self.runs = runs
        self.store = store

    async def create_conversation(self, token: Token, connector_id: str, *, name: str = "",
                                  meta_data: dict[str, str] | None = None,
                                  messages: list[EnterMessage] | None = None) -> Conversation:
        """A new conversation in the token's first space (`conversations.create`), with optional first messages."""
        check_messages(messages or [], last_from_user=False)
        space_id = await default_space(self.store, token)
        conversation = await self.store.create_conversation(space_id, connector_id, name=name, meta_data=meta_data,
                                                            creator_id=token.id)
        await self.store.add_messages(rounds_of(conversation.id, messages or [], time.time()))
        return conversation

    async def _conversation(self, request: ChatRequest, token: Token, space_id: str) -> Conversation:
        if request.conversation_id is None:
            name = str(request.parameters.get(CONVERSATION_NAME) or "")
            return await self.store.create_conversation(space_id, request.connector_id, name=name,
                                                        creator_id=token.id)
        conversation = await self.store.get_conversation(request.conversation_id)
        # Conversations are isolated per space and per channel: any other one is reported as absent.
        if (conversation is None or conversation.space_id != space_id
                or conversation.connector_id != request.connector_id or not token.can_access(conversation.space_id)):
            raise NotFound(f"conversation {request.conversation_id} does not exist in the workflow's space "
                           f"for connector {request.connector_id}")
        return conversation

    async def begin(self, request: ChatRequest, token: Token, logid: str = "") -> ChatTurn:
        """Check the request, find or create the conversation, start (or resume) the run, record the user's
        message. Every error here comes before the stream starts."""
        check_messages(request.messages)
        run_request = RunRequest(workflow_id=request.workflow_id, parameters=dict(request.parameters),
                                 bot_id=request.bot_id, app_id=request.app_id, ext=request.ext,
                                 connector_id=request.connector_id)
        workflow, _, _ = await self.runs.resolve(run_request, token)
        if workflow.mode != "chatflow":
            raise BadRequest(f"workflow {workflow.id} is a workflow, not a chatflow: run it with stream_run")
        conversation = await self._conversation(request, token, workflow.space_id)
        earlier = await self.store.recent_rounds(conversation.id, MAX_ROUNDS)
        history = ChatHistory([[_model_message(m) for m in round_] for round_ in earlier])
        user_message = request.messages[-1]
        user_input = user_message.text()
        services = {CHAT_HISTORY: history}
        handle = await self._answer_pending(conversation, workflow.id, user_input, request, token, logid, services)
        if handle is None:
            run_request.parameters[USER_INPUT] = user_input
            run_request.parameters.setdefault(CONVERSATION_NAME, conversation.name or DEFAULT_CONVERSATION_NAME)
            run_request.services = services
            handle = await self.runs.begin(run_request, token, RUN_MODE_STREAM, logid)
        now = time.time()
        turn = ChatTurn(handle, conversation, new_id(), now)
        stored = rounds_of(conversation.id, request.messages[:-1], now)
        stored.append(ChatMessage(id=new_id(), conversation_id=conversation.id, chat_id=turn.chat_id, role=USER,
                                  type=QUESTION, content=user_message.content,
                                  content_type=user_message.content_type, created_at=now))
        try:
            await self.store.add_messages(stored)
        except Exception:
            if handle.task is not None:
                handle.task.cancel()
            raise
        return turn

    async def _answer_pending(self, conversation: Conversation, workflow_id: str, answer: str,
                              request: ChatRequest, token: Token, logid: str,
                              services: dict[str, Any]) -> RunHandle | None:
        """Resume the run waiting on the conversation's question with the user's message; None when there is
        no question to answer (or its run is over: it expired or failed), so that a new run starts."""
        pending = conversation.pending_event
        if pending is None:
            return None
        if conversation.pending_workflow != workflow_id:
            raise BadRequest(f"conversation {conversation.id} waits for the answer to a question of workflow "
                             f"{conversation.pending_workflow}")
        resume = ResumeRequest(workflow_id, pending, answer, conversation.pending_kind or 0, request.connector_id,
                               services)
        try:
            handle = await self.runs.resume(resume, token, logid)
        except KnotflowError:
            run = await self.store.get_run(pending.partition("/")[0])
            if run is not None and run.status not in (SUCCESS, FAIL):
                raise  # the answer was refused (the question stays open), or another chat answered it just now
            await self.store.set_pending_question(conversation.id, None, replacing=pending)
            return None
        await self.store.set_pending_question(conversation.id, None, replacing=pending)
        return handle

    async def events(self, turn: ChatTurn, debug_url: str) -> AsyncIterator[ChatEvent]:
        """The chat's events: created, in progress, the answers as deltas and completed messages, then
        completed / failed / requires_action, and done. The answers are appended to the conversation before the
        chat's terminal event is sent."""
        yield ChatEvent(CHAT_CREATED, self._chat(turn, "created"))
        yield ChatEvent(CHAT_IN_PROGRESS, self._chat(turn, "in_progress"))
        answers: list[ChatMessage] = []
        # One message per answering node; parallel branches may stream at the same time.
        open_messages: dict[str, tuple[str, list[str]]] = {}
        async for item in self.runs.events(turn.handle, self.runs.settings.ping_interval):
            if item is None:
                continue  # a chat stream has no keep-alive event cozepy would accept
            if isinstance(item, NodeMessage):
                if item.node_type not in ANSWER_NODES:
                    continue  # a question's own message: shown from its interrupt below
                message_id, parts = open_messages.setdefault(item.node_id, (new_id(), []))
                if item.content:
                    parts.append(item.content)
                    yield ChatEvent(MESSAGE_DELTA, self._message(turn, message_id, item.content))
                if item.is_finish:
                    del open_messages[item.node_id]
                    if parts:
                        answers.append(self._answer(turn, message_id, "".join(parts)))
                        yield ChatEvent(MESSAGE_COMPLETED, self._message(turn, message_id, answers[-1].content))
                continue
            if isinstance(item, Paused):
                question = self._answer(turn, new_id(), question_text(item.interrupt.data))
                answers.append(question)
                yield ChatEvent(MESSAGE_DELTA, self._message(turn, question.id, question.content))
                yield ChatEvent(MESSAGE_COMPLETED, self._message(turn, question.id, question.content))
                await self.store.add_messages(answers)
                await self.store.set_pending_question(turn.conversation.id, item.event_id, turn.handle.run.workflow_id,
                                                      item.interrupt.kind)
                yield ChatEvent(CHAT_REQUIRES_ACTION, self._chat(turn, "requires_action"))
            elif isinstance(item, Finished):
                await self.store.add_messages(answers)
                yield ChatEvent(CHAT_COMPLETED, self._chat(turn, "completed", completed_at=time.time()))
            elif isinstance(item, Failed):
                await self.store.add_messages(answers)
                error = item.error
                code = 5000 if isinstance(error, NodeError) else error.code
                yield ChatEvent(CHAT_FAILED, self._chat(turn, "failed", failed_at=time.time(),
                                                        last_error={"code": code, "msg": error.stream_message()}))
            yield ChatEvent(DONE, {"debug_url": debug_url})

    def _chat(self, turn: ChatTurn, status: str, **extra: Any) -> dict[str, Any]:
        run = turn.handle.run
        data: dict[str, Any] = {
            "id": turn.chat_id,
            "conversation_id": turn.conversation.id,
            "created_at": int(turn.created_at),
            "last_error": {"code": 0, "msg": ""},
            "status": status,
            "usage": {"token_count": run.input_tokens + run.output_tokens, "output_count": run.output_tokens,
                      "input_count": run.input_tokens},
            "section_id": turn.conversation.id,
            "execute_id": run.execute_id,
        }
        for key, value in extra.items():
            data[key] = int(value) if isinstance(value, float) else value
        return data

    def _message(self, turn: ChatTurn, message_id: str, content: str) -> dict[str, Any]:
        return {"id": message_id, "conversation_id": turn.conversation.id, "role": ASSISTANT, "type": ANSWER,
                "content": content, "content_type": TEXT, "chat_id": turn.chat_id,
                "section_id": turn.conversation.id, "created_at": int(time.time())}

    def _answer(self, turn: ChatTurn, message_id: str, content: str) -> ChatMessage:
        return ChatMessage(id=message_id, conversation_id=turn.conversation.id, chat_id=turn.chat_id,
                           role=ASSISTANT, type=ANSWER, content=content, content_type=TEXT, created_at=time.time())


def _model_message(message: ChatMessage) -> Message:
    # Stored object_string content was checked on the way in (check_messages).
    return {"role": message.role, "content": EnterMessage(message.role, message.content, message.content_type).text()}


def conversation_data(conversation: Conversation) -> dict[str, Any]:
    """cozepy's Conversation: id, created_at, meta_data, last_section_id (+ name, connector_id, creator_id)."""
    return {"id": conversation.id, "created_at": int(conversation.created_at), "meta_data": conversation.meta_data,
            "last_section_id": conversation.id, "name": conversation.name,
            "updated_at": int(conversation.updated_at), "creator_id": conversation.creator_id,
            "connector_id": conversation.connector_id}

