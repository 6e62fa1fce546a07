"""Chatflows: `workflows.chat` runs a published chatflow inside a conversation, on top of `RunService`.

A chat is one round of a conversation: the user's last message becomes the Start node's `USER_INPUT`, the run's
answers (Output node messages and the End node's answer) are streamed as `conversation.message.*` events, and
both the user's message and the answers are appended to the conversation. Nodes see the conversation's earlier
rounds through `RunServices.extra` (see `knotflow.nodes._chat_history`).

A question (Question or Input node) ends the chat with the question as an assistant message and
`conversation.chat.requires_action`; the conversation remembers the question, and the next chat in it answers
it: its user message resumes the waiting run instead of starting a new one (as Coze Studio's OpenAPIChatFlowRun
does with the conversation's bound interrupt).

One chat runs in a conversation at a time: a chat holds a lease on the conversation row (claimed by a
compare-and-set, renewed while it runs, so it holds across processes sharing the database, and lapses
`CHAT_LEASE` seconds after a process that died mid-chat stopped renewing it); another chat meanwhile is refused
with 4016. The chat's events are produced by a task of its own, not by the client's stream, so that what the run
answers is recorded even after the client left (see `ChatService.disconnect`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from knotflow.contract import MAX_HISTORY_ROUNDS, ChatHistory, Message
from knotflow.dsl import jsonutil
from knotflow.engine.events import NodeMessage
from knotflow.errors import BadRequest, KnotflowError, NotFound
from knotflow.ids import new_id
from knotflow.service.access import (
    PERMISSION_RUN,
    check_permission,
    token_space,
    visible_conversation,
    visible_space,
    visible_workflow,
)
from knotflow.service.conversations import (
    DEFAULT_CONVERSATION_NAME,
    NewMessage,
    RunConversation,
    check_message,
    rounds_of,
)
from knotflow.service.message_content import MessageContent, as_text
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
from knotflow.store.repository import ConversationScope, Store

log = logging.getLogger(__name__)

USER, ASSISTANT = "user", "assistant"
QUESTION, ANSWER = "question", "answer"
TEXT, OBJECT_STRING = "text", "object_string"
MAX_ADDITIONAL_MESSAGES = 50  # Coze's limit on additional_messages
ANSWER_NODES = frozenset({"Message", "End"})  # display keys of the nodes whose messages answer the user
USER_INPUT, CONVERSATION_NAME = "USER_INPUT", "CONVERSATION_NAME"  # a chatflow Start node's system inputs

CREATED, IN_PROGRESS, COMPLETED, FAILED, REQUIRES_ACTION = (
    "created", "in_progress", "completed", "failed", "requires_action")  # a chat's statuses, as Coze names them

CHAT_LEASE = 60.0  # seconds a chat holds its conversation without renewing; a dead process's chat lapses after it
RENEW_EVERY = CHAT_LEASE / 3


class ConversationOccupied(KnotflowError):
    """Coze's 4016: a chat is already running in the conversation."""

    code = 4016


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
        return ",".join(texts + files)

    def new(self) -> NewMessage:
        return NewMessage(self.role, self.content, self.content_type)


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


@dataclass(frozen=True, slots=True)
class ChatProgress:
    """The chat's status changed; the run's token usage at that moment."""

    status: str  # CREATED, IN_PROGRESS, COMPLETED, FAILED or REQUIRES_ACTION
    input_tokens: int
    output_tokens: int
    at: float
    error: KnotflowError | None = None  # why it failed


@dataclass(frozen=True, slots=True)
class AnswerText:
    """Text of an answer (or of a question the run asks): a piece as it comes, or the whole message once it is
    complete (`whole`)."""

    message_id: str
    content: str
    whole: bool
    at: float


@dataclass(frozen=True, slots=True)
class ChatDone:
    """The chat's last item."""

    debug_url: str


ChatItem = ChatProgress | AnswerText | ChatDone


@dataclass(slots=True)
class ChatTurn:
    """A chat under way: the run that answers it, where its messages go, and the items for its client
    (`None`: a keep-alive; `_END`: no more)."""

    handle: RunHandle
    conversation: Conversation
    chat_id: str
    created_at: float
    out: asyncio.Queue[ChatItem | None] = field(default_factory=asyncio.Queue)
    listening: bool = True  # the client is still there to read `out`
    unread: int = 0  # bytes of answers in `out` the client has not taken yet
    room: asyncio.Event = field(default_factory=asyncio.Event)
    # The conversation's question this chat answers ("<execute_id>/<event id>"). It stays the pending question
    # until the resumed run ends, so that a resume cut short by a dead process, whose question the sweeper hands
    # back, is answered by the next chat rather than replaced by a new run.
    answered: str | None = None


