"""A thin async client for OpenAI-compatible chat completions, on one pooled `aiohttp` session per endpoint.

aiohttp rather than the `openai` library: on a busy server the provider side of a stream (openai's vendored
httpx/httpcore/h11/anyio and its SSE decoder) was about 40 % of the CPU per streamed token; aiohttp parses HTTP
in C and the SSE lines here are split by hand and decoded with orjson (bench/token_latency.py, bench/README.md).

Streaming asks for `stream_options={"include_usage": True}` so the provider reports real token counts in its
last chunk. Providers that ignore the option (many local servers do) send no usage; then the counts are
estimated with `approximate_tokens`: one token per 4 characters of text (rounded up) plus 4 per message for
the role/separator overhead of the chat format. That is OpenAI's own rule of thumb for English; it is only an
estimate, good enough for the run's `N Tokens` total.

A connection error before the provider sent any byte of its answer (typically a pooled keep-alive connection the
provider closed while it was being reused) is retried `max_retries` times with a short backoff; nothing is
retried once the answer has started, so no token is ever delivered twice.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, NoReturn

import aiohttp
import orjson
from yarl import URL

from knotflow import logs
from knotflow.contract import Chunk, Completion, Message, ModelError, TokenUsage
from knotflow.models.endpoint import ModelEndpoint

log = logging.getLogger(__name__)
POOL_LIMIT = 1000  # connections per endpoint; each running stream holds one
RETRY_BACKOFF = 0.05  # seconds before the first retry, doubled for each further one
READ_BUFFER = 2**20  # an SSE line may be up to twice this long
ERROR_TEXT_LIMIT = 500  # characters of a non-JSON error body kept in the message
DONE = b"[DONE]"


def approximate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4) if text else 0


def approximate_prompt_tokens(messages: Sequence[Message]) -> int:
    return sum(4 + approximate_tokens(_text_of(m.get("content"))) for m in messages)


def _text_of(content: Any) -> str:
    """A message's text: its content, or a multimodal message's text parts (files are not counted)."""
    if isinstance(content, list):
        return "".join(str(part.get("text") or "") for part in content if isinstance(part, dict))
    return str(content or "")


def _reasoning_of(message: Mapping[str, Any]) -> str:
    # DeepSeek, vLLM, Ark and others put chain-of-thought in a non-standard `reasoning_content` field (some
    # servers call it `reasoning`).
    for name in ("reasoning_content", "reasoning"):
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _usage_of(reported: Mapping[str, Any]) -> TokenUsage:
    return TokenUsage(reported.get("prompt_tokens") or 0, reported.get("completion_tokens") or 0)


def _error_detail(body: Any) -> str | None:
    """The message of an OpenAI-style error body (`{"error": {"message": ...}}` and its common variants)."""
    if not isinstance(body, Mapping):
        return None
    error = body.get("error", body)
    if isinstance(error, Mapping):
        message = error.get("message")
        return str(message) if message else None
    return str(error) if error else None


def _status_error(status: int, raw: bytes) -> ModelError:
    try:
        detail = _error_detail(orjson.loads(raw))
    except orjson.JSONDecodeError:
        detail = None
    if detail is None:
        detail = raw.decode("utf-8", "replace").strip()[:ERROR_TEXT_LIMIT] or "(empty body)"
    return ModelError(f"provider returned HTTP {status}: {detail}", "status", status)


def _translate(exc: BaseException) -> BaseException:
    """The ModelError for a failed call; cancellation and other control flow pass through unchanged."""
    if isinstance(exc, ModelError):
        return exc
    # aiohttp's timeouts are also ClientConnectionErrors: test for them first.
    if isinstance(exc, TimeoutError):
        return ModelError(f"request timed out: {exc or type(exc).__name__}", "timeout")
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return ModelError(f"cannot reach the model endpoint: {exc or type(exc).__name__}", "connection")
    if isinstance(exc, aiohttp.ClientError | ValueError | KeyError | TypeError | AttributeError):
        return ModelError(f"invalid response from the model endpoint: {exc}", "response")
    return exc




class ModelClient:
    def __init__(self, endpoint: ModelEndpoint) -> None:
        self.endpoint = endpoint
        self._url = URL(endpoint.base_url.rstrip("/") + "/chat/completions")
        self._headers = {"Content-Type": "application/json"}
        api_key = endpoint.api_key()
        if api_key:
            logs.register_secret(api_key)
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = aiohttp.ClientTimeout(total=None, connect=endpoint.timeout, sock_read=endpoint.timeout)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _reraise(self, exc: BaseException) -> NoReturn:
        """Raise the ModelError for a failed call, logged once; cancellation and control flow pass unchanged."""
        failure = _translate(exc)
        if isinstance(failure, ModelError) and not getattr(failure, "_logged", False):
            failure._logged = True  # type: ignore[attr-defined]
            log.warning("model provider failed", extra={
                "model": self.endpoint.label or self.endpoint.model, "endpoint": str(self._url),
                "kind": failure.kind, "status": failure.status, "error": failure.message})
        if failure is exc:
            raise exc
        raise failure from exc

    @property
    def json_retries(self) -> int:
        return self.endpoint.json_retries

    def _http(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the running event loop (tests run several loops in turn).
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=POOL_LIMIT), timeout=self._timeout, read_bufsize=READ_BUFFER,
                trust_env=True,  # HTTP(S)_PROXY / NO_PROXY, as the openai library honoured them
            )
            self._loop = loop
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed and self._loop is asyncio.get_running_loop():
            await session.close()

    async def _post(self, body: dict[str, Any], accept: str) -> aiohttp.ClientResponse:
        """The provider's response, its head read; connection errors before that are retried."""
        data = orjson.dumps(body)
        headers = {**self._headers, "Accept": accept}
        attempt = 0
        while True:
            try:
                response = await self._http().post(self._url, data=data, headers=headers)
            except (aiohttp.ClientError, TimeoutError) as exc:
                # Retried: a connection error before the response's head. Not a timeout (it would multiply the
                # configured wait; aiohttp's timeouts are ClientConnectionErrors too), nor a malformed head.
                retry = isinstance(exc, aiohttp.ClientConnectionError) and not isinstance(exc, TimeoutError)
                if not retry or attempt >= self.endpoint.max_retries:
                    self._reraise(exc)
                await asyncio.sleep(RETRY_BACKOFF * 2**attempt)
                attempt += 1
                continue
            if response.status < 400:
                return response
            try:
                raw = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._reraise(exc)
            finally:
                response.release()
            self._reraise(_status_error(response.status, raw))

    def _body(self, messages: Sequence[Message], temperature: float | None, max_tokens: int | None,
              top_p: float | None, json_mode: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.endpoint.model, "messages": list(messages)}
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens:
            body["max_tokens"] = max_tokens
        if top_p is not None:
            body["top_p"] = top_p
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        return body

    async def stream_chat(self, messages: Sequence[Message], *, temperature: float | None = None,
                          max_tokens: int | None = None, top_p: float | None = None,
                          json_mode: bool = False) -> AsyncIterator[Chunk]:
        """Content deltas as they arrive; the last chunk carries the usage (reported or estimated)."""
        body = self._body(messages, temperature, max_tokens, top_p, json_mode)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        content: list[str] = []
        usage: TokenUsage | None = None
        response = await self._post(body, "text/event-stream")
        data: list[bytes] = []  # the `data` lines of the event being read
        finished = False  # the provider said the answer is complete (a finish_reason, or [DONE])
        try:
            # Server-sent events parsed inline (the hot loop of a stream): only `data` matters, multi-line data is
            # joined by newlines, a blank line ends an event; an event the provider never ended is dropped.
            async for raw in response.content:
                line = raw.rstrip(b"\r\n")
                if line.startswith(b"data:"):
                    value = line[5:]
                    data.append(value[1:] if value[:1] == b" " else value)
                    continue
                if line or not data:
                    continue  # another field (event, id, retry, a comment), or a blank line between events
                payload = data[0] if len(data) == 1 else b"\n".join(data)
                data = []
                if payload == DONE:
                    finished = True
                    break
                event = orjson.loads(payload)
                detail = _error_detail(event) if "error" in event else None  # a non-object: TypeError below
                if detail is not None:
                    raise ModelError(f"the model endpoint reported an error: {detail}", "response")
                reported = event.get("usage")
                if reported:
                    usage = _usage_of(reported)
                for choice in event.get("choices") or ():
                    if choice.get("finish_reason"):
                        finished = True
                    delta = choice.get("delta")
                    if not delta:
                        continue
                    text = delta.get("content") or ""
                    reasoning = _reasoning_of(delta)
                    if text or reasoning:
                        content.append(text)
                        yield Chunk(text, reasoning)
            if not finished:
                # A body delimited by the connection's close ends "normally" even when the connection was reset.
                raise ModelError("the connection to the model endpoint closed before the answer was complete "
                                 "(no finish_reason, no [DONE])", "connection")
        except BaseException as exc:
            # Failed, cancelled or abandoned by the consumer: drop the connection so the provider stops generating.
            response.close()
            self._reraise(exc)
        response.release()
        if usage is None:
            usage = TokenUsage(approximate_prompt_tokens(messages), approximate_tokens("".join(content)), True)
        yield Chunk(usage=usage)

    async def complete_chat(self, messages: Sequence[Message], *, temperature: float | None = None,
                            max_tokens: int | None = None, top_p: float | None = None,
                            json_mode: bool = False) -> Completion:
        body = self._body(messages, temperature, max_tokens, top_p, json_mode)
        try:
            response = await self._post(body, "application/json")
            try:
                raw = await response.read()
            finally:
                response.release()
            answer = orjson.loads(raw)
            detail = _error_detail(answer) if "error" in answer else None
            if detail is not None:
                raise ModelError(f"the model endpoint reported an error: {detail}", "response")
            choices = answer.get("choices")
            if not choices:
                raise ModelError("the model endpoint returned no choices", "response")
            message = choices[0]["message"]
            text = message.get("content") or ""
            reasoning = _reasoning_of(message)
            reported = answer.get("usage")
        except Exception as exc:
            self._reraise(exc)
        if reported:
            usage = _usage_of(reported)
        else:
            usage = TokenUsage(approximate_prompt_tokens(messages), approximate_tokens(text), True)
        return Completion(text, reasoning, usage)

