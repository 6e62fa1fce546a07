"""The HTTP client behind `RunServices.http`: the HTTP request node's requests, through the address guard.

Like Go's default client, which Coze Studio's node uses: redirects are followed (at most 10; 301/302/303 turn a
POST into a GET), and `Accept-Encoding: gzip` is sent unless the request names an encoding itself, in which
case the body comes back as the server encoded it. Unlike it, every hop's connection passes the address guard,
the whole exchange has a time limit, and a body over `KNOTFLOW_HTTP_MAX_RESPONSE_BYTES` (counted after
decompression) is refused instead of read.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx

from knotflow.config import Settings
from knotflow.contract import HttpRequest, HttpResponse, HttpSendError
from knotflow.outbound.guard import OutboundRefused, guarded_client

MAX_REDIRECTS = 10  # Go's http.Client
# Go moves these out of a response's header map into its framing: they never reach the node's `headers`.
_FRAMING = frozenset({"transfer-encoding", "trailer"})
_DECODED = frozenset({"content-encoding", "content-length"})  # what Go drops once it has decompressed the body
_DECOMPRESSED = frozenset({"gzip", "x-gzip", "deflate"})  # the encodings httpx always undoes
_DEFAULT_HEADERS = {"User-Agent": "knotflow", "Accept-Encoding": "gzip"}


class GuardedHttpClient:
    def __init__(self, settings: Settings) -> None:
        self.timeout = settings.http_timeout
        self.max_bytes = settings.http_max_response_bytes
        self._client = guarded_client(settings.url_fetch_allow, follow_redirects=False, timeout=None,
                                      headers=_DEFAULT_HEADERS)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, request: HttpRequest) -> HttpResponse:
        try:
            scheme = urlsplit(request.url).scheme.lower()
        except ValueError as exc:
            raise HttpSendError(f"invalid URL {request.url[:200]!r}: {exc}", transient=False) from exc
        if scheme not in ("http", "https"):
            raise HttpSendError(f"only http and https URLs can be requested, not {_short(request.url)}",
                                transient=False)
        timeout = request.timeout or self.timeout
        try:
            async with asyncio.timeout(timeout):
                return await self._exchange(request)
        except TimeoutError as exc:
            raise HttpSendError(f"request {_short(request.url)} took longer than {timeout:g} seconds",
                                transient=True) from exc
        except OutboundRefused as exc:
            raise HttpSendError(exc.message, transient=False) from exc
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            # httpx reports a redirect to an unusable Location as a protocol error too: that one will not pass.
            transient = not str(exc).startswith("Invalid URL in location header")
            raise HttpSendError(f"request {_short(request.url)} failed: {_describe(exc)}",
                                transient=transient) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise HttpSendError(f"request {_short(request.url)} failed: {_describe(exc)}", transient=False) from exc

    async def _exchange(self, request: HttpRequest) -> HttpResponse:
        raw = any(name.lower() == "accept-encoding" for name, _ in request.headers)
        files = [(part.name, (None, part.value) if isinstance(part.value, str) else
                  (part.value.file_name, part.value.data, part.value.content_type)) for part in request.form or ()]
        outgoing = self._client.build_request(request.method, request.url, headers=list(request.headers),
                                              content=request.body, files=files or None)
        for _ in range(MAX_REDIRECTS + 1):
            response = await self._client.send(outgoing, stream=True)
            try:
                if response.next_request is None:
                    return await self._read(response, raw)
                outgoing = response.next_request  # checked by the guard again when it connects
            finally:
                await response.aclose()  # a redirect's body is never read
        raise HttpSendError(f"request {_short(request.url)} failed: stopped after {MAX_REDIRECTS} redirects",
                            transient=False)

    async def _read(self, response: httpx.Response, raw: bool) -> HttpResponse:
        decoded = not raw and response.headers.get("content-encoding", "").strip().lower() in _DECOMPRESSED
        declared = response.headers.get("content-length", "")
        if not decoded and declared.isdigit() and int(declared) > self.max_bytes:
            raise self._too_large(response)
        body = bytearray()
        async for chunk in (response.aiter_raw() if raw else response.aiter_bytes()):
            body += chunk
            if len(body) > self.max_bytes:  # after decompression: a small gzip bomb stops here too
                raise self._too_large(response)
        dropped = _FRAMING | (_DECODED if decoded else frozenset())
        headers = [(name.decode("latin-1"), value.decode("utf-8", "replace"))
                   for name, value in response.headers.raw if name.decode("latin-1").lower() not in dropped]
        return HttpResponse(response.status_code, response.reason_phrase, headers, bytes(body))

    def _too_large(self, response: httpx.Response) -> HttpSendError:
        return HttpSendError(f"the response of {_short(str(response.request.url))} is larger than the limit of "
                             f"{self.max_bytes} bytes (KNOTFLOW_HTTP_MAX_RESPONSE_BYTES)", transient=False)


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _short(url: str) -> str:
    # Query strings may carry credentials (an API key added by custom auth): messages show the address only.
    try:
        parts = urlsplit(url)
    except ValueError:
        return repr(url[:80])
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else repr(url[:80])
