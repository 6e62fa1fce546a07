"""An SSE response that notices a client leaving at once, not only at the next write."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from knotflow.api.sse import CONTENT_TYPE


class SSEResponse(Response):
    media_type = CONTENT_TYPE

    def __init__(
        self, chunks: AsyncIterator[bytes], on_disconnect: Callable[[], None], headers: dict[str, str],
        send_timeout: float = 30.0,
    ) -> None:
        self.send_timeout = send_timeout
        self.status_code = 200
        self.background = None
        # No Content-Length: the body is a stream of unknown length (chunked).
        self.raw_headers = [(b"content-type", CONTENT_TYPE.encode())] + [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in {"cache-control": "no-cache", **headers}.items()
        ]
        self.chunks = chunks
        self.on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = False

        async def watch() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True
            self.on_disconnect()

        watcher = asyncio.create_task(watch())
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for chunk in self.chunks:
                if gone:
                    break
                # A client that stopped reading fills the socket's buffers and then blocks the write: after
                # `send_timeout` it counts as gone, and nothing more piles up for it.
                async with asyncio.timeout(self.send_timeout):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if not gone:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (OSError, TimeoutError):  # the client went away between two writes, or stopped reading
            self.on_disconnect()
        finally:
            watcher.cancel()
            aclose = getattr(self.chunks, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
