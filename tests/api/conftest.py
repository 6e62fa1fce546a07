"""A real knotflow server on a free loopback port, and helpers to seed it through the catalog service."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from knotflow.api.app import create_app
from knotflow.api.server import server_config
from knotflow.config import Settings
from knotflow.service import catalog
from knotflow.service.tokens import create_token
from knotflow.store.migrate import upgrade
from knotflow.store.repository import Store
from tests.fakes.model_server import FakeModelServer
from tests.node_types import TEST_NODE_TYPES
from tests.store.backends import database_url as database_url  # a migrated SQLite, and PostgreSQL if configured


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    settings: Settings
    base_url: str

    def call(self, work: Any) -> Any:
        """Run `work(store)` against the server's database in a fresh event loop."""

        async def runner() -> Any:
            store = await Store.open(self.settings.resolved_database_url())
            try:
                return await work(store)
            finally:
                await store.close()

        return asyncio.run(runner())

    def token(self, permissions: tuple[str, ...] = ("run",), spaces: list[str] | None = None) -> str:
        async def make(store: Store) -> str:
            return (await create_token(store, "test", list(permissions), spaces))[1]

        return str(self.call(make))

    def publish(self, canvas: dict[str, Any], **options: Any) -> str:
        async def work(store: Store) -> str:
            workflow, _ = await catalog.import_workflow(store, canvas, publish=True, node_types=TEST_NODE_TYPES,
                                                        **options)
            return workflow.id

        return str(self.call(work))

    def owner(self, kind: str, owner_id: str | None = None, space: str | None = None) -> str:
        """A bot or app (`kind`) with this id (a new one by default) in `space` (the first space by default),
        created unless it exists."""
        from knotflow.service.owners import create_bot_app

        async def work(store: Store) -> str:
            found = await store.get_bot_app(kind, owner_id) if owner_id else None
            if found is None:
                found = await create_bot_app(store, kind, f"test {kind}", owner_id=owner_id, space_id=space)
            return found.id

        return str(self.call(work))

    def bot(self, bot_id: str | None = None, space: str | None = None) -> str:
        return self.owner("bot", bot_id, space)

    def app(self, app_id: str | None = None, space: str | None = None) -> str:
        return self.owner("app", app_id, space)

    def space(self, space_id: str) -> str:
        async def work(store: Store) -> str:
            return (await store.ensure_space(space_id)).id

        return str(self.call(work))


def start_server(settings: Settings) -> tuple[uvicorn.Server, threading.Thread]:
    app = create_app(settings, node_types=TEST_NODE_TYPES)
    server = uvicorn.Server(server_config(app, settings, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return server, thread


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[LiveServer]:
    """A migrated server with these settings for the `with` block; it is shut down (lifespan included) after."""
    upgrade(settings.resolved_database_url())
    server, thread = start_server(settings)
    try:
        yield LiveServer(settings, f"http://127.0.0.1:{settings.port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir: Path = tmp_path_factory.mktemp("knotflow-data")
    settings = Settings(data_dir=data_dir, port=free_port(), ping_interval=30.0)
    with serving(settings) as server:
        yield server


@pytest.fixture(scope="session")
def token(live: LiveServer) -> str:
    return live.token()


@pytest.fixture()
def http(live: LiveServer, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def fake_model() -> Iterator[FakeModelServer]:
    """A fake OpenAI-compatible model server for the module's tests (script its replies per test)."""
    server = FakeModelServer().start()
    try:
        yield server
    finally:
        server.stop()
