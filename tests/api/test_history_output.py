"""Run histories keep every Output node's whole text under its title, beside the End result under "Output"
(Coze's documented shape), through the real server and cozepy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cozepy import Coze, TokenAuth

from knotflow.config import Settings
from tests import canvases as c
from tests.api.conftest import LiveServer, free_port, serving
from tests.fakes.model_server import FakeModelServer, Reply, write_models_file
from tests.nodes.test_llm import LLM_ID, MODEL_TYPE, llm_node


@pytest.fixture(scope="module")
def llm_live(tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModelServer) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("history")
    write_models_file(data_dir, {MODEL_TYPE: fake_model})
    with serving(Settings(data_dir=data_dir, port=free_port())) as server:
        yield server


def publish(live: LiveServer, canvas: dict[str, Any]) -> str:
    from knotflow.models.registry import load_registry
    from knotflow.service import catalog
    from knotflow.store.repository import Store

    async def work(store: Store) -> str:
        models = load_registry(live.settings.resolved_models_file())
        workflow, _ = await catalog.import_workflow(store, canvas, publish=True, models=models)
        return workflow.id

    return str(live.call(work))


def history_output(coze: Coze, workflow_id: str, execute_id: str) -> dict[str, Any]:
    history = coze.workflows.runs.run_histories.retrieve(workflow_id=workflow_id, execute_id=execute_id)
    output: dict[str, Any] = json.loads(history.output)
    return output


def streamed_emitter(title: str) -> dict[str, Any]:
    return c.canvas(
        [c.start(("input", "string")), llm_node(),
         c.output("198540", "emitter: {{output}}", title=title, streaming=True, output=c.ref(LLM_ID, "output")),
         c.end_return(output=c.ref(LLM_ID, "output"))],
        [c.edge("100001", LLM_ID), c.edge(LLM_ID, "198540"), c.edge("198540", "900001")],
    )


def test_a_streamed_output_node_keeps_its_whole_text(llm_live: LiveServer, fake_model: FakeModelServer) -> None:
    coze = Coze(auth=TokenAuth(llm_live.token()), base_url=llm_live.base_url)
    workflow_id = publish(llm_live, streamed_emitter("输出"))
    fake_model.script(Reply(content=["I ", "don't ", "know."], usage=(3, 3)))
    result = coze.workflows.runs.create(workflow_id=workflow_id, parameters={"input": "why?"})
    assert result.execute_id
    assert history_output(coze, workflow_id, result.execute_id) == {
        "输出": "emitter: I don't know.", "node_status": "{}", "Output": '{"output":"I don\'t know."}'}


def test_an_output_node_titled_output_does_not_hide_the_end_result(live: LiveServer, token: str) -> None:
    coze = Coze(auth=TokenAuth(token), base_url=live.base_url)
    canvas = c.canvas(
        [c.start(("name", "string")),
         c.output("135000", "Hello, {{name}}!", title="Output", name=c.ref("100001", "name")),
         c.output("135001", "Bye, {{name}}.", title="Output", name=c.ref("100001", "name")),
         c.end_return(output=c.ref("100001", "name"))],
        [c.edge("100001", "135000"), c.edge("135000", "135001"), c.edge("135001", "900001")],
    )
    workflow_id = live.publish(canvas)
    result = coze.workflows.runs.create(workflow_id=workflow_id, parameters={"name": "Ada"})
    assert result.execute_id
    assert history_output(coze, workflow_id, result.execute_id) == {
        "Output (135000)": "Hello, Ada!", "Output (135001)": "Bye, Ada.", "node_status": "{}",
        "Output": '{"output":"Ada"}',
    }


def test_the_demo_history_shows_the_greeting_and_the_end_result(live: LiveServer, token: str) -> None:
    from knotflow.service.catalog import demo_canvas

    coze = Coze(auth=TokenAuth(token), base_url=live.base_url)
    workflow_id = live.publish(demo_canvas())
    result = coze.workflows.runs.create(workflow_id=workflow_id, parameters={"name": "George"})
    assert result.execute_id
    output = history_output(coze, workflow_id, result.execute_id)
    assert output == {"Greeting": "Hello, George!", "node_status": "{}",
                      "Output": '{"output":"Hello, George!"}'}
