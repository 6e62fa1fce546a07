"""A thin async client for OpenAI-compatible chat completions, built on the `openai` library.

Streaming asks for `stream_options={"include_usage": True}` so the provider reports real token counts in its
last chunk. Providers that ignore the option (many local servers do) send no usage; then the counts are
estimated with `approximate_tokens`: one token per 4 characters of text (rounded up) plus 4 per message for
the role/separator overhead of the chat format. That is OpenAI's own rule of thumb for English; it is only an
estimate, good enough for the run's `N Tokens` total.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
from openai import AsyncOpenAI, AsyncStream

from knotflow.models.registry import ModelEndpoint

Message = dict[str, str]  # {"role": ..., "content": ...}


class ModelError(Exception):
    """The provider failed. `kind`: "timeout", "connection", "status" or "response"."""

    def __init__(self, message: str, kind: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status


@dataclass(slots=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False


@dataclass(slots=True)
class Chunk:
    content: str = ""
    reasoning_content: str = ""
    usage: TokenUsage | None = None  # only on the final chunk


@dataclass(slots=True)
class Completion:
    content: str = ""
    reasoning_content: str = ""
    usage: TokenUsage = field(default_factory=TokenUsage)


def approximate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4) if text else 0


def approximate_prompt_tokens(messages: Sequence[Message]) -> int:
    return sum(4 + approximate_tokens(m.get("content") or "") for m in messages)


def _reasoning(delta: Any) -> str:
    # DeepSeek, vLLM, Ark and others put chain-of-thought in a non-standard `reasoning_content` field, which the
    # openai library keeps as an extra attribute (some servers call it `reasoning`).
    for name in ("reasoning_content", "reasoning"):
        value = getattr(delta, name, None)
        if value is None and getattr(delta, "model_extra", None):
            value = delta.model_extra.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _reasoning_of(delta: Mapping[str, Any]) -> str:
    for name in ("reasoning_content", "reasoning"):
        value = delta.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _translate(exc: Exception) -> ModelError:
    if isinstance(exc, openai.APITimeoutError):
        return ModelError(f"request timed out: {exc}", "timeout")
    if isinstance(exc, openai.APIStatusError):
        detail = exc.message
        return ModelError(f"provider returned HTTP {exc.status_code}: {detail}", "status", exc.status_code)
    if isinstance(exc, openai.APIConnectionError):
        return ModelError(f"cannot reach the model endpoint: {exc}", "connection")
    return ModelError(f"invalid response from the model endpoint: {exc}", "response")


class ModelClient:
    def __init__(self, endpoint: ModelEndpoint) -> None:
        self.endpoint = endpoint
        self._client = AsyncOpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key(),
                                   timeout=endpoint.timeout, max_retries=endpoint.max_retries)
        # Typed as Any: the library's overloads over `stream` and its Literal model names fight plain dicts.
        self._completions: Any = self._client.chat.completions

    async def aclose(self) -> None:
        await self._client.close()

    def _params(self, temperature: float | None, max_tokens: int | None, top_p: float | None,
                json_mode: bool) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if temperature is not None:
            params["temperature"] = temperature
        if max_tokens:
            params["max_tokens"] = max_tokens
        if top_p is not None:
            params["top_p"] = top_p
        if json_mode:
            params["response_format"] = {"type": "json_object"}
        return params

    async def stream_chat(self, messages: Sequence[Message], *, temperature: float | None = None,
                          max_tokens: int | None = None, top_p: float | None = None,
                          json_mode: bool = False) -> AsyncIterator[Chunk]:
        """Content deltas as they arrive; the last chunk carries the usage (reported or estimated)."""
        content: list[str] = []
        usage: TokenUsage | None = None
        try:
            # Chunks as plain dicts (cast_to=object): building the library's pydantic chunk objects was most of the
            # server's CPU per streamed token (bench/token_latency.py). The library still does the HTTP, the SSE
            # decoding and the error mapping.
            body = {"model": self.endpoint.model, "messages": list(messages), "stream": True,
                    "stream_options": {"include_usage": True},
                    **self._params(temperature, max_tokens, top_p, json_mode)}
            stream = await self._client.post("/chat/completions", body=body, cast_to=object, stream=True,
                                             stream_cls=AsyncStream[Any])
            async for event in stream:
                reported = event.get("usage")  # an event that is not an object: AttributeError, caught below
                if reported:
                    usage = TokenUsage(reported.get("prompt_tokens") or 0, reported.get("completion_tokens") or 0)
                for choice in event.get("choices") or []:
                    delta = choice.get("delta")
                    if not delta:
                        continue
                    text = delta.get("content") or ""
                    reasoning = _reasoning_of(delta)
                    if text or reasoning:
                        content.append(text)
                        yield Chunk(text, reasoning)
        except openai.OpenAIError as exc:
            raise _translate(exc) from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # a malformed SSE payload
            raise ModelError(f"invalid response from the model endpoint: {exc}", "response") from exc
        if usage is None:
            usage = TokenUsage(approximate_prompt_tokens(messages), approximate_tokens("".join(content)), True)
        yield Chunk(usage=usage)

    async def complete_chat(self, messages: Sequence[Message], *, temperature: float | None = None,
                            max_tokens: int | None = None, top_p: float | None = None,
                            json_mode: bool = False) -> Completion:
        try:
            response = await self._completions.create(
                model=self.endpoint.model, messages=list(messages),
                **self._params(temperature, max_tokens, top_p, json_mode),
            )
        except openai.OpenAIError as exc:
            raise _translate(exc) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"invalid response from the model endpoint: {exc}", "response") from exc
        if not response.choices:
            raise ModelError("the model endpoint returned no choices", "response")
        message = response.choices[0].message
        text = message.content or ""
        if response.usage is not None:
            usage = TokenUsage(response.usage.prompt_tokens or 0, response.usage.completion_tokens or 0)
        else:
            usage = TokenUsage(approximate_prompt_tokens(messages), approximate_tokens(text), True)
        return Completion(text, _reasoning(message), usage)
