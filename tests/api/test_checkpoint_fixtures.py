"""Runs paused by earlier code resume: their stored checkpoints (tests/fixtures/checkpoints) are loaded into a
fresh database, on every backend, and answered with cozepy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cozepy import Coze, TokenAuth, WorkflowEventType
from sqlalchemy import insert

from knotflow.config import Settings
from knotflow.store import tables as t
from knotflow.store.repository import Store
from tests.api.conftest import LiveServer, free_port, serving

FIXTURES = Path(__file__).parent.parent / "fixtures" / "checkpoints"


def load(name: str) -> dict[str, Any]:
    rows: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return rows


@pytest.fixture()
def live_db(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path, database_url=database_url, port=free_port())
    with serving(settings) as server:
        yield server


def restore(live: LiveServer, rows: dict[str, Any]) -> None:
    async def work(store: Store) -> None:
        async with store.engine.begin() as conn:
            space = rows["workflow"]["space_id"]
            await conn.execute(insert(t.spaces).values(id=space, name="Personal", created_at=0))
            await conn.execute(insert(t.workflows).values(**rows["workflow"]))
            await conn.execute(insert(t.workflow_versions).values(**rows["version"]))
            await conn.execute(insert(t.runs).values(**rows["run"]))
            await conn.execute(insert(t.interrupts).values(**rows["interrupt"]))

    live.call(work)


def answer_stored(live: LiveServer, name: str, answer: str, kind: int) -> tuple[Coze, dict[str, Any], list[Any]]:
    """Store the fixture's rows, then answer its question with cozepy: the client, the rows, the events."""
    rows = load(name)
    restore(live, rows)
    coze = Coze(auth=TokenAuth(live.token()), base_url=live.base_url)
    event_id = f"{rows['interrupt']['execute_id']}/{rows['interrupt']['event_id']}"
    events = list(coze.workflows.runs.resume(workflow_id=rows["workflow"]["id"], event_id=event_id,
                                             resume_data=answer, interrupt_type=kind))
    return coze, rows, events


def test_a_question_paused_by_earlier_code_resumes(live_db: LiveServer) -> None:
    coze, rows, events = answer_stored(live_db, "question", "Paris", 2)
    assert [e.event for e in events] == [WorkflowEventType.MESSAGE]
    assert json.loads(events[0].message.content) == {"answer": "Paris", "greeting": "Hello, Ann!"}
    history = coze.workflows.runs.run_histories.retrieve(workflow_id=rows["workflow"]["id"],
                                                         execute_id=rows["run"]["execute_id"])
    assert history.execute_status == "Success"


def test_parallel_inputs_paused_by_earlier_code_resume_one_after_the_other(live_db: LiveServer) -> None:
    coze, rows, events = answer_stored(live_db, "input", json.dumps({"city": "Hangzhou", "days": 2}), 5)
    assert events[-1].event == WorkflowEventType.INTERRUPT
    second = events[-1].interrupt
    assert second.node_title == "Again"
    final = list(coze.workflows.runs.resume(workflow_id=rows["workflow"]["id"],
                                            event_id=second.interrupt_data.event_id,
                                            resume_data=json.dumps({"city": "Paris"}), interrupt_type=5))
    assert [e.event for e in final] == [WorkflowEventType.MESSAGE]
    assert json.loads(final[0].message.content) == {"first": "Hangzhou", "days": 2, "second": "Paris"}
