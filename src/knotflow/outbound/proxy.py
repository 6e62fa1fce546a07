"""A forward HTTP proxy whose every outbound connection passes the address guard: the way a Code node's sandbox
reaches the network when KNOTFLOW_CODE_EGRESS is on (`knotflow.sandbox.egress` serves it on one Unix socket per
sandbox).

It speaks what HTTP clients send to a proxy named in HTTP_PROXY/HTTPS_PROXY: absolute-URI requests
(`GET http://host/path`), re-sent with the guarded httpx client (the HTTP request node's: its guard runs where the
socket is opened, on the resolved address; redirects are not followed, a client following one comes back through
the proxy and is checked again), and CONNECT tunnels (HTTPS), which open a TCP connection to an address the guard
permitted and then carry bytes both ways untouched (TLS stays end to end). A refused destination is a 403 whose
text is the guard's reason; an unreachable one 502, a slow one 504; nothing waits longer than the connect or idle
timeout.

Hand-written on h11 (the sans-IO HTTP/1.1 parser httpx itself uses) because no maintained proxy fits: proxy.py runs
its own threads and processes and opens upstream connections itself, so a plug-in could check a host name but not
the address actually connected to (DNS rebinding); pproxy has regex rules and no connect hook and is unmaintained;
mitmproxy intercepts TLS. What is left to write is the request loop and the byte pump below.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import h11
import httpcore
import httpx

from knotflow.outbound.guard import AddressPolicy, OutboundRefused, guarded_client

log = logging.getLogger(__name__)

CHUNK = 1 << 16
# Headers about one hop, never forwarded (RFC 9110 §7.6.1, plus the proxy's own and Host, which httpx sets from the
# URL it connects to).
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate", b"proxy-authorization", b"te",
    b"trailer", b"transfer-encoding", b"upgrade", b"host",
})


@dataclass(frozen=True)
class ProxyLimits:
    connect_timeout: float = 10.0  # seconds to open an outbound connection (each resolved address)
    idle_timeout: float = 60.0  # seconds a connection may pass no byte in either direction before it is closed
    max_connections: int = 16  # connections one listener (one sandbox) may have open at once; more get a 503
    max_head_bytes: int = 64 << 10  # a request line and its headers


class _Refusal(Exception):
    """Answer the client with this status and text, then close."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class ForwardProxy:
    """One guard and one outbound HTTP client, shared by every listener (sandbox)."""

    def __init__(self, allow: str = "", limits: ProxyLimits | None = None) -> None:
        self.limits = limits or ProxyLimits()
        self.policy = AddressPolicy(allow)
        timeout = httpx.Timeout(self.limits.idle_timeout, connect=self.limits.connect_timeout)
        self._client = guarded_client(allow, follow_redirects=False, timeout=timeout)

    async def listen(self, path: str) -> ProxyListener:
        """Serve on a new Unix socket at `path` (mode 0666: the sandbox's uid connects), with its own connection cap."""
        listener = ProxyListener(self)
        listener.server = await asyncio.start_unix_server(listener.handle, path, limit=self.limits.max_head_bytes)
        os.chmod(path, 0o666)
        return listener

    async def aclose(self) -> None:
        await self._client.aclose()

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection: requests one after another (keep-alive) until a CONNECT or the end."""
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_head_bytes)
        while True:
            try:
                event = await self._next(connection, reader)
                if not isinstance(event, h11.Request):
                    return  # the client closed, or is in no state to be answered
                if event.method == b"CONNECT":
                    await self._tunnel(connection, event, reader, writer)
                    return
                await self._forward(connection, event, reader, writer)
            except _Refusal as refusal:
                await _answer(connection, writer, refusal.status, refusal.text)
                return
            except h11.RemoteProtocolError as error:
                await _answer(connection, writer, error.error_status_hint, f"bad proxy request: {error}")
                return
            if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return
            connection.start_next_cycle()

    async def _next(self, connection: h11.Connection, reader: asyncio.StreamReader) -> Any:
        while (event := connection.next_event()) is h11.NEED_DATA:
            try:
                data = await asyncio.wait_for(reader.read(CHUNK), self.limits.idle_timeout)
            except TimeoutError:
                raise _Refusal(408, "the request did not arrive in time") from None
            connection.receive_data(data)
        return event

    async def _tunnel(self, connection: h11.Connection, request: h11.Request, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        host, port = _authority(request.target.decode("ascii", "replace"))
        if not isinstance(await self._next(connection, reader), h11.EndOfMessage):
            raise _Refusal(400, "a CONNECT request has no body")
        upstream_reader, upstream_writer = await self._open(host, port)
        log.info("code egress", extra={"method": "CONNECT", "host": host, "port": port})
        writer.write(connection.send(h11.Response(status_code=200, headers=[], reason=b"Connection established")))
        early, _ = connection.trailing_data  # bytes the client sent right behind its request (a TLS hello)
        try:
            if early:
                upstream_writer.write(early)
            await _splice(reader, writer, upstream_reader, upstream_writer, self.limits.idle_timeout)
        finally:
            upstream_writer.close()
            with contextlib.suppress(OSError):
                await upstream_writer.wait_closed()

    async def _open(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection to `host` through the guard: every address it resolves to must be permitted."""
        try:
            addresses = await self.policy.addresses(host, port)
        except OutboundRefused as refused:
            log.warning("code egress refused", extra={"host": host, "port": port, "reason": refused.message})
            raise _Refusal(403, refused.message) from None
        except httpcore.ConnectError as error:
            raise _Refusal(502, str(error)) from None
        failure = "no address"
        for address in addresses:
            try:
                return await asyncio.wait_for(asyncio.open_connection(address, port), self.limits.connect_timeout)
            except TimeoutError:
                failure = f"no answer from {address} within {self.limits.connect_timeout:g} seconds"
            except OSError as error:
                failure = f"{address}: {error.strerror or error}"
        raise _Refusal(502, f"cannot connect to {host!r} port {port}: {failure}")

    async def _forward(self, connection: h11.Connection, request: h11.Request, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        try:
            url = _absolute_url(request.target.decode("ascii"))
        except (UnicodeDecodeError, httpx.InvalidURL) as error:
            raise _Refusal(400, f"invalid URL: {error}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise _Refusal(400, "a proxy request names an absolute http:// or https:// URL")

        async def body() -> Any:
            if connection.they_are_waiting_for_100_continue:
                writer.write(connection.send(h11.InformationalResponse(status_code=100, headers=[])))
            while isinstance(event := await self._next(connection, reader), h11.Data):
                yield bytes(event.data)

        framing = {name.lower(): value for name, value in request.headers
                   if name.lower() in (b"content-length", b"transfer-encoding")}
        content = None
        if framing and framing.get(b"content-length") != b"0":
            content = body()
        elif not isinstance(await self._next(connection, reader), h11.EndOfMessage):
            raise _Refusal(400, "the request's body is not framed")
        headers = [(name, value) for name, value in request.headers if name.lower() not in HOP_BY_HOP]
        # A Request of its own, not the client's build_request: the client's default headers (User-Agent,
        # Accept-Encoding…) are not the code's, and a body encoded on a request that did not ask for it would reach
        # the code undecoded.
        outgoing = httpx.Request(request.method.decode("ascii"), url, headers=headers, content=content)
        try:
            response = await self._client.send(outgoing, stream=True)
        except OutboundRefused as refused:
            log.warning("code egress refused", extra={"host": url.host, "port": url.port, "reason": refused.message})
            raise _Refusal(403, refused.message) from None
        except httpx.TimeoutException as error:
            raise _Refusal(504, f"{url.host}: {error or 'timed out'}") from None
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise _Refusal(502, f"{url.host}: {error or type(error).__name__}") from None
        log.info("code egress", extra={"method": request.method.decode("ascii"), "host": url.host,
                                       "port": url.port, "status": response.status_code})
        try:
            answer = [(name, value) for name, value in response.headers.raw if name.lower() not in HOP_BY_HOP]
            writer.write(connection.send(h11.Response(status_code=response.status_code, headers=answer,
                                                      reason=response.reason_phrase.encode("latin-1", "replace"))))
            async for chunk in response.aiter_raw():  # as the server encoded it: the client decodes
                writer.write(connection.send(h11.Data(data=chunk)))
                await writer.drain()
            writer.write(connection.send(h11.EndOfMessage()))
            await writer.drain()
        except (httpx.HTTPError, h11.LocalProtocolError):
            connection.send_failed()  # the answer is cut short: the client sees the connection close
        finally:
            await response.aclose()


class ProxyListener:
    """One sandbox's socket: at most `max_connections` connections at once."""

    def __init__(self, proxy: ForwardProxy) -> None:
        self.proxy = proxy
        self.server: asyncio.Server | None = None
        self.active = 0
        self._sessions: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            if self.active >= self.proxy.limits.max_connections:
                text = f"more than {self.proxy.limits.max_connections} connections at once"
                await _answer(h11.Connection(h11.SERVER), writer, 503, text)
                return
            self.active += 1
            try:
                await self.proxy.session(reader, writer)
            finally:
                self.active -= 1
        except (OSError, TimeoutError, h11.ProtocolError):
            pass  # the client went away, or broke the protocol beyond an answer
        finally:
            self._sessions.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def close(self) -> None:
        """Stop listening and end every connection still open."""
        if self.server is not None:
            self.server.close()
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)


def _absolute_url(target: str) -> httpx.URL:
    try:
        return httpx.URL(target)
    except httpx.InvalidURL:
        # httpcore (httpx's proxy client) writes an IPv6 host without its brackets: http://::1:8080/path.
        scheme, separator, rest = target.partition("://")
        authority, slash, path = rest.partition("/")
        host, _, port = authority.rpartition(":")
        with contextlib.suppress(ValueError):
            if separator and port.isdigit() and ipaddress.IPv6Address(host):
                return httpx.URL(f"{scheme}://[{host}]:{port}{slash}{path}")
        raise


def _authority(target: str) -> tuple[str, int]:
    """CONNECT's `host:port` (`[v6]:port`)."""
    host, colon, port = target.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise _Refusal(400, f"CONNECT needs host:port, not {target[:200]!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


async def _answer(connection: h11.Connection, writer: asyncio.StreamWriter, status: int, text: str) -> None:
    """A short plain-text answer that closes the connection, if the client can still be answered."""
    if connection.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    body = (text + "\n").encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
               ("Connection", "close")]
    with contextlib.suppress(h11.LocalProtocolError):
        reason = HTTPStatus(status).phrase.encode() if status in HTTPStatus._value2member_map_ else b""
        writer.write(connection.send(h11.Response(status_code=status, headers=headers, reason=reason)))
        writer.write(connection.send(h11.Data(data=body)))
        writer.write(connection.send(h11.EndOfMessage()))
    with contextlib.suppress(OSError):
        await writer.drain()


async def _splice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream_reader: asyncio.StreamReader,
                  upstream_writer: asyncio.StreamWriter, idle: float) -> None:
    """Carry bytes both ways until both sides have ended, one fails, or neither moves for `idle` seconds."""
    loop = asyncio.get_running_loop()
    last = [loop.time()]

    async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while True:
            try:
                data = await asyncio.wait_for(source.read(CHUNK), idle)
            except TimeoutError:
                if loop.time() - last[0] < idle:
                    continue  # the other direction is moving
                raise
            if not data:
                if sink.can_write_eof():
                    with contextlib.suppress(OSError):
                        sink.write_eof()
                return
            last[0] = loop.time()
            sink.write(data)
            await sink.drain()

    tasks = [asyncio.create_task(pump(reader, upstream_writer)), asyncio.create_task(pump(upstream_reader, writer))]
    try:
        # The first failure (reset, idle) ends both directions; a clean end waits for the other direction.
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
