"""Connections a hostile or broken client cannot hold forever.

uvicorn closes idle keep-alive connections, but not one that never finishes its request line and headers (a
slow-loris client, or a port scanner that connects and waits), and it takes any number of connections from one
address. `guarded_protocol` is uvicorn's httptools protocol with both: a connection whose headers are not complete
`header_timeout` seconds after it opened (or after its next request began) is closed, and an address holding
`per_client` connections gets its next one closed at once (0: no such cap; behind a load balancer every client
shares its address). A request body that stops arriving is bounded by the API itself (`bodies.py`), and the
number of connections overall by uvicorn's `limit_concurrency` (503 beyond it).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _GuardedProtocol(HttpToolsProtocol):
    header_timeout: ClassVar[float] = 10.0
    per_client: ClassVar[int] = 0
    open_by_client: ClassVar[Counter[str]] = Counter()  # shared by the connections of one server

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._address = ""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._address = self.client[0] if self.client else ""
        self.open_by_client[self._address] += 1
        if self.per_client and self.open_by_client[self._address] > self.per_client:
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.open_by_client[self._address] -= 1
        if self.open_by_client[self._address] <= 0:
            del self.open_by_client[self._address]
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(header_timeout: float, per_client: int) -> type[HttpToolsProtocol]:
    """uvicorn's `http` protocol class with these limits (a class of its own per server)."""
    return type("GuardedHttpToolsProtocol", (_GuardedProtocol,), {
        "header_timeout": header_timeout, "per_client": per_client, "open_by_client": Counter()})
