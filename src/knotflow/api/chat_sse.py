"""The chat stream's wire format (`/v1/workflows/chat`), beside the run streams' (`sse.py`): Coze's
`conversation.*` events with the payloads cozepy's Chat and Message models read, and conversations as cozepy's
Conversation.

The chat stream is framed as cozepy's chat parser wants it: `event:` and `data:` lines only. An `id:` line, as
the workflow streams carry, makes cozepy reject the chat stream, and so does an SSE comment (`:`), the usual
keep-alive; an unknown event would reach the caller as an UNKNOWN ChatEvent. The keep-alive during a long
silence is therefore a bare blank line: bytes on the wire for proxies, skipped by cozepy's parser and by
EventSource-style parsers alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from knotflow.dsl import jsonutil
from knotflow.errors import NodeError
from knotflow.service.chat import (
    ANSWER,
    ASSISTANT,
    COMPLETED,
    FAILED,
    TEXT,
    AnswerText,
    ChatDone,
    ChatItem,
    ChatProgress,
    ChatTurn,
)
from knotflow.store.records import Conversation

KEEP_ALIVE = b"\n"
MESSAGE_DELTA = "conversation.message.delta"
MESSAGE_COMPLETED = "conversation.message.completed"
DONE = "done"


def chat_data(turn: ChatTurn, progress: ChatProgress) -> dict[str, Any]:
    """cozepy's Chat."""
    run = turn.handle.run
    data: dict[str, Any] = {
        "id": turn.chat_id,
        "conversation_id": turn.conversation.id,
        "created_at": int(turn.created_at),
        "last_error": {"code": 0, "msg": ""},
        "status": progress.status,
        "usage": {"token_count": progress.input_tokens + progress.output_tokens,
                  "output_count": progress.output_tokens, "input_count": progress.input_tokens},
        "section_id": turn.conversation.section_id,
        "execute_id": run.execute_id,
    }
    if progress.status == COMPLETED:
        data["completed_at"] = int(progress.at)
    elif progress.status == FAILED:
        data["failed_at"] = int(progress.at)
        error = progress.error
        if error is not None:
            data["last_error"] = {"code": 5000 if isinstance(error, NodeError) else error.code,
                                  "msg": error.stream_message()}
    return data


def message_data(turn: ChatTurn, text: AnswerText) -> dict[str, Any]:
    """cozepy's Message, for an answer."""
    return {"id": text.message_id, "conversation_id": turn.conversation.id, "role": ASSISTANT, "type": ANSWER,
            "content": text.content, "content_type": TEXT, "chat_id": turn.chat_id,
            "section_id": turn.conversation.section_id, "created_at": int(text.at)}


def chat_event(turn: ChatTurn, item: ChatItem) -> tuple[str, dict[str, Any]]:
    """The event name and data of one item of a chat."""
    if isinstance(item, ChatProgress):
        return f"conversation.chat.{item.status}", chat_data(turn, item)
    if isinstance(item, AnswerText):
        return (MESSAGE_COMPLETED if item.whole else MESSAGE_DELTA), message_data(turn, item)
    assert isinstance(item, ChatDone)
    return DONE, {"debug_url": item.debug_url}


async def chat_frames(turn: ChatTurn, items: AsyncIterator[ChatItem | None]) -> AsyncIterator[bytes]:
    async for item in items:
        if item is None:
            yield KEEP_ALIVE
            continue
        event, data = chat_event(turn, item)
        yield f"event: {event}\ndata: {jsonutil.dumps(data)}\n\n".encode()


def conversation_data(conversation: Conversation) -> dict[str, Any]:
    """cozepy's Conversation: id, created_at, meta_data, last_section_id (+ name, updated_at, connector_id,
    creator_id, bot_id)."""
    return {"id": conversation.id, "created_at": int(conversation.created_at), "meta_data": conversation.meta_data,
            "last_section_id": conversation.section_id or conversation.id, "name": conversation.name,
            "updated_at": int(conversation.updated_at), "creator_id": conversation.creator_id,
            "connector_id": conversation.connector_id, "bot_id": conversation.bot_id}
