"""RunService.events: what a stream reads from its run's queue."""

from __future__ import annotations

import asyncio
from pathlib import Path

from knotflow.config import Settings
from knotflow.engine.events import NodeMessage, RunResult, Usage
from knotflow.service.runs import COALESCE_BACKLOG, Finished, RunHandle, RunService
from knotflow.store.records import Run, Workflow
from knotflow.store.repository import Store


def piece(content: str, node_id: str = "llm_out", is_finish: bool = False) -> NodeMessage:
    return NodeMessage(node_id, "Output", "Message", content, is_finish)


async def read_all(store: Store, tmp_path: Path, items: list[object]) -> list[object]:
    service = RunService(store, Settings(data_dir=tmp_path))
    run = Run(execute_id="1", workflow_id="2", version="v1", space_id="3", run_mode=0, status="Running")
    workflow = Workflow(id="2", space_id="3", name="w", description="", icon_url="", app_id=None,
                        requires_bot=False, mode="workflow", canvas={}, created_at=0, updated_at=0)
    handle = RunHandle(run, workflow, asyncio.Queue())
    for item in items:
        handle.queue.put_nowait(item)  # type: ignore[arg-type]
    return [item async for item in service.events(handle, ping_interval=5)]


async def test_a_stream_behind_its_run_joins_a_nodes_queued_pieces(store: Store, tmp_path: Path) -> None:
    finished = Finished(RunResult({}, None, Usage()))
    tokens = [piece(f"t{i} ") for i in range(COALESCE_BACKLOG + 3)]
    items = await read_all(store, tmp_path, [*tokens, piece("x", node_id="other"), piece("", is_finish=True),
                                             finished])
    joined = "".join(t.content for t in tokens)
    assert items == [piece(joined), piece("x", node_id="other"), piece("", is_finish=True), finished]


async def test_a_stream_that_keeps_up_gets_every_piece_alone(store: Store, tmp_path: Path) -> None:
    finished = Finished(RunResult({}, None, Usage()))
    tokens = [piece("a"), piece("b"), piece("", is_finish=True)]
    assert await read_all(store, tmp_path, [*tokens, finished]) == [*tokens, finished]
