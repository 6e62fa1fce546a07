"""One log line per HTTP request: method, path, status, duration and the response's logid.

Pure ASGI middleware (not Starlette's BaseHTTPMiddleware, which would buffer streams): the line is written when
the response has ended — for a stream, when its last event went out — so `duration_ms` is the whole exchange.
The query string is left out: signed file links carry their signature there.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from knotflow.api.errors import LOGID_HEADER

log = logging.getLogger("knotflow.request")
_LOGID = LOGID_HEADER.encode()


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        logid = ""

        async def sending(message: Message) -> None:
            nonlocal status, logid
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() == _LOGID:
                        logid = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            method, path = scope["method"], scope["path"]
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            log.info("request", extra={"method": method, "path": path, "status": status,
                                       "duration_ms": duration_ms, "logid": logid})
