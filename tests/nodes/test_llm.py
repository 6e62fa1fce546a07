"""The LLM node through the engine, against the fake OpenAI-compatible server."""

from __future__ import annotations

from typing import Any

import pytest

from knotflow.contract import RunServices
from knotflow.engine.events import NodeFinished, RunResult
from knotflow.engine.runner import Execution
from knotflow.errors import CanvasError, NodeError
from knotflow.models.registry import ModelRegistry
from knotflow.nodes._json_answer import extract_json
from tests import canvases as c
from tests.fakes.model_server import FakeModelServer, Reply, model_server, registry_for
from tests.node_types import compile_canvas
from tests.nodes.helpers import conformance_canvas

__all__ = ["model_server"]  # the fixture, imported so pytest finds it here

LLM_ID = "156549"
MODEL_TYPE = 1737521813


def llm_param(name: str, value: Any, type_: str = "string") -> dict[str, Any]:
    return c.param(name, c.literal(value, type_))


def llm_node(prompt: str = "{{input}}", system: str = "", response_format: int = 0,
             outputs: list[dict[str, Any]] | None = None, model_type: int | None = MODEL_TYPE,
             model_name: str = "豆包·1.5·Pro·32k") -> dict[str, Any]:
    params = [
        llm_param("temperature", "0.8", "float"), llm_param("maxTokens", "4096", "integer"),
        llm_param("responseFormat", str(response_format), "integer"), llm_param("modleName", model_name),
        llm_param("generationDiversity", "balance"), llm_param("prompt", prompt),
        llm_param("enableChatHistory", False, "boolean"), llm_param("chatHistoryRound", "3", "integer"),
        llm_param("systemPrompt", system),
    ]
    if model_type is not None:
        params.append(llm_param("modelType", str(model_type), "integer"))
    return c.node(LLM_ID, "3", "LLM", outputs=outputs or [{"name": "output", "type": "string"}], inputs={
        "inputParameters": [c.param("input", c.ref("100001", "input"))],
        "llmParam": params,
    })


def through_llm(node: dict[str, Any], **end: dict[str, Any]) -> dict[str, Any]:
    end = end or {"output": c.ref(LLM_ID, "output")}
    return c.canvas([c.start(("input", "string")), node, c.end_return(**end)],
                    [c.edge("100001", LLM_ID), c.edge(LLM_ID, "900001")])


async def run(canvas: dict[str, Any], registry: ModelRegistry | None, params: dict[str, Any] | None = None,
              events: list[Any] | None = None) -> RunResult:
    plan = compile_canvas(canvas)
    sink = events.append if events is not None else (lambda event: None)
    return await Execution(plan, sink=sink, services=RunServices(models=registry)).run(
        plan.entry.prepare(params or {"input": "hello"}))  # type: ignore[attr-defined]


async def test_text_answer_and_usage(model_server: FakeModelServer) -> None:
    model_server.script(Reply(content=["I ", "don't know."], usage=(12, 4)))
    result = await run(through_llm(llm_node(system="You are {{input}}-bot.")), registry_for(model_server))
    assert result.output == {"output": "I don't know."}
    assert (result.usage.input_count, result.usage.output_count) == (12, 4)
    sent = model_server.requests[0]
    assert sent["messages"] == [{"role": "system", "content": "You are hello-bot."},
                                {"role": "user", "content": "hello"}]
    assert sent["temperature"] == 0.8 and sent["max_tokens"] == 4096 and sent["model"] == "fake-model"


async def test_usage_sums_over_two_llm_nodes(model_server: FakeModelServer) -> None:
    second = llm_node(prompt="again: {{input}}")
    second["id"] = "156550"
    second["data"]["inputs"]["inputParameters"] = [c.param("input", c.ref(LLM_ID, "output"))]
    canvas = c.canvas([c.start(("input", "string")), llm_node(), second,
                       c.end_return(output=c.ref("156550", "output"))],
                      [c.edge("100001", LLM_ID), c.edge(LLM_ID, "156550"), c.edge("156550", "900001")])
    model_server.script(Reply(content="one", usage=(10, 1)), Reply(content="two", usage=(20, 2)))
    result = await run(canvas, registry_for(model_server))
    assert result.output == {"output": "two"}
    assert model_server.requests[1]["messages"][-1]["content"] == "again: one"
    assert result.usage.as_dict() == {"token_count": 33, "output_count": 3, "input_count": 30}


