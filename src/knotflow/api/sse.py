"""Coze's SSE framing, exactly as cozepy parses it: `id`, `event`, `data` (one-line JSON) on every event.

Ids count every event of one HTTP response from 0, PING included; `node_seq_id` counts each node's chunks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from knotflow.dsl import jsonutil
from knotflow.engine.events import NodeMessage
from knotflow.service.runs import Failed, Finished, Paused, StreamItem

MESSAGE, ERROR, DONE, INTERRUPT, PING = "Message", "Error", "Done", "Interrupt", "PING"
CONTENT_TYPE = "text/event-stream; charset=utf-8"
_PING_DATA = jsonutil.dumps({"content": "{}", "node_execute_uuid": ""})


class SSEWriter:
    __slots__ = ("_next_id", "_seq")

    def __init__(self) -> None:
        self._next_id = 0
        self._seq: dict[str, int] = {}

    def frame(self, event: str, data: str) -> bytes:
        event_id = self._next_id
        self._next_id += 1
        return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n".encode()

    def message(self, message: NodeMessage) -> bytes:
        seq = self._seq.get(message.node_id, 0)
        self._seq[message.node_id] = seq + 1
        data: dict[str, Any] = {
            "content": message.content,
            "content_type": "text",
            "node_title": message.node_title,
            "node_seq_id": str(seq),
            "node_is_finish": message.is_finish,
            "node_type": message.node_type,
            "node_id": message.node_id,
            "node_execute_uuid": "",
        }
        if message.usage is not None:
            data["usage"] = message.usage.as_dict()
        return self.frame(MESSAGE, jsonutil.dumps(data))

    def error(self, code: int, message: str, debug_url: str) -> bytes:
        data = {"error_code": code, "error_message": message, "debug_url": debug_url, "node_execute_uuid": ""}
        return self.frame(ERROR, jsonutil.dumps(data))

    def done(self, debug_url: str) -> bytes:
        return self.frame(DONE, jsonutil.dumps({"node_execute_uuid": "", "debug_url": debug_url}))

    def interrupt(self, event_id: str, kind: int, data: str, node_title: str) -> bytes:
        # node_title is required by cozepy (Coze Studio omits it and cozepy then fails to parse the event).
        payload = {"interrupt_data": {"event_id": event_id, "type": kind, "data": data}, "node_title": node_title}
        return self.frame(INTERRUPT, jsonutil.dumps(payload))

    def ping(self) -> bytes:
        return self.frame(PING, _PING_DATA)


async def frames(items: AsyncIterator[StreamItem | None], debug_url: str) -> AsyncIterator[bytes]:
    """A run's items (None = silence) as Coze SSE events: messages, then Done, Error + Done, or Interrupt."""
    writer = SSEWriter()
    async for item in items:
        if item is None:
            yield writer.ping()
        elif isinstance(item, NodeMessage):
            yield writer.message(item)
        elif isinstance(item, Finished):
            yield writer.done(debug_url)
        elif isinstance(item, Failed):
            yield writer.error(5000, item.error.stream_message(), debug_url)
            yield writer.done(debug_url)
        elif isinstance(item, Paused):
            # The stream ends at the question: the answer comes with stream_resume, in a new stream.
            interrupt = item.interrupt
            yield writer.interrupt(item.event_id, interrupt.kind, interrupt.data, interrupt.node_title)
