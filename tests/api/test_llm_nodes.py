"""The LLM node's JSON answers, the Intent node's branching and each model node's tokens in the console and the
trace, end to end: the real server, cozepy, the fake OpenAI-compatible model server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from cozepy import Coze, TokenAuth, WorkflowEventType

from knotflow.config import Settings
from knotflow.errors import KnotflowError
from knotflow.models.registry import load_registry
from tests import canvases as c
from tests.api.conftest import LiveServer, free_port, serving
from tests.api.test_console_api import ConsoleClient
from tests.fakes.model_server import FakeModelServer, Reply, write_models_file
from tests.nodes import test_intent, test_llm, test_node_tokens
from tests.nodes.test_composites import LOOP, composite, ref
from tests.nodes.test_llm import LLM_ID, llm_node, through_llm


@pytest.fixture(scope="module")
def live_models(tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModelServer) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("llm-nodes")
    write_models_file(data_dir, {test_llm.MODEL_TYPE: fake_model, test_intent.MODEL_TYPE: fake_model})
    with serving(Settings(data_dir=data_dir, port=free_port())) as server:
        yield server


def publish(live: LiveServer, canvas: dict[str, object]) -> tuple[Coze, str]:
    models = load_registry(live.settings.resolved_models_file())  # publishing checks the canvas's models
    return Coze(auth=TokenAuth(live.token()), base_url=live.base_url), live.publish(canvas, models=models)


def test_json_output_mode_fills_the_declared_outputs(live_models: LiveServer, fake_model: FakeModelServer) -> None:
    canvas = through_llm(llm_node(response_format=2, outputs=test_llm.JSON_OUTPUTS), **test_llm.JSON_END)
    coze, workflow_id = publish(live_models, canvas)
    fake_model.script(Reply(content='Sure!\n```json\n{"name": "eino", "age": "7"}\n```', usage=(9, 4)))
    result = coze.workflows.runs.create(workflow_id=workflow_id, parameters={"input": "who?"})
    assert result.data is not None and json.loads(result.data) == {"name": "eino", "age": 7}
    assert result.usage is not None and result.usage.token_count == 13
    assert "Strictly reply in valid JSON format." in fake_model.requests[-1]["messages"][-1]["content"]

    # Not JSON after the node's attempts: a clear error on the stream, then the stream ends.
    fake_model.default = Reply(content="I will not answer in JSON")
    try:
        events = list(coze.workflows.runs.stream(workflow_id=workflow_id, parameters={"input": "who?"}))
    finally:
        fake_model.default = Reply(content="ok")
    errors = [e.error for e in events if e.event == WorkflowEventType.ERROR]
    assert len(errors) == 1 and "not valid JSON" in errors[0].error_message


@pytest.mark.parametrize(("answer", "branch"), [('{"classificationId": 2, "reason": "a song"}', "branch 1"),
                                                 ('{"classificationId": 0, "reason": "unclear"}', "default")])
def test_intent_takes_the_branch_the_model_chose(live_models: LiveServer, fake_model: FakeModelServer,
                                                 answer: str, branch: str) -> None:
    coze, workflow_id = publish(live_models, test_intent.routed(["weather", "music"]))
    fake_model.script(Reply(content=answer, usage=(3, 2)))
    events = list(coze.workflows.runs.stream(workflow_id=workflow_id, parameters={"input": "play a song"}))
    shown = [e.message.content for e in events if e.event == WorkflowEventType.MESSAGE]
    assert shown[0] == branch  # the Output node on the chosen port; the others were skipped
    assert json.loads(shown[-1])["id"] == json.loads(answer)["classificationId"]


def test_intent_minimal_mode_needs_no_model(live_models: LiveServer, fake_model: FakeModelServer) -> None:
    coze, workflow_id = publish(live_models, test_intent.routed(["weather", "music"], mode="minimal"))
    asked = len(fake_model.requests)
    result = coze.workflows.runs.create(workflow_id=workflow_id, parameters={"input": "Music"})
    assert result.data is not None and json.loads(result.data)["id"] == 2
    assert len(fake_model.requests) == asked


def test_an_unconfigured_model_is_refused_at_publish(live_models: LiveServer) -> None:
    from knotflow.service import catalog
    from knotflow.store.repository import Store

    canvas = c.canvas([c.start(("input", "string")), llm_node(model_type=42, model_name="nowhere"),
                       c.end_return(output=c.ref(LLM_ID, "output"))],
                      [c.edge("100001", LLM_ID), c.edge(LLM_ID, "900001")])

    async def work(store: Store) -> None:
        models = load_registry(live_models.settings.resolved_models_file())
        await catalog.import_workflow(store, canvas, publish=True, models=models)

    with pytest.raises(KnotflowError) as refused:
        live_models.call(work)
    assert "42" in refused.value.message and "models.yaml" in refused.value.message


def test_each_model_nodes_tokens_reach_the_console_and_the_trace(live_models: LiveServer,
                                                                  fake_model: FakeModelServer) -> None:
    """Start → LLM → Loop of 2 (an LLM per iteration) → End: each LLM execution's tokens are recorded and shown,
    the other entries have none, and the run's total is their sum."""
    body = test_node_tokens.llm("21001", prompt="again {{input}}", reads=ref(LOOP, "index", "integer"))
    loop = composite(LOOP, "21", {"loopType": "count", "loopCount": c.literal(2, "integer")}, [body], ["21001"],
                     [("outs", ref("21001", "output", "list"))], "loop")
    canvas = c.canvas([c.start(("input", "string")), llm_node(), loop, c.end_return(outs=ref(LOOP, "outs", "list"))],
                      [c.edge("100001", LLM_ID), c.edge(LLM_ID, LOOP), c.edge(LOOP, "900001")])
    coze, workflow_id = publish(live_models, canvas)
    fake_model.script(Reply(content="first", usage=(100, 20)), Reply(content="a", usage=(11, 1)),
                      Reply(content="b", usage=(12, 2)))
    token = live_models.token(("run", "read"))
    ran = coze.workflows.runs.create(workflow_id=workflow_id, parameters={"input": "go"})
    assert ran.usage is not None and (ran.usage.input_count, ran.usage.output_count) == (123, 23)
    console = ConsoleClient(live_models.base_url)
    try:
        console.sign_in(token)
        detail = console.get(f"/runs/{ran.execute_id}")
    finally:
        console.http.close()
    expected = [("100001", None, None, None), (LLM_ID, None, 100, 20), (LOOP, None, None, None),
                ("21001", 0, 11, 1), ("21001", 1, 12, 2), ("900001", None, None, None)]
    assert [(n["node_id"], n["iteration"], n["input_tokens"], n["output_tokens"]) for n in detail["nodes"]] == expected
    assert (detail["run"]["input_tokens"], detail["run"]["output_tokens"]) == (123, 23)
    with httpx.Client(base_url=live_models.base_url, headers={"Authorization": f"Bearer {token}"}) as http:
        trace = http.get("/work_flow", params={"execute_id": ran.execute_id}).json()["data"]
    assert [(n["node_id"], n["iteration"], n["input_tokens"], n["output_tokens"]) for n in trace["nodes"]] == expected