async def test_reasoning_content_is_an_output(model_server: FakeModelServer) -> None:
    node = llm_node(outputs=[{"name": "output", "type": "string"}, {"name": "reasoning_content", "type": "string"}])
    model_server.script(Reply(content="42", reasoning=["let me ", "think"], usage=(1, 1)))
    result = await run(through_llm(node, output=c.ref(LLM_ID, "output"), why=c.ref(LLM_ID, "reasoning_content")),
                       registry_for(model_server))
    assert result.output == {"output": "42", "why": "let me think"}


async def test_usage_is_estimated_without_provider_usage(model_server: FakeModelServer) -> None:
    model_server.script(Reply(content="abcdefgh"))
    result = await run(through_llm(llm_node()), registry_for(model_server))
    assert result.usage.output_count == 2 and result.usage.input_count == 4 + 2  # "hello": 5 chars → 2


JSON_OUTPUTS = [{"name": "name", "type": "string"}, {"name": "age", "type": "integer"}]
JSON_END = {"name": c.ref(LLM_ID, "name"), "age": c.ref(LLM_ID, "age", "integer")}


@pytest.mark.parametrize("answer", [
    '{"name":"eino","age":1}',
    'Sure!\n```json\n{"name": "eino", "age": "1"}\n```\n',
])
async def test_json_answer(model_server: FakeModelServer, answer: str) -> None:
    model_server.script(Reply(content=answer, usage=(5, 5)))
    result = await run(through_llm(llm_node(response_format=2, outputs=JSON_OUTPUTS), **JSON_END),
                       registry_for(model_server))
    assert result.output == {"name": "eino", "age": 1}
    prompt = model_server.requests[0]["messages"][-1]["content"]
    assert prompt.startswith("hello\nStrictly reply in valid JSON format.")
    assert '"age":{"type":"integer"}' in prompt
    assert "stream" not in model_server.requests[0] or not model_server.requests[0]["stream"]


async def test_invalid_json_is_retried(model_server: FakeModelServer) -> None:
    model_server.script(Reply(content="not json", usage=(5, 1)), Reply(content='{"name":"x","age":"old"}',
                        usage=(5, 1)), Reply(content='{"name":"eino","age":3}', usage=(5, 1)))
    result = await run(through_llm(llm_node(response_format=2, outputs=JSON_OUTPUTS), **JSON_END),
                       registry_for(model_server))
    assert result.output == {"name": "eino", "age": 3}
    assert len(model_server.requests) == 3
    assert result.usage.input_count == 15  # every attempt is counted


async def test_invalid_json_fails_after_retries(model_server: FakeModelServer) -> None:
    model_server.default = Reply(content="I refuse to answer in JSON")
    with pytest.raises(NodeError) as info:
        await run(through_llm(llm_node(response_format=2, outputs=JSON_OUTPUTS), **JSON_END),
                  registry_for(model_server, json_retries=1))
    assert len(model_server.requests) == 2
    assert info.value.internal_code == 777777773
    assert "not valid JSON" in info.value.message and "2 attempt" in info.value.message


async def test_json_format_with_one_string_output_is_text(model_server: FakeModelServer) -> None:
    model_server.script(Reply(content="plain words"))
    result = await run(through_llm(llm_node(response_format=2)), registry_for(model_server))
    assert result.output == {"output": "plain words"}


async def test_markdown_format_appends_coze_instructions(model_server: FakeModelServer) -> None:
    model_server.script(Reply(content="# hi"))
    await run(through_llm(llm_node(response_format=1)), registry_for(model_server))
    assert "Strictly reply in valid Markdown format." in model_server.requests[0]["messages"][-1]["content"]


async def test_provider_error_is_a_node_error(model_server: FakeModelServer) -> None:
    model_server.script(Reply(status=500, error="upstream exploded"))
    events: list[Any] = []
    with pytest.raises(NodeError) as info:
        await run(through_llm(llm_node()), registry_for(model_server), events=events)
    assert "upstream exploded" in info.value.message and "HTTP 500" in info.value.message
    assert info.value.internal_code == 720701013
    failed = [e for e in events if isinstance(e, NodeFinished) and e.status == "Fail"]
    assert failed and failed[0].node_id == LLM_ID


async def test_timeout_is_a_node_error(model_server: FakeModelServer) -> None:
    model_server.script(Reply(hang=3, content="too late"))
    with pytest.raises(NodeError) as info:
        await run(through_llm(llm_node()), registry_for(model_server, timeout=0.3))
    assert info.value.internal_code == 777777776
    assert "timed out" in info.value.message


async def test_malformed_stream_is_a_node_error(model_server: FakeModelServer) -> None:
    model_server.script(Reply(content="x", malformed=True))
    with pytest.raises(NodeError, match="model call failed"):
        await run(through_llm(llm_node()), registry_for(model_server))


