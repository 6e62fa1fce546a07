"""An LLM workflow through the real server and cozepy, against the fake OpenAI-compatible model server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cozepy import Coze, TokenAuth, WorkflowEventType

from knotflow.config import Settings
from tests import canvases as c
from tests.api.conftest import LiveServer, free_port, serving
from tests.fakes.model_server import FakeModelServer, Reply, write_models_file
from tests.nodes.test_llm import LLM_ID, MODEL_TYPE, llm_node


@pytest.fixture(scope="module")
def llm_live(tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModelServer) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("llm")
    write_models_file(data_dir, {MODEL_TYPE: fake_model})
    settings = Settings(data_dir=data_dir, port=free_port())
    with serving(settings) as server:
        yield server


def emitter_canvas() -> dict[str, Any]:
    return c.canvas(
        [c.start(("input", "string")), llm_node(),
         c.output("198540", "emitter: {{output}}", streaming=True, output=c.ref(LLM_ID, "output")),
         c.end_return(output=c.ref(LLM_ID, "output"))],
        [c.edge("100001", LLM_ID), c.edge(LLM_ID, "198540"), c.edge("198540", "900001")],
    )


def published(live: LiveServer) -> tuple[Coze, str]:
    from knotflow.models.registry import load_registry
    from knotflow.service import catalog
    from knotflow.store.repository import Store

    async def work(store: Store) -> str:
        models = load_registry(live.settings.resolved_models_file())
        workflow, _ = await catalog.import_workflow(store, emitter_canvas(), publish=True, models=models)
        return workflow.id

    return Coze(auth=TokenAuth(live.token()), base_url=live.base_url), str(live.call(work))


def test_tokens_arrive_one_by_one_and_usage_is_summed(llm_live: LiveServer, fake_model: FakeModelServer) -> None:
    coze, workflow_id = published(llm_live)
    fake_model.script(Reply(content=["I ", "don't ", "know."], usage=(21, 3), delay=0.02))
    events = list(coze.workflows.runs.stream(workflow_id=workflow_id, parameters={"input": "why?"}))
    messages = [e.message for e in events if e.event == WorkflowEventType.MESSAGE]
    shown = [(m.content, m.node_seq_id, m.node_is_finish) for m in messages if m.node_title == "Output"]
    assert shown == [("emitter: ", "0", False), ("I ", "1", False), ("don't ", "2", False), ("know.", "3", False),
                     ("", "4", True)]
    end = messages[-1]
    assert json.loads(end.content) == {"output": "I don't know."}
    assert end.usage is not None and (end.usage.input_count, end.usage.output_count) == (21, 3)
    fake_model.script(Reply(content="ok", usage=(5, 1)))
    result = coze.workflows.runs.create(workflow_id=workflow_id, parameters={"input": "x"})
    assert result.usage is not None and result.usage.token_count == 6


def test_provider_error_is_error_then_done(llm_live: LiveServer, fake_model: FakeModelServer) -> None:
    coze, workflow_id = published(llm_live)
    fake_model.script(Reply(status=500, error="the model is down"))
    events = list(coze.workflows.runs.stream(workflow_id=workflow_id, parameters={"input": "x"}))
    errors = [e for e in events if e.event == WorkflowEventType.ERROR]
    assert len(errors) == 1 and errors[0].error.error_code == 5000
    assert errors[0].error.error_message.startswith("[") and "down" in errors[0].error.error_message
