"""A client closing a stream mid-run: the run is cancelled (default), or goes on in the background
(`KNOTFLOW_ON_DISCONNECT=continue`) and is recorded as usual; on shutdown a background run is recorded as failed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from knotflow.config import Settings
from knotflow.models.registry import load_registry
from knotflow.service import catalog
from knotflow.store.records import Run
from knotflow.store.repository import Store
from tests import canvases as c
from tests.api.conftest import LiveServer, free_port, serving
from tests.fakes.model_server import FakeModelServer, Reply, write_models_file
from tests.nodes.test_llm import LLM_ID, MODEL_TYPE, llm_node

TOKENS = [f"t{i} " for i in range(15)]


@pytest.fixture
def fake_model() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()
    try:
        yield server
    finally:
        server.stop()


def settings_for(data_dir: Path, fake: FakeModelServer, on_disconnect: str) -> Settings:
    write_models_file(data_dir, {MODEL_TYPE: fake}, timeout=30)
    return Settings(data_dir=data_dir, port=free_port(), on_disconnect=on_disconnect)  # type: ignore[arg-type]


def publish_answer_workflow(live: LiveServer) -> str:
    canvas = c.canvas(
        [c.start(("input", "string")), llm_node(), c.end_answer("{{output}}", streaming=True,
                                                                output=c.ref(LLM_ID, "output"))],
        [c.edge("100001", LLM_ID), c.edge(LLM_ID, "900001")],
    )

    async def work(store: Store) -> str:
        models = load_registry(live.settings.resolved_models_file())
        workflow, _ = await catalog.import_workflow(store, canvas, publish=True, models=models)
        return workflow.id

    return str(live.call(work))


def leave_after_first_token(live: LiveServer, workflow_id: str, token: str) -> str:
    """Start a stream, read up to the first streamed token, close the connection; the run's execute_id."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live.base_url, headers=headers, timeout=10) as client, client.stream(
        "POST", "/v1/workflow/stream_run", json={"workflow_id": workflow_id, "parameters": {"input": "go"}}
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and TOKENS[0] in line:
                return only_run_of(live, workflow_id)
    raise AssertionError("the stream ended before the first token")


def only_run_of(live: LiveServer, workflow_id: str) -> str:
    from sqlalchemy import select

    from knotflow.store.tables import runs as runs_table

    async def work(store: Store) -> str:
        async with store.engine.connect() as conn:
            row = (await conn.execute(select(runs_table.c.execute_id).where(
                runs_table.c.workflow_id == workflow_id))).one()
        return str(row[0])

    return str(live.call(work))


def run_of(live: LiveServer, execute_id: str) -> Run:
    async def work(store: Store) -> Run | None:
        return await store.get_run(execute_id)

    run = live.call(work)
    assert run is not None
    return run


def wait_until(check: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_cancel_fails_the_run_and_aborts_the_provider_request(tmp_path: Path, fake_model: FakeModelServer) -> None:
    fake_model.script(Reply(content=TOKENS, delay=0.2))
    with serving(settings_for(tmp_path, fake_model, "cancel")) as live:
        workflow_id = publish_answer_workflow(live)
        execute_id = leave_after_first_token(live, workflow_id, live.token())
        wait_until(lambda: run_of(live, execute_id).status != "Running" and bool(fake_model.streams))
        run = run_of(live, execute_id)
    assert (run.status, run.error_message) == ("Fail", "client disconnected")
    assert fake_model.streams == ["aborted"]


def test_continue_finishes_the_run_in_the_background(tmp_path: Path, fake_model: FakeModelServer) -> None:
    fake_model.script(Reply(content=TOKENS, delay=0.05, usage=(7, len(TOKENS))))
    with serving(settings_for(tmp_path, fake_model, "continue")) as live:
        workflow_id = publish_answer_workflow(live)
        token = live.token()
        execute_id = leave_after_first_token(live, workflow_id, token)
        assert run_of(live, execute_id).status == "Running"
        wait_until(lambda: run_of(live, execute_id).status != "Running")
        history = httpx.get(f"{live.base_url}/v1/workflows/{workflow_id}/run_histories/{execute_id}",
                            headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert fake_model.streams == ["complete"]
    item: dict[str, Any] = history["data"][0]
    assert item["execute_status"] == "Success" and item["error_message"] == ""
    answer = json.loads(json.loads(item["output"])["Output"])
    assert answer["data"] == "".join(TOKENS)
    assert item["usage"] == {"token_count": 7 + len(TOKENS), "output_count": len(TOKENS), "input_count": 7}


def test_shutdown_records_a_background_run_as_failed(tmp_path: Path, fake_model: FakeModelServer) -> None:
    fake_model.script(Reply(content=TOKENS, delay=0.5))
    with serving(settings_for(tmp_path, fake_model, "continue")) as live:
        workflow_id = publish_answer_workflow(live)
        execute_id = leave_after_first_token(live, workflow_id, live.token())
        assert run_of(live, execute_id).status == "Running"
    run = run_of(live, execute_id)  # the server has stopped: its lifespan ended
    assert (run.status, run.error_message) == ("Fail", "the server stopped")
    wait_until(lambda: bool(fake_model.streams))
    assert fake_model.streams == ["aborted"]