async def test_no_registry_names_model_and_setting() -> None:
    with pytest.raises(NodeError) as info:
        await run(through_llm(llm_node()), None)
    assert "1737521813" in info.value.message and "KNOTFLOW_MODELS_FILE" in info.value.message


async def test_unconfigured_model_names_model_and_setting(model_server: FakeModelServer) -> None:
    with pytest.raises(NodeError) as info:
        await run(through_llm(llm_node(model_type=42)), registry_for(model_server))
    message = info.value.message
    assert "modelType 42" in message and "豆包·1.5·Pro·32k" in message and "models.yaml" in message
    assert model_server.requests == []


async def test_model_found_by_name_and_default(model_server: FakeModelServer) -> None:
    model_server.default = Reply(content="ok")
    by_name = registry_for(model_server, model_type=None, name="豆包·1.5·Pro·32k")
    assert (await run(through_llm(llm_node(model_type=7)), by_name)).output == {"output": "ok"}
    fallback = registry_for(model_server, model_type=1, default=1)
    assert (await run(through_llm(llm_node(model_type=7, model_name="other")), fallback)).output == {"output": "ok"}


def test_compile_checks_config_without_a_registry() -> None:
    plan = compile_canvas(through_llm(llm_node()))
    node = next(n.node for n in plan.nodes if n.node.id == LLM_ID)
    assert node.required_models() == [(MODEL_TYPE, "豆包·1.5·Pro·32k")]  # type: ignore[attr-defined]
    with pytest.raises(CanvasError, match="one string output"):
        compile_canvas(through_llm(llm_node(outputs=JSON_OUTPUTS)))
    with pytest.raises(CanvasError, match="response format"):
        compile_canvas(through_llm(llm_node(response_format=7)))


def test_tools_are_refused_naming_the_node_and_their_kinds() -> None:
    """Run without its tools, the model would answer differently from Coze's: such a canvas is refused."""
    node = llm_node()
    node["data"]["inputs"]["fcParam"] = {
        "workflowFCParam": {"workflowList": [{"workflow_id": "7492075279843737651", "workflow_version": "v0.0.1"}]},
        "knowledgeFCParam": {"knowledgeList": [{"id": "1"}]},
    }
    with pytest.raises(CanvasError, match=rf"LLM node 'LLM' \({LLM_ID}\) gives the model tools \(workflows, "
                                          r"knowledge\), which knotflow does not support yet"):
        compile_canvas(through_llm(node))
    # Empty sections, as Studio saves a node whose tools were removed, are no tools.
    node["data"]["inputs"]["fcParam"] = {"workflowFCParam": {"workflowList": []}, "pluginFCParam": {}}
    compile_canvas(through_llm(node))


def test_extract_json() -> None:
    assert extract_json('```json\n{"a": 1}\n```') == '{"a": 1}'
    assert extract_json('Here: {"a": {"b": 2}} done') == '{"a": {"b": 2}}'


async def test_conformance_llm_emitter_node(model_server: FakeModelServer) -> None:
    # Case llm_node_debug_invoke: the LLM node of sse/llm_emitter.json answers "I don't know.".
    canvas = conformance_canvas("sse/llm_emitter.json")
    model_server.default = Reply(content=["I ", "don't know."], usage=(3, 4))
    events: list[Any] = []
    result = await run(canvas, registry_for(model_server), events=events)
    llm_done = [e for e in events if isinstance(e, NodeFinished) and e.node_id == LLM_ID]
    assert llm_done and llm_done[0].status == "Success"
    assert b"I don't know." in llm_done[0].outputs
    assert result.usage.token_count == 7


async def test_tokens_stream_through_a_streaming_output_node(model_server: FakeModelServer) -> None:
    from knotflow.engine.events import NodeMessage

    model_server.script(Reply(content=["I ", "don't ", "know."], usage=(5, 3), delay=0.01))
    canvas = c.canvas(
        [c.start(("input", "string")), llm_node(),
         c.output("198540", "emitter: {{output}}", streaming=True, output=c.ref(LLM_ID, "output")),
         c.end_answer("exit: {{output}}", streaming=True, output=c.ref(LLM_ID, "output"))],
        [c.edge("100001", LLM_ID), c.edge(LLM_ID, "198540"), c.edge("198540", "900001")],
    )
    events: list[Any] = []
    result = await run(canvas, registry_for(model_server), events=events)
    shown = [(m.content, m.is_finish) for m in events if isinstance(m, NodeMessage) and m.node_id == "198540"]
    assert shown == [("emitter: ", False), ("I ", False), ("don't ", False), ("know.", False), ("", True)]
    assert result.answer == "exit: I don't know." and result.usage.token_count == 8
