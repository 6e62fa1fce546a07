"""UrlFetcher: real loopback HTTP servers (allowed through KNOTFLOW_URL_FETCH_ALLOW), the refusals without the
allow-list, redirects, limits, and this server's own links read straight from the file storage."""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from knotflow.config import Settings
from knotflow.files.fetch import FetchedFile, FetchFailed, FetchRefused, UrlFetcher
from knotflow.files.links import FileLinks
from knotflow.files.storage import LocalFileStorage
from knotflow.outbound.guard import OutboundRefused
from knotflow.store.repository import Store
from tests.store.backends import database_url, store

__all__ = ["database_url", "store"]

PAYLOAD = bytes(range(256)) * 40
OWN_BASE = "https://knotflow.example"  # the server's public URL: never reached over HTTP in these tests


class Handler(BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []
    redirect_to = ""

    def do_GET(self) -> None:
        Handler.requests.append(self.path)
        path = self.path.split("?", 1)[0]
        if path == "/file.bin":
            self._send(200, PAYLOAD, {"Content-Type": "application/pdf"})
        elif path == "/named":
            self._send(200, b"named", {"Content-Disposition": "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"})
        elif path == "/redirect":
            self._send(302, b"", {"Location": "/file.bin"})
        elif path == "/loop":
            self._send(302, b"", {"Location": "/loop"})
        elif path == "/elsewhere":
            self._send(302, b"", {"Location": Handler.redirect_to})
        elif path == "/chunked-big":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(20):
                chunk = b"x" * 1000
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(404, b"missing", {})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def make_fetcher(tmp_path: Path, store: Store, allow: str = "", **limits: float) -> UrlFetcher:
    settings = Settings(data_dir=tmp_path, public_url=OWN_BASE, url_fetch_allow=allow,
                        file_url_secret="s" * 40, **limits)
    return UrlFetcher(settings, FileLinks.from_settings(settings), LocalFileStorage(tmp_path / "files"), store)


@pytest.fixture()
async def allowed(tmp_path: Path, store: Store) -> AsyncIterator[UrlFetcher]:
    fetcher = make_fetcher(tmp_path, store, allow="127.0.0.0/8", url_fetch_max_bytes=15_000)
    yield fetcher
    await fetcher.aclose()


@pytest.fixture()
async def default(tmp_path: Path, store: Store) -> AsyncIterator[UrlFetcher]:
    fetcher = make_fetcher(tmp_path, store)
    yield fetcher
    await fetcher.aclose()


async def test_fetches_with_type_and_name(allowed: UrlFetcher, origin: str) -> None:
    got = await allowed.fetch(f"{origin}/file.bin?x-wf-file_name=report%20v2.pdf")
    assert got == FetchedFile(PAYLOAD, "application/pdf", "report v2.pdf")
    assert (await allowed.fetch(f"{origin}/named")).file_name == "résumé.txt"
    assert (await allowed.fetch(f"{origin}/redirect")).data == PAYLOAD


async def test_limits_and_http_errors(allowed: UrlFetcher, origin: str) -> None:
    with pytest.raises(FetchFailed, match="larger than the limit of 15000 bytes"):
        await allowed.fetch(f"{origin}/chunked-big")  # no Content-Length: counted while reading
    with pytest.raises(FetchFailed, match="HTTP 404"):
        await allowed.fetch(f"{origin}/nothing")
    with pytest.raises(FetchFailed, match="more than 5 redirects"):
        await allowed.fetch(f"{origin}/loop")
    with pytest.raises(FetchRefused, match="only http and https"):
        await allowed.fetch("file:///etc/passwd")


async def test_declared_length_over_the_limit_is_refused_before_reading(tmp_path: Path, store: Store,
                                                                       origin: str) -> None:
    fetcher = make_fetcher(tmp_path, store, allow="127.0.0.1", url_fetch_max_bytes=100)
    try:
        with pytest.raises(FetchFailed, match="larger than the limit of 100 bytes"):
            await fetcher.fetch(f"{origin}/file.bin")
    finally:
        await fetcher.aclose()


async def test_timeout(tmp_path: Path, store: Store) -> None:
    # A server that accepts the connection and never answers.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    fetcher = make_fetcher(tmp_path, store, allow="127.0.0.1", url_fetch_timeout=0.3)
    try:
        with pytest.raises(FetchFailed, match=r"longer than 0\.3 seconds"):
            await fetcher.fetch(f"http://127.0.0.1:{listener.getsockname()[1]}/slow")
    finally:
        await fetcher.aclose()
        listener.close()


async def test_internal_addresses_are_refused_without_the_allow_list(default: UrlFetcher, origin: str) -> None:
    before = len(Handler.requests)
    port = origin.rsplit(":", 1)[1]
    for url in (f"{origin}/file.bin", f"http://localhost:{port}/file.bin", f"http://[::1]:{port}/x",
                "http://10.1.2.3/x", "http://169.254.169.254/latest/meta-data", "http://224.0.0.1/x",
                "http://0.0.0.0/x", "http://[::ffff:127.0.0.1]/x", "http://192.168.1.1/x"):
        with pytest.raises(OutboundRefused, match="non-public address"):
            await default.fetch(url)
    assert len(Handler.requests) == before  # nothing reached the server


async def test_a_redirect_to_an_internal_address_is_refused(tmp_path: Path, store: Store, origin: str) -> None:
    # The first hop is allowed by host name only; its redirect goes to an address the list does not cover.
    port = origin.rsplit(":", 1)[1]
    Handler.redirect_to = f"http://127.0.0.2:{port}/file.bin"
    fetcher = make_fetcher(tmp_path, store, allow="127.0.0.1")
    try:
        with pytest.raises(OutboundRefused, match=r"127\.0\.0\.2"):
            await fetcher.fetch(f"{origin}/elsewhere")
    finally:
        await fetcher.aclose()


async def test_own_links_are_read_from_storage(allowed: UrlFetcher, store: Store, origin: str) -> None:
    space = await store.ensure_space()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"stored bytes"

    await allowed.storage.save("424242", chunks(), 1000)
    await store.add_file("424242", space.id, "notes.md", 12, "text/markdown")
    link = allowed.links.signed_url("424242", "notes.md")
    assert link.startswith(OWN_BASE)  # not a reachable server: the bytes can only come from the storage
    assert await allowed.fetch(link) == FetchedFile(b"stored bytes", "text/markdown", "notes.md")

    # Also when a foreign server redirects to the link.
    Handler.redirect_to = link
    assert (await allowed.fetch(f"{origin}/elsewhere")).data == b"stored bytes"

    with pytest.raises(FetchRefused, match="signature is invalid"):
        await allowed.fetch(link.replace("signature=", "signature=x"))
    with pytest.raises(FetchRefused, match="not signed"):
        await allowed.fetch(f"{OWN_BASE}/v1/files/424242/content")
