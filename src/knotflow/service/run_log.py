"""Every run's events, kept so that a client that lost its stream can re-attach (`stream_attach`) on any process.

A run's events carry the run's own ids: the ids its first stream (stream_run, stream_resume, chat) gave them, from
0, PINGs there included. Each resume starts a new *segment* (ids from 0 again, as a new Coze stream does): the
run's start is segment "", a resume of question X is segment X. A segment ends with `done` or `interrupt` (`error`
is followed by `done`).

Two implementations behind one interface: `LocalRunLog` keeps the events in this process's memory (one process,
no Redis), `RedisRunLog` appends them to one Redis Stream per segment (`knotflow:run-events:<execute_id>:<segment>`,
at most `KNOTFLOW_RUN_EVENTS_MAXLEN` entries, expiring `KNOTFLOW_RUN_EVENTS_TTL` seconds after its last event).
Appending never waits: the Redis log writes in the background, pipelining whatever queued meanwhile (the
stream's hot path pays a list append), so a re-attached client sees an event a few milliseconds after the
run's own stream did.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.asyncio import Redis

from knotflow.dsl import jsonutil
from knotflow.engine.events import NodeMessage
from knotflow.service import background

log = logging.getLogger(__name__)

MESSAGE, ERROR, DONE, INTERRUPT = "message", "error", "done", "interrupt"
ENDS_SEGMENT = frozenset({DONE, INTERRUPT})


@dataclass(slots=True, frozen=True)
class LogEntry:
    id: int
    kind: str  # MESSAGE, ERROR, DONE or INTERRUPT
    data: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        return jsonutil.dumpb([self.id, self.kind, self.data])

    @staticmethod
    def decode(raw: bytes | str) -> LogEntry:
        event_id, kind, data = jsonutil.loads(raw)
        return LogEntry(int(event_id), str(kind), data)


def message_entry(event_id: int, seq: int, message: NodeMessage) -> LogEntry:
    data: dict[str, Any] = {"content": message.content, "node_title": message.node_title, "node_seq_id": str(seq),
                            "node_is_finish": message.is_finish, "node_type": message.node_type,
                            "node_id": message.node_id}
    if message.usage is not None:
        data["usage"] = message.usage.as_dict()
    return LogEntry(event_id, MESSAGE, data)


def failure_entries(event_id: int, error_message: str) -> list[LogEntry]:
    """A failed run's last two events: `Error` (its message as the stream shows it) then `Done`."""
    return [LogEntry(event_id, ERROR, {"error_code": 5000, "error_message": error_message}),
            LogEntry(event_id + 1, DONE)]


def interrupt_entry(event_id: int, question_id: str, kind: int, data: str, node_title: str) -> LogEntry:
    return LogEntry(event_id, INTERRUPT, {"event_id": question_id, "type": kind, "data": data,
                                          "node_title": node_title})


class RunLog(Protocol):
    def append(self, execute_id: str, segment: str, entries: list[LogEntry]) -> None:
        """Add events at the end of a segment; never waits."""
        ...

    async def flush(self) -> None:
        """Wait until everything appended so far can be read by every process."""
        ...

    async def entries(self, execute_id: str, segment: str) -> list[LogEntry]:
        """What the segment holds now."""
        ...

    def follow(self, execute_id: str, segment: str, after: int, wait: float) -> AsyncIterator[LogEntry | None]:
        """The segment's events with an id above `after`, then the new ones as they come, up to the one that ends
        the segment; None after each `wait` seconds without an event."""
        ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Segment:
    entries: list[LogEntry] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    ended_at: float | None = None


