"""Text that a node produces piece by piece (an LLM's tokens), readable by several consumers while it grows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any


class TextStream:
    __slots__ = ("_chunks", "_closed", "_error", "_signal")

    def __init__(self) -> None:
        self._chunks: list[str] = []
        self._closed = False
        self._error: BaseException | None = None
        self._signal: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        if self._signal is not None and not self._signal.done():
            self._signal.set_result(None)
        self._signal = None

    def write(self, text: str) -> None:
        if self._closed:
            raise RuntimeError("write to a closed stream")
        if text:
            self._chunks.append(text)
            self._wake()

    def close(self, error: BaseException | None = None) -> None:
        if not self._closed:
            self._closed = True
            self._error = error
            self._wake()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def complete(self) -> bool:
        """Closed without an error: every chunk is there, and reading it again replays them."""
        return self._closed and self._error is None

    @property
    def started(self) -> bool:
        """Whether any text was written: consumers may already have shown it."""
        return bool(self._chunks)

    def __str__(self) -> str:
        return "".join(self._chunks)

    async def chunks(self) -> AsyncIterator[str]:
        """Every chunk from the first, waiting for new ones until the stream closes."""
        index = 0
        while True:
            while index < len(self._chunks):
                yield self._chunks[index]
                index += 1
            if self._closed:
                if self._error is not None:
                    raise self._error
                return
            if self._signal is None:
                self._signal = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._signal)


class Suspended(Exception):
    """A consumer that started early waits for a node that will not start before the run's interrupt is answered:
    it stops here and starts again after the resume (what it already showed is not shown twice)."""


class LateValue:
    """An input of a streaming consumer that started before the input's node finished: `await get()` gives the
    value once known — the node's stream as soon as it streams, else its output once it finishes (or None when
    it is skipped)."""

    __slots__ = ("_get", "_known", "_value")

    def __init__(self, get: Callable[[], Awaitable[Any]]) -> None:
        self._get = get
        self._value: Any = None
        self._known = False

    async def get(self) -> Any:
        if not self._known:
            self._value = await self._get()
            self._known = True
        return self._value

    def __str__(self) -> str:
        return str(self._value) if self._known and self._value is not None else ""


async def settled(value: Any) -> Any:
    """The final value of an input: a late value once known, a stream read to its end."""
    if isinstance(value, LateValue):
        value = await value.get()
    if isinstance(value, TextStream):
        return "".join([chunk async for chunk in value.chunks()])
    return value
