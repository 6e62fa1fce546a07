"""The Intent node: classification through the model (full and top_speed modes) and knotflow's minimal mode."""

from __future__ import annotations

import json
from typing import Any

import pytest

from knotflow.contract import RunServices
from knotflow.engine.events import NodeFinished
from knotflow.engine.runner import Execution
from knotflow.errors import CanvasError, NodeError
from knotflow.models.registry import ModelRegistry
from knotflow.nodes.intent import minimal_match
from tests import canvases as c
from tests.fakes.model_server import FakeModelServer, Reply, model_server, registry_for
from tests.node_types import compile_canvas

__all__ = ["model_server"]  # the fixture, imported so pytest finds it here

INTENT_ID = "141102"
MODEL_TYPE = 1741232583


def intent_node(intents: list[str], mode: str = "all", system: str = "") -> dict[str, Any]:
    return c.node(INTENT_ID, "22", "Intent", outputs=[{"type": "integer", "name": "classificationId"},
                                                      {"type": "string", "name": "reason"}], inputs={
        "inputParameters": [c.param("query", c.ref("100001", "input"))],
        "llmParam": {
            "generationDiversity": "creative", "maxTokens": 4096, "modelName": "豆包·1.5·Lite·32k",
            "modelType": MODEL_TYPE, "prompt": {"type": "string", "value": {"type": "literal", "content": "{{query}}"}},
            "responseFormat": 2, "temperature": 1,
            "systemPrompt": {"type": "string", "value": {"type": "literal", "content": system}},
            "enableChatHistory": False, "chatHistoryRound": 3,
        },
        "intents": [{"name": name} for name in intents],
        "mode": mode,
    })


def routed(intents: list[str], mode: str = "all", system: str = "") -> dict[str, Any]:
    """Start → Intent → one Output node per port → End (which reports the classification)."""
    outputs = [c.output(f"20{i}", f"branch {i}") for i in range(len(intents))] + [c.output("299", "default")]
    edges = [c.edge("100001", INTENT_ID)]
    edges += [c.edge(INTENT_ID, f"20{i}", f"branch_{i}") for i in range(len(intents))]
    edges += [c.edge(INTENT_ID, "299", "default")]
    edges += [c.edge(node["id"], "900001") for node in outputs]
    end = c.end_return(id=c.ref(INTENT_ID, "classificationId", "integer"), reason=c.ref(INTENT_ID, "reason"))
    return c.canvas([c.start(("input", "string")), intent_node(intents, mode, system), *outputs, end], edges)


async def run(canvas: dict[str, Any], registry: ModelRegistry | None, query: str) -> tuple[dict[str, Any], set[str]]:
    plan = compile_canvas(canvas)
    events: list[Any] = []
    result = await Execution(plan, sink=events.append, services=RunServices(models=registry)).run(
        plan.entry.prepare({"input": query}))  # type: ignore[attr-defined]
    ran = {e.node_id for e in events if isinstance(e, NodeFinished) and e.status == "Success"}
    return {**result.output, "usage": result.usage.token_count}, ran


async def test_model_picks_a_branch(model_server: FakeModelServer) -> None:
    # Conformance case intent_detector_custom_sql: classificationId 1 → port branch_0.
    model_server.script(Reply(content='{"classificationId":2,"reason":"choice branch 2 "}', usage=(1, 2)))
    output, ran = await run(routed(["weather", "music"], system="Query was: {{query}}"),
                            registry_for(model_server, model_type=MODEL_TYPE), "play a song")
    assert output == {"id": 2, "reason": "choice branch 2 ", "usage": 3}
    assert "201" in ran and "200" not in ran and "299" not in ran
    sent = model_server.requests[0]["messages"]
    assert sent[1] == {"role": "user", "content": "play a song"}
    system = sent[0]["content"]
    assert '{"classificationId":1,"content":"weather"},{"classificationId":2,"content":"music"}' in system
    assert "Query was: play a song" in system and "{{advance}}" not in system


@pytest.mark.parametrize("answer", ['{"classificationId": 0, "reason": "Unclear intentions"}',
                                   'Sure: {"classificationId": 9, "reason": "?"}'])
async def test_zero_or_out_of_range_takes_default(model_server: FakeModelServer, answer: str) -> None:
    model_server.script(Reply(content=answer))
    _, ran = await run(routed(["weather"]), registry_for(model_server, model_type=MODEL_TYPE), "hm")
    assert "299" in ran and "200" not in ran


async def test_top_speed_mode_reads_a_number(model_server: FakeModelServer) -> None:
    model_server.script(Reply(content=" 1 ", usage=(4, 1)))
    output, ran = await run(routed(["weather", "music"], mode="top_speed"),
                            registry_for(model_server, model_type=MODEL_TYPE), "rain tomorrow?")
    assert output["id"] == 1 and output["reason"] is None and "200" in ran
    assert "just output an number" in model_server.requests[0]["messages"][0]["content"]


async def test_unparseable_answer_fails(model_server: FakeModelServer) -> None:
    model_server.script(Reply(content="I think it is about music"))
    with pytest.raises(NodeError) as info:
        await run(routed(["weather"]), registry_for(model_server, model_type=MODEL_TYPE), "x")
    assert info.value.internal_code == 777777773 and "no JSON object" in info.value.message


async def test_provider_error_fails(model_server: FakeModelServer) -> None:
    model_server.script(Reply(status=401, error="bad key"))
    with pytest.raises(NodeError, match="bad key"):
        await run(routed(["weather"]), registry_for(model_server, model_type=MODEL_TYPE), "x")


async def test_missing_model_config_is_clear() -> None:
    with pytest.raises(NodeError) as info:
        await run(routed(["weather"]), None, "x")
    assert str(MODEL_TYPE) in info.value.message and "models.yaml" in info.value.message


@pytest.mark.parametrize(("query", "expected_id", "port_node"), [
    ("Music", 2, "201"), ("what's the weather like", 1, "200"), ("hello", 0, "299"),
])
async def test_minimal_mode_needs_no_model(query: str, expected_id: int, port_node: str) -> None:
    output, ran = await run(routed(["weather", "music"], mode="minimal"), None, query)
    assert output["id"] == expected_id and output["usage"] == 0
    assert port_node in ran
    assert output["reason"]


def test_minimal_match_prefers_exact() -> None:
    assert minimal_match("music", ["play music", "music"]) == (2, "the query equals intent 'music'")


def test_compile_checks() -> None:
    node = next(n.node for n in compile_canvas(routed(["a", "b"])).nodes if n.node.id == INTENT_ID)
    assert node.ports() == ["branch_0", "branch_1", "default"]
    assert node.required_models() == [(MODEL_TYPE, "豆包·1.5·Lite·32k")]  # type: ignore[attr-defined]
    minimal = next(n.node for n in compile_canvas(routed(["a"], mode="minimal")).nodes if n.node.id == INTENT_ID)
    assert minimal.required_models() == []  # type: ignore[attr-defined]
    with pytest.raises(CanvasError, match="no intents"):
        compile_canvas(routed([]))
    bad = routed(["a"])
    bad["nodes"][1]["data"]["inputs"]["mode"] = "psychic"
    with pytest.raises(CanvasError, match="unknown mode"):
        compile_canvas(json.loads(json.dumps(bad)))
