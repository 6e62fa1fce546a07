"""A real HTTP server on loopback that HTTP request nodes talk to: it records every request that reaches it and
answers from routes a test sets (a reply, or a function of the request), `/anything` echoing the request as
httpbin and echo.apifox.com do, anything else 404. An SSRF test asserts that nothing reached it.

Also `outbound_services`: the real guarded HTTP client and URL fetcher, as the composition root builds them,
for tests that run nodes without a server.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from knotflow.config import Settings
from knotflow.files.fetch import UrlFetcher
from knotflow.files.links import FileLinks
from knotflow.files.storage import FileRecord, LocalFileStorage
from knotflow.outbound.http import GuardedHttpClient


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]  # by lower-case name (the last value)
    body: bytes
    host: str  # the address the connection arrived at

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def form_parts(self) -> dict[str, tuple[str | None, str, bytes]]:
        """A multipart/form-data body: name → (file name, content type, bytes)."""
        head = f"Content-Type: {self.header('content-type')}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + self.body)
        parts: dict[str, tuple[str | None, str, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            assert isinstance(name, str) and isinstance(payload, bytes)
            parts[name] = (part.get_filename(), part.get_content_type(), payload)
        return parts


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    def encoded(self) -> tuple[bytes, list[tuple[str, str]]]:
        if isinstance(self.body, dict):
            return json.dumps(self.body, separators=(",", ":")).encode(), [("Content-Type", "application/json"),
                                                                           *self.headers]
        return (self.body.encode() if isinstance(self.body, str) else self.body), self.headers


Route = Reply | Callable[[Recorded], Reply]


def echo(request: Recorded) -> Reply:
    """What httpbin's /anything answers: the request as JSON."""
    text = request.body.decode("utf-8", "replace")
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    args = {name: values[0] if len(values) == 1 else values for name, values in request.query.items()}
    return Reply(body={
        "args": args, "data": text, "headers": request.headers, "json": parsed, "method": request.method,
        "url": f"http://{request.headers.get('host', '')}{request.target}",
    })


@dataclass
class HttpTarget:
    host: str = "127.0.0.1"
    port: int = 0
    routes: dict[str, Route] = field(default_factory=lambda: {"/anything": echo})
    requests: list[Recorded] = field(default_factory=list)
    connections: int = 0  # every connection accepted, whether a request came on it or not
    tls: ssl.SSLContext | None = None  # HTTPS (see `self_signed`)
    certificate: str = ""  # with `tls`: the PEM a client trusts to verify it
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def route(self, path: str, reply: Route) -> None:
        self.routes[path] = reply

    def start(self) -> HttpTarget:
        target = self

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            daemon_threads = True

            def verify_request(self, request: Any, client_address: Any) -> bool:
                target.connections += 1
                return True

        server = Server((self.host, self.port), _handler_for(self))
        if self.tls is not None:  # the handshake happens in the handler's thread, on its first read
            server.socket = self.tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._server = server
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, args=(0.05,), name="http-target", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reply_to(self, request: Recorded) -> Reply:
        self.requests.append(request)
        route = self.routes.get(request.path)
        if route is None:
            return Reply(404, b"no such route")
        return route(request) if callable(route) else route


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[ssl.SSLContext, str]:
    """A server context with a fresh self-signed certificate for `host` (made by openssl), and the certificate's PEM
    text, which a client trusts to verify it."""
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", f"/CN={host}", "-addext", f"subjectAltName=IP:{host}"],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, cert.read_text()


def _handler_for(target: HttpTarget) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = Recorded(self.command, self.path, headers, body, self.connection.getsockname()[0])
            reply = target.reply_to(request)
            data, extra = reply.encoded()
            self.send_response(reply.status)
            names = {name.lower() for name, _ in extra}
            for name, value in extra:
                self.send_header(name, value)
            if "content-length" not in names and "transfer-encoding" not in names:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture()
def http_target() -> Iterator[HttpTarget]:
    target = HttpTarget().start()
    try:
        yield target
    finally:
        target.stop()


class NoFiles:
    """File records with no file: the URL fetcher then reads only foreign URLs."""

    async def get_file(self, file_id: str) -> FileRecord | None:
        return None


@contextlib.asynccontextmanager
async def outbound_services(data_dir: Path, allow: str = "", **settings: Any
                            ) -> AsyncIterator[tuple[GuardedHttpClient, UrlFetcher]]:
    """The guarded HTTP client and the URL fetcher, built from settings as the composition root builds them."""
    config = Settings(data_dir=data_dir, url_fetch_allow=allow, file_url_secret="s" * 40, **settings)
    http = GuardedHttpClient(config)
    files = UrlFetcher(config, FileLinks.from_settings(config), LocalFileStorage(data_dir / "files"), NoFiles())
    try:
        yield http, files
    finally:
        await http.aclose()
        await files.aclose()
