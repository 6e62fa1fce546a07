"""The bare baseline for `stream_load.py`: a frameworkless ASGI app returning a fixed 2-event SSE stream.

No Starlette, no auth, no store, no engine: it drains the request body and answers every request with the same
`Message` and `Done` events in Coze's framing, one body chunk per event (as knotflow's SSE writer sends them),
served by uvicorn with the settings `knotflow serve` uses (uvloop, httptools, one process, no access log).

Run by hand:  .venv/bin/python bench/bare_sse.py --port 8101
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson
import uvicorn

_MESSAGE = orjson.dumps(
    {
        "content": "Hello, George!",
        "content_type": "text",
        "node_title": "Output",
        "node_seq_id": "0",
        "node_is_finish": True,
        "node_type": "Message",
        "node_id": "135000",
        "node_execute_uuid": "",
    }
).decode()
_DONE = orjson.dumps(
    {"node_execute_uuid": "", "debug_url": "http://127.0.0.1/work_flow?execute_id=0"}
).decode()
EVENTS: tuple[bytes, ...] = (
    f"id: 0\nevent: Message\ndata: {_MESSAGE}\n\n".encode(),
    f"id: 1\nevent: Done\ndata: {_DONE}\n\n".encode(),
)
HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:  # drain the request body, as a real endpoint must
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    for event in EVENTS:
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def starlette_app() -> Any:
    """The same fixed stream behind Starlette's routing and middleware (a framework floor, not a baseline)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    async def events() -> Any:
        for event in EVENTS:
            yield event

    async def stream_run(request: Request) -> StreamingResponse:
        await request.body()
        return StreamingResponse(events(), media_type="text/event-stream; charset=utf-8",
                                 headers={"cache-control": "no-cache"})

    return Starlette(routes=[Route("/v1/workflow/stream_run", stream_run, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--starlette", action="store_true", help="serve the stream through a Starlette route")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes on the port (scale_load.py)")
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the benchmark serves on the loopback address only")
    uvicorn.run(
        app if args.workers == 1 else "bare_sse:app",  # worker processes import the app by name
        app_dir=str(Path(__file__).resolve().parent),
        workers=args.workers,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="info",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
