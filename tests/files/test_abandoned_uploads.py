"""Partial uploads a crash left in `files/.tmp/` are removed at start; one still being written is not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from knotflow.config import Settings
from knotflow.files.storage import LocalFileStorage
from knotflow.store.migrate import upgrade
from tests.api.conftest import free_port, start_server


def leave_partial(root: Path, name: str) -> Path:
    path = root / ".tmp" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half an upload")
    return path


async def test_only_unlocked_partial_files_are_removed(tmp_path: Path) -> None:
    storage = LocalFileStorage(tmp_path)
    crashed = leave_partial(tmp_path, "11.deadbeef.part")
    unrelated = leave_partial(tmp_path, "notes.txt")
    release = asyncio.Event()

    async def slow_upload() -> AsyncIterator[bytes]:
        yield b"first chunk"
        await release.wait()
        yield b"last chunk"

    upload = asyncio.create_task(storage.save("12", slow_upload(), 1000))
    while not list((tmp_path / ".tmp").glob("12.*.part")):
        await asyncio.sleep(0.01)

    assert await storage.remove_abandoned_uploads() == 1
    assert not crashed.exists() and unrelated.exists()
    release.set()
    assert await upload == len(b"first chunklast chunk")
    assert storage.path("12").read_bytes() == b"first chunklast chunk"
    assert await LocalFileStorage(tmp_path / "never-used").remove_abandoned_uploads() == 0


def test_the_server_removes_leftovers_when_it_starts(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, port=free_port())
    upgrade(settings.resolved_database_url())
    leftover = leave_partial(tmp_path / "files", "77.0badf00d.part")
    server, thread = start_server(settings)
    try:
        assert not leftover.exists()
        assert httpx.get(f"http://127.0.0.1:{settings.port}/health").json()["code"] == 0
    finally:
        server.should_exit = True
        thread.join(timeout=10)
