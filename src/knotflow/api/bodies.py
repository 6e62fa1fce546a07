"""Request bodies: size-limited reading (never the whole of an oversized body) and JSON parsing."""

from __future__ import annotations

from typing import Any

from starlette.requests import ClientDisconnect, Request

from knotflow.dsl import jsonutil
from knotflow.errors import BadRequest


async def read_json_body(request: Request, limit: int) -> dict[str, Any]:
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
        async for chunk in request.stream():
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
