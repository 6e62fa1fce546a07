"""A fake OpenAI-compatible model server: `POST /v1/chat/completions`, streaming and not, scripted per test.

Each request takes the next `Reply` from the queue (or `server.default` when the queue is empty), so a test
can script "invalid JSON, then valid JSON", errors, slow chunks and hangs. Every request body is recorded in
`server.requests`. Use the `model_server` fixture (import it into the test module) and `registry_for`.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from knotflow.models.registry import ModelEntry, ModelRegistry


@dataclass
class Reply:
    content: str | list[str] = ""  # a list streams as one chunk per item
    reasoning: str | list[str] = ""  # `reasoning_content`, sent before the content
    usage: tuple[int, int] | None = None  # (prompt_tokens, completion_tokens); None: send no usage
    status: int = 200
    error: str = "scripted failure"  # the error message for status >= 400
    delay: float = 0.0  # seconds before each streamed chunk (or before a non-streamed answer)
    hang: float = 0.0  # seconds to wait before answering at all (a timeout test)
    malformed: bool = False  # send a body / SSE chunk that is not JSON
    # Drop the connection: 0 closes it without answering (a provider closing an idle keep-alive connection as it
    # is reused); n > 0 resets it after n streamed content pieces (a provider dying mid-answer).
    drop_after: int | None = None
    gate: threading.Event | None = None  # answer only once the test sets it (a model busy for as long as needed)

    def pieces(self, value: str | list[str]) -> list[str]:
        return list(value) if isinstance(value, list) else ([value] if value else [])


@dataclass
class FakeModelServer:
    host: str = "127.0.0.1"
    port: int = 0
    replies: deque[Reply] = field(default_factory=deque)
    default: Reply | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    streams: list[str] = field(default_factory=list)  # how each streamed reply ended: "complete" or "aborted"
    _stop: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def next_reply(self) -> Reply:
        if self.replies:
            return self.replies.popleft()
        if self.default is not None:
            return self.default
        return Reply(status=500, error="the fake model server has no scripted reply left")

    def start(self) -> FakeModelServer:
        server = ThreadingHTTPServer((self.host, 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        # A short poll interval: shutdown() waits up to one interval, once per test.
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-model-server",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes hanging handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def wait(self, seconds: float) -> None:
        self._stop.wait(seconds)


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _usage(usage: tuple[int, int]) -> dict[str, int]:
    return {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}


def _handler_for(fake: FakeModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return None

        def _send_json(self, status: int, body: Any, raw: bytes | None = None) -> None:
            data = raw if raw is not None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send_json(404, {"error": {"message": f"no route {self.path}"}})
                return
            fake.requests.append(body)
            reply = fake.next_reply()
            if reply.drop_after == 0:
                self.close_connection = True
                return
            if reply.hang:
                fake.wait(reply.hang)
            while reply.gate is not None and not reply.gate.wait(0.05) and not fake._stop.is_set():
                pass
            if reply.status >= 400:
                self._send_json(reply.status, {"error": {"message": reply.error, "type": "fake_error",
                                                         "code": str(reply.status)}})
                return
            try:
                if body.get("stream"):
                    self._stream(body, reply)
                    fake.streams.append("complete")
                else:
                    self._complete(body, reply)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout and disconnect tests)
                if body.get("stream"):
                    fake.streams.append("aborted")
                return

        def _complete(self, body: dict[str, Any], reply: Reply) -> None:
            if reply.delay:
                fake.wait(reply.delay)
            if reply.malformed:
                self._send_json(200, None, b"{not json")
                return
            message: dict[str, Any] = {"role": "assistant", "content": "".join(reply.pieces(reply.content))}
            reasoning = "".join(reply.pieces(reply.reasoning))
            if reasoning:
                message["reasoning_content"] = reasoning
            answer: dict[str, Any] = {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", ""),
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            }
            if reply.usage is not None:
                answer["usage"] = _usage(reply.usage)
            self._send_json(200, answer)

        def _stream(self, body: dict[str, Any], reply: Reply) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            model = str(body.get("model", ""))

            def send(data: str) -> None:
                if reply.delay:
                    fake.wait(reply.delay)
                self.wfile.write(f"data: {data}\n\n".encode())
                self.wfile.flush()

            send(json.dumps(_chunk(model, {"role": "assistant", "content": ""})))
            for piece in reply.pieces(reply.reasoning):
                send(json.dumps(_chunk(model, {"reasoning_content": piece})))
            if reply.malformed:
                send("{not json")
            for sent, piece in enumerate(reply.pieces(reply.content)):
                if sent == reply.drop_after:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    raise ConnectionResetError("the reply drops the connection (drop_after)")
                send(json.dumps(_chunk(model, {"content": piece})))
            send(json.dumps(_chunk(model, {}, "stop")))
            include_usage = (body.get("stream_options") or {}).get("include_usage")
            if reply.usage is not None and include_usage:
                final = {**_chunk(model, {}), "choices": [], "usage": _usage(reply.usage)}
                send(json.dumps(final))
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

    return Handler


def registry_for(server: FakeModelServer, model_type: int | None = 1737521813, name: str | None = None,
                 timeout: float = 5.0, json_retries: int = 2, default: int | str | None = None) -> ModelRegistry:
    entry = ModelEntry(model_type=model_type, name=name, base_url=server.base_url, model="fake-model",
                       timeout=timeout, json_retries=json_retries)
    return ModelRegistry([entry], default)


def write_models_file(data_dir: Path, servers: dict[int, FakeModelServer], timeout: float = 5.0) -> None:
    """`<data_dir>/models.yaml` routing each model type to its fake server, as a real server reads it."""
    entries = "".join(f"  - model_type: {model_type}\n    base_url: {server.base_url}\n    model: fake-model\n"
                      f"    timeout: {timeout:g}\n" for model_type, server in servers.items())
    (data_dir / "models.yaml").write_text("models:\n" + entries)


@pytest.fixture
def model_server() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()
    try:
        yield server
    finally:
        server.stop()
