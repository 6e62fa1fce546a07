"""Request bodies: size-limited reading (never the whole of an oversized body) and JSON parsing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect, Request

from knotflow.dsl import jsonutil
from knotflow.errors import BadRequest


async def body_chunks(request: Request, idle_timeout: float) -> AsyncIterator[bytes]:
    """The request's body as it arrives; a body that stops arriving for `idle_timeout` seconds is refused, so a
    client stuck in its body (or a slow-loris one) cannot hold a connection and its buffers for ever."""
    chunks = request.stream().__aiter__()
    while True:
        try:
            async with asyncio.timeout(idle_timeout):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError as exc:
            raise BadRequest(f"the request body stopped arriving (nothing for {idle_timeout:g} s)") from exc
        yield chunk


async def read_json_body(request: Request, limit: int, idle_timeout: float) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise BadRequest(f"the request body exceeds the limit of {limit // (1024 * 1024)} MB")
        except ValueError as exc:
            raise BadRequest("invalid Content-Length") from exc
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in body_chunks(request, idle_timeout):
            size += len(chunk)
            if size > limit:
                raise BadRequest(f"the request body exceeds the limit of {limit // (1024 * 1024)} MB")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        raise BadRequest("the client closed the connection before sending the whole body") from exc
    raw = b"".join(chunks)
    if not raw.strip():
        raise BadRequest("the request body must be a JSON object")
    try:
        body = jsonutil.loads(raw)
    except jsonutil.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body
