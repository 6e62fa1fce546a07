"""Start the ASGI server (uvicorn)."""

from __future__ import annotations


def serve(host: str, port: int) -> None:
    raise NotImplementedError("being written")