_END = ChatDone("")


def check_messages(messages: list[EnterMessage]) -> None:
    if not messages:
        raise BadRequest("additional_messages is required: the last one is the user's message")
    if len(messages) > MAX_ADDITIONAL_MESSAGES:
        raise BadRequest(f"additional_messages holds at most {MAX_ADDITIONAL_MESSAGES} messages")
    for index, message in enumerate(messages):
        check_message(message.new(), f"additional_messages[{index}]")
    if messages[-1].role != USER:
        raise BadRequest("the last of additional_messages must be the user's message (role 'user')")


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


class ChatService:
    def __init__(self, runs: RunService, store: Store, content: MessageContent | None = None) -> None:
        self.runs = runs
        self.store = store
        self.content = content  # reads a multimodal user message's files (None: its text only)
        self._drivers: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """On shutdown (after the runs were stopped): let the chats record how their runs ended."""
        if self._drivers:
            _, pending = await asyncio.wait(set(self._drivers), timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def named_conversation(self, token: Token, name: str, *, connector_id: str, app_id: str = "",
                                 get_or_create: bool = False, workflow_id: str = "",
                                 space_id: str = "") -> Conversation:
        """`/v1/workflow/conversation/create` as Coze Studio: the conversation a name stands for (per space, app
        and connector). `get_or_create` returns it, created on first use; otherwise a new conversation
        takes the name's place (a fresh start) and a name never used is 4200, except the app's conversation
        templates ("Default" and those `knotflow app conversation add` defined). The space is the workflow's,
        else `space_id`, else the token's first."""
        name = name.strip()
        if not name:
            raise BadRequest("conversation_name is required")
        check_permission(token, PERMISSION_RUN)
        if app_id and self.runs.platform is not None:
            await self.runs.platform.check_owner(token, None, app_id)
        if workflow_id:
            space_id = visible_workflow(token, await self.runs.workflow(workflow_id), workflow_id).space_id
        elif not space_id:
            space_id = await token_space(self.store, token)
        else:
            visible_space(token, space_id)
            if await self.store.get_space(space_id) is None:
                raise NotFound(f"space {space_id} does not exist")
        scope = ConversationScope(space_id, app_id, connector_id)
        if not get_or_create:
            renewed = await self.store.named_conversation(scope, name, renew=True, creator_id=token.id)
            if renewed is not None:
                return renewed
            templates = [t.name for t in await self.store.templates(app_id)] if app_id else []
            if name != DEFAULT_CONVERSATION_NAME and name not in templates:
                raise NotFound(f"conversation name {name!r} does not exist: create it with get_or_create true")
        conversation = await self.store.named_conversation(scope, name, creator_id=token.id)
        assert conversation is not None  # only a renewal finds nothing
        return conversation

    async def _conversation(self, request: ChatRequest, token: Token, space_id: str) -> Conversation:
        if request.conversation_id is None:
            # As Studio: a chat without conversation_id continues the conversation its CONVERSATION_NAME stands
            # for (created on first use). Without a name (Studio refuses that) it starts a new conversation.
            name = request.parameters.get(CONVERSATION_NAME)
            if isinstance(name, str) and name.strip():
                scope = ConversationScope(space_id, request.app_id or request.bot_id or "", request.connector_id)
                found = await self.store.named_conversation(scope, name.strip(), creator_id=token.id)
                assert found is not None  # only a renewal finds nothing
                return found
            return await self.store.create_conversation(space_id, request.connector_id, creator_id=token.id,
                                                        bot_id=request.app_id or request.bot_id or "")
        conversation = await self.store.get_conversation(request.conversation_id)
        return visible_conversation(token, conversation, request.conversation_id, space_id=space_id,
                                    connector_id=request.connector_id)

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
        chat_id = new_id()
        if not await self.store.claim_conversation(conversation.id, chat_id, time.time(), CHAT_LEASE):
            raise ConversationOccupied(f"conversation {conversation.id} is occupied: a chat is running in it; "
                                       "send the next message when it has ended")
        handle: RunHandle | None = None
        try:
            earlier = await self.store.recent_rounds(conversation.id, MAX_HISTORY_ROUNDS)
            history = ChatHistory([[_model_message(m) for m in round_] for round_ in earlier])
            user_message = request.messages[-1]
            user_input = user_message.text()
            chat = RunConversation(conversation.id, conversation.section_id, chat_id)
            if user_message.content_type == OBJECT_STRING and self.content is not None:
                # The model gets the message's files as files (see nodes/_multimodal.py); USER_INPUT is its
                # texts then its files' URLs, as Coze Studio writes it.
                chat.user_message = await self.content.parts(OBJECT_STRING, user_message.content, token)
                user_input = as_text(chat.user_message)
            handle = await self._answer_pending(conversation, workflow.id, user_input, request, token, logid,
                                                history, chat)
            answered = conversation.pending_event if handle is not None else None
            if handle is None:
                run_request.parameters[USER_INPUT] = user_input
                run_request.parameters.setdefault(CONVERSATION_NAME, conversation.name or DEFAULT_CONVERSATION_NAME)
                run_request.chat_history = history
                run_request.conversation = chat
                handle = await self.runs.begin(run_request, token, RUN_MODE_STREAM, logid)
            now = time.time()
            stored = rounds_of(conversation, [m.new() for m in request.messages[:-1]], now)
            stored.append(ChatMessage(id=new_id(), conversation_id=conversation.id, chat_id=chat_id, role=USER,
                                      type=QUESTION, content=user_message.content,
                                      content_type=user_message.content_type, created_at=now))
            await self.store.add_messages(stored)
        except BaseException:
            if handle is not None and handle.task is not None:
                handle.task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.release_conversation(conversation.id, chat_id))
            raise
        return ChatTurn(handle, conversation, chat_id, now, answered=answered)

    def start(self, turn: ChatTurn, debug_url: str) -> None:
        """Follow the chat's run in a task of its own: it records the answers whether or not the client stays,
        and frees the conversation when the run has ended."""
        driver = asyncio.create_task(self._follow(turn, debug_url))
        self._drivers.add(driver)
        driver.add_done_callback(self._drivers.discard)

    def disconnect(self, turn: ChatTurn) -> None:
        """The client left. With KNOTFLOW_ON_DISCONNECT=cancel the run is cancelled and the conversation keeps
        the user's message and the answers as far as they came (an unfinished one marked `incomplete`); with
        `continue` the run goes on in the background and its whole answers are recorded when it ends."""
        if not turn.listening:
            return
        turn.listening = False
        while not turn.out.empty():  # nobody will read what waits there: let it go
            turn.out.get_nowait()
        turn.room.set()
        if self.runs.settings.on_disconnect == "continue":
            self.runs.keep_running(turn.handle)
        elif turn.handle.task is not None:
            turn.handle.task.cancel()

    async def _answer_pending(self, conversation: Conversation, workflow_id: str, answer: str,
                              request: ChatRequest, token: Token, logid: str,
                              history: ChatHistory, chat: RunConversation) -> RunHandle | None:
        """Resume the run waiting on the conversation's question with the user's message; None when there is
        no question to answer (or its run is over: it expired or failed), so that a new run starts."""
        pending = conversation.pending_event
        if pending is None:
            return None
        if conversation.pending_workflow != workflow_id:
            raise BadRequest(f"conversation {conversation.id} waits for the answer to a question of workflow "
                             f"{conversation.pending_workflow}")
        resume = ResumeRequest(workflow_id, pending, answer, conversation.pending_kind or 0, request.connector_id,
                               history, chat)
        try:
            handle = await self.runs.resume(resume, token, logid)
        except KnotflowError:
            run = await self.store.get_run(pending.partition("/")[0])
            if run is not None and run.status not in (SUCCESS, FAIL):
                raise  # the answer was refused (the question stays open), or another chat answered it just now
            await self.store.set_pending_question(conversation.id, None, replacing=pending)
            return None
        return handle

    async def events(self, turn: ChatTurn) -> AsyncIterator[ChatItem | None]:
        """The chat's items for its client, `None` for a keep-alive during a long silence: created, in
        progress, the answers as pieces and whole messages, then completed / failed / requires_action, and
        done. The answers are in the conversation before the chat's terminal item is sent."""
        while (item := await turn.out.get()) is not _END:
            if isinstance(item, AnswerText):
                turn.unread -= len(item.content)
                if turn.unread <= self.runs.settings.stream_buffer_bytes:
                    turn.room.set()
            yield item

    def _send(self, turn: ChatTurn, item: ChatItem | None) -> None:
        if turn.listening:
            turn.out.put_nowait(item)
            if isinstance(item, AnswerText):
                turn.unread += len(item.content)

    async def _wait_for_client(self, turn: ChatTurn) -> None:
        """Back-pressure: while the client has more than the stream buffer of answers unread, stop taking the
        run's messages (the run then waits too); a client that reads nothing for the send timeout is gone."""
        settings = self.runs.settings
        if turn.unread <= settings.stream_buffer_bytes or not turn.listening:
            return
        turn.room.clear()
        try:
            async with asyncio.timeout(settings.stream_send_timeout):
                while turn.unread > settings.stream_buffer_bytes and turn.listening:
                    await turn.room.wait()
                    turn.room.clear()
        except TimeoutError:
            self.disconnect(turn)

    async def _follow(self, turn: ChatTurn, debug_url: str) -> None:
        renewal = asyncio.create_task(self._renew(turn))
        try:
            await self._record(turn, debug_url)
        except Exception:
            log.exception("chat %s in conversation %s: its answers could not be recorded", turn.chat_id,
                          turn.conversation.id)
        finally:
            renewal.cancel()
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.release_conversation(turn.conversation.id, turn.chat_id))
            turn.out.put_nowait(_END)

    async def _renew(self, turn: ChatTurn) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY)
            try:
                held = await self.store.renew_conversation(turn.conversation.id, turn.chat_id,
                                                           time.time() + CHAT_LEASE)
            except Exception as exc:  # the database is briefly unreachable: the lease still has time left
                log.warning("chat %s: its conversation's lease could not be renewed: %s", turn.chat_id, exc)
                continue
            if not held:
                log.warning("chat %s lost conversation %s: its lease lapsed", turn.chat_id, turn.conversation.id)
                return

    async def _record(self, turn: ChatTurn, debug_url: str) -> None:
        send = self._send
        send(turn, self._progress(turn, CREATED))
        send(turn, self._progress(turn, IN_PROGRESS))
        answers: list[ChatMessage] = []
        # One message per answering node; parallel branches may stream at the same time.
        open_messages: dict[str, tuple[str, list[str]]] = {}
        async for item in self.runs.events(turn.handle, self.runs.settings.ping_interval):
            if item is None:
                send(turn, None)
                continue
            if isinstance(item, NodeMessage):
                if item.node_type not in ANSWER_NODES:
                    continue  # a question's own message: shown from its interrupt below
                message_id, parts = open_messages.setdefault(item.node_id, (new_id(), []))
                if item.content:
                    parts.append(item.content)
                    send(turn, AnswerText(message_id, item.content, False, time.time()))
                    await self._wait_for_client(turn)
                if item.is_finish:
                    del open_messages[item.node_id]
                    if parts:
                        answers.append(self._answer(turn, message_id, "".join(parts)))
                        send(turn, AnswerText(message_id, answers[-1].content, True, time.time()))
                continue
            if isinstance(item, Paused):
                question = self._answer(turn, new_id(), question_text(item.interrupt.data))
                answers.append(question)
                send(turn, AnswerText(question.id, question.content, False, time.time()))
                send(turn, AnswerText(question.id, question.content, True, time.time()))
                await self.store.add_messages(answers)
                await self.store.set_pending_question(turn.conversation.id, item.event_id, turn.handle.run.workflow_id,
                                                      item.interrupt.kind)
                send(turn, self._progress(turn, REQUIRES_ACTION))
            elif isinstance(item, Finished):
                await self.store.add_messages(answers)
                await self._answered(turn)
                send(turn, self._progress(turn, COMPLETED))
            elif isinstance(item, Failed):
                # What was answered before the failure (or the cancellation) stays, the unfinished part marked.
                for message_id, parts in open_messages.values():
                    if parts:
                        answers.append(self._answer(turn, message_id, "".join(parts), incomplete=True))
                await self.store.add_messages(answers)
                await self._answered(turn)
                send(turn, self._progress(turn, FAILED, item.error))
            send(turn, ChatDone(debug_url))

    async def _answered(self, turn: ChatTurn) -> None:
        """The resumed run has ended: the question it answered is no longer the conversation's."""
        if turn.answered is not None:
            await self.store.set_pending_question(turn.conversation.id, None, replacing=turn.answered)

    @staticmethod
    def _progress(turn: ChatTurn, status: str, error: KnotflowError | None = None) -> ChatProgress:
        run = turn.handle.run
        return ChatProgress(status, run.input_tokens, run.output_tokens, time.time(), error)

    def _answer(self, turn: ChatTurn, message_id: str, content: str, incomplete: bool = False) -> ChatMessage:
        return ChatMessage(id=message_id, conversation_id=turn.conversation.id, chat_id=turn.chat_id,
                           role=ASSISTANT, type=ANSWER, content=content, content_type=TEXT, created_at=time.time(),
                           incomplete=incomplete)


def _model_message(message: ChatMessage) -> Message:
    # Stored object_string content was checked on the way in (check_messages).
    return {"role": message.role, "content": EnterMessage(message.role, message.content, message.content_type).text()}
