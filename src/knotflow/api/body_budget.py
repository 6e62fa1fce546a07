"""Requests with big bodies take turns, so that a burst of them cannot take the server's memory.

A request body is read whole (JSON), parsed, and its values live on in the run it starts; a 19 MB body costs
several times that in memory while its request is handled. Requests that declare a body of at least
`THRESHOLD` bytes share a budget of `KNOTFLOW_MAX_BODIES_BYTES`: one waits, before its body is read, until the
bodies being handled leave room for its own (a body larger than the whole budget goes alone). Its bytes wait in
the kernel meanwhile, not in the server. Uploads are streamed to disk and do not count; small requests never wait.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

THRESHOLD = 1024 * 1024
STREAMED_PATHS = frozenset({"/v1/files/upload"})


class BodyBudget:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_use = 0
        self._changed = asyncio.Condition()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        size = _declared_size(scope) if scope["type"] == "http" and scope["path"] not in STREAMED_PATHS else 0
        if size < THRESHOLD or not self.limit:
            await self.app(scope, receive, send)
            return
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_use == 0 or self.in_use + size <= self.limit)
            self.in_use += size
        try:
            await self.app(scope, receive, send)
        finally:
            async with self._changed:
                self.in_use -= size
                self._changed.notify_all()


def _declared_size(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0
