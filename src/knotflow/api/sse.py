"""Coze's SSE framing, exactly as cozepy parses it: `id`, `event`, `data` (one-line JSON) on every event.

Ids count every event of one HTTP response from 0, PING included; `node_seq_id` counts each node's chunks. These
are also the ids of the run's event log (service/run_log.py), so a re-attached stream (`attach_frames`) carries
the ids the client saw: its PINGs repeat the id of the event before them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from knotflow.dsl import jsonutil
from knotflow.engine.events import NodeMessage
from knotflow.service.run_log import DONE as LOG_DONE
from knotflow.service.run_log import ERROR as LOG_ERROR
from knotflow.service.run_log import INTERRUPT as LOG_INTERRUPT
from knotflow.service.run_log import LogEntry
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
        return frame(event_id, event, data)

    def message(self, message: NodeMessage) -> bytes:
        seq = self._seq.get(message.node_id, 0)
        self._seq[message.node_id] = seq + 1
        usage = message.usage.as_dict() if message.usage is not None else None
        return self.frame(MESSAGE, _message_data(message.content, message.node_title, str(seq), message.is_finish,
                                                 message.node_type, message.node_id, usage))

    def error(self, code: int, message: str, debug_url: str) -> bytes:
        return self.frame(ERROR, _error_data(code, message, debug_url))

    def done(self, debug_url: str) -> bytes:
        return self.frame(DONE, _done_data(debug_url))

    def interrupt(self, event_id: str, kind: int, data: str, node_title: str) -> bytes:
        return self.frame(INTERRUPT, _interrupt_data(event_id, kind, data, node_title))

    def ping(self) -> bytes:
        return self.frame(PING, _PING_DATA)


def frame(event_id: int, event: str, data: str) -> bytes:
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n".encode()


def _message_data(content: str, node_title: str, seq: str, is_finish: bool, node_type: str, node_id: str,
                  usage: dict[str, Any] | None) -> str:
    data: dict[str, Any] = {"content": content, "content_type": "text", "node_title": node_title, "node_seq_id": seq,
                            "node_is_finish": is_finish, "node_type": node_type, "node_id": node_id,
                            "node_execute_uuid": ""}
    if usage is not None:
        data["usage"] = usage
    return jsonutil.dumps(data)


def _error_data(code: int, message: str, debug_url: str) -> str:
    return jsonutil.dumps({"error_code": code, "error_message": message, "debug_url": debug_url,
                           "node_execute_uuid": ""})


def _done_data(debug_url: str) -> str:
    return jsonutil.dumps({"node_execute_uuid": "", "debug_url": debug_url})


def _interrupt_data(event_id: str, kind: int, data: str, node_title: str) -> str:
    # node_title is required by cozepy (Coze Studio omits it and cozepy then fails to parse the event).
    return jsonutil.dumps({"interrupt_data": {"event_id": event_id, "type": kind, "data": data},
                           "node_title": node_title})


def _entry_frame(entry: LogEntry, debug_url: str) -> bytes:
    data = entry.data
    if entry.kind == LOG_DONE:
        return frame(entry.id, DONE, _done_data(debug_url))
    if entry.kind == LOG_ERROR:
        return frame(entry.id, ERROR, _error_data(data["error_code"], data["error_message"], debug_url))
    if entry.kind == LOG_INTERRUPT:
        return frame(entry.id, INTERRUPT, _interrupt_data(data["event_id"], data["type"], data["data"],
                                                          data["node_title"]))
    return frame(entry.id, MESSAGE, _message_data(data["content"], data["node_title"], data["node_seq_id"],
                                                  data["node_is_finish"], data["node_type"], data["node_id"],
                                                  data.get("usage")))


async def attach_frames(entries: AsyncIterator[LogEntry | None], debug_url: str, last_id: int,
                        ) -> AsyncIterator[bytes]:
    """A re-attached stream: the run's events with their own ids. A PING repeats the id of the last event sent
    (or the client's Last-Event-ID), so that resending it never skips an event; before any, none is sent."""
    last = last_id
    async for entry in entries:
        if entry is None:
            if last >= 0:
                yield frame(last, PING, _PING_DATA)
            continue
        last = entry.id
        yield _entry_frame(entry, debug_url)


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