class LocalRunLog:
    """The events of this process's runs, in memory: the live runs' and those of the last
    `keep` finished segments that ended less than `ttl` seconds ago."""

    def __init__(self, maxlen: int, ttl: float, keep: int = 2000) -> None:
        self.maxlen, self.ttl, self.keep = maxlen, ttl, keep
        self._segments: dict[tuple[str, str], _Segment] = {}
        self._ended: OrderedDict[tuple[str, str], float] = OrderedDict()

    def _segment(self, key: tuple[str, str]) -> _Segment:
        segment = self._segments.get(key)
        if segment is None:
            segment = self._segments[key] = _Segment()
        return segment

    def append(self, execute_id: str, segment: str, entries: list[LogEntry]) -> None:
        key = (execute_id, segment)
        held = self._segment(key)
        held.entries.extend(entries)
        if len(held.entries) > self.maxlen:
            del held.entries[: len(held.entries) - self.maxlen]
        if entries[-1].kind in ENDS_SEGMENT:
            held.ended_at = now = time.monotonic()
            self._ended[key] = now
            self._forget_old(now)
        held.changed.set()
        held.changed = asyncio.Event()

    def _forget_old(self, now: float) -> None:
        while self._ended:
            key, ended = next(iter(self._ended.items()))
            if len(self._ended) <= self.keep and now - ended < self.ttl:
                break
            del self._ended[key]
            self._segments.pop(key, None)

    async def flush(self) -> None:
        return None

    async def entries(self, execute_id: str, segment: str) -> list[LogEntry]:
        held = self._segments.get((execute_id, segment))
        return list(held.entries) if held is not None else []

    async def follow(self, execute_id: str, segment: str, after: int, wait: float,
                     ) -> AsyncIterator[LogEntry | None]:
        held = self._segment((execute_id, segment))
        position = after
        while True:
            fresh = [entry for entry in held.entries if entry.id > position]
            for entry in fresh:
                yield entry
                position = entry.id
                if entry.kind in ENDS_SEGMENT:
                    return
            changed = held.changed
            try:
                await asyncio.wait_for(changed.wait(), wait)
            except TimeoutError:
                yield None

    async def close(self) -> None:
        return None


class RedisRunLog:
    """The events in Redis Streams, written by one background task that pipelines what queued meanwhile."""

    def __init__(self, redis: Redis, maxlen: int, ttl: float) -> None:
        self.redis, self.maxlen, self.ttl = redis, maxlen, int(ttl)
        self._pending: list[tuple[str, list[LogEntry]]] = []
        self._wake = asyncio.Event()
        self._written = asyncio.Event()
        self._appended = self._written_upto = 0  # appends made, appends known to be in Redis (or given up)
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def key(execute_id: str, segment: str) -> str:
        return f"knotflow:run-events:{execute_id}:{segment}"

    def start(self) -> None:
        self._task = asyncio.create_task(self._write_forever(), name="knotflow-run-log")

    def append(self, execute_id: str, segment: str, entries: list[LogEntry]) -> None:
        self._pending.append((self.key(execute_id, segment), entries))
        self._appended += 1
        self._wake.set()

    async def _write_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._write()

    async def _write(self) -> None:
        batch, self._pending = self._pending, []
        upto = self._appended
        if batch:
            pipe = self.redis.pipeline(transaction=False)
            keys = set()
            for key, entries in batch:
                keys.add(key)
                for entry in entries:
                    pipe.xadd(key, {"e": entry.encode()}, maxlen=self.maxlen, approximate=True)
            for key in keys:
                pipe.expire(key, self.ttl)
            try:
                await pipe.execute()
            except Exception as exc:  # Redis unreachable: the runs go on, only re-attaching misses these events
                log.warning("run events not written to Redis (%d segments): %s", len(keys), exc)
        self._written_upto = upto
        written, self._written = self._written, asyncio.Event()
        written.set()

    async def flush(self) -> None:
        target = self._appended
        while self._written_upto < target and self._task is not None and not self._task.done():
            written = self._written
            self._wake.set()
            await written.wait()

    async def entries(self, execute_id: str, segment: str) -> list[LogEntry]:
        rows: Any = await self.redis.xrange(self.key(execute_id, segment))
        return [LogEntry.decode(fields[b"e"]) for _, fields in rows]

    async def follow(self, execute_id: str, segment: str, after: int, wait: float,
                     ) -> AsyncIterator[LogEntry | None]:
        key = self.key(execute_id, segment)
        cursor = "0"
        block = max(1, int(wait * 1000))
        while True:
            answer: Any = await self.redis.xread({key: cursor}, block=block, count=500)
            if not answer:
                yield None
                continue
            for stream_id, fields in answer[0][1]:
                cursor = stream_id
                entry = LogEntry.decode(fields[b"e"])
                if entry.id <= after:
                    continue
                yield entry
                if entry.kind in ENDS_SEGMENT:
                    return

    async def close(self) -> None:
        if self._task is not None:
            await self.flush()
        await background.stop(self._task)
        self._task = None
