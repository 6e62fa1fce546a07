"""Option questions: an answer that is not an option's exact text is matched by the node's model, as Coze does."""

from __future__ import annotations

import json
from typing import Any

import pytest

from knotflow.engine.events import NodeFinished, NodeMessage
from knotflow.errors import NodeError
from knotflow.models.registry import ModelRegistry
from tests.fakes.model_server import FakeModelServer, Reply, model_server, registry_for
from tests.node_types import compile_canvas
from tests.nodes.test_question import LLM_PARAM, QA, first, option_canvas, qa_node, resume

__all__ = ["model_server"]  # the fixture, imported so pytest finds it here

DYNAMIC = {"type": "list", "schema": {"type": "string"}, "value": {"type": "ref", "content": {
    "source": "block-output", "blockID": "100001", "name": "options"}}}


def static_plan(llm: dict[str, Any] | None = LLM_PARAM) -> Any:
    return compile_canvas(option_canvas(qa_node("option", "Pick", options=["{{name}}", "autumn"], llm=llm), 2))


async def answer(plan: Any, text: str, registry: ModelRegistry | None,
                 params: dict[str, Any] | None = None) -> tuple[dict[str, Any], set[str], Any]:
    """The run's output, the branch nodes that ran, and the result."""
    paused = await first(plan, params or {"name": "Ann"}, registry)
    events: list[Any] = []
    result = await resume(plan, paused, text, registry, events=events)
    ran = {e.node_id for e in events if isinstance(e, NodeFinished) and e.status == "Success"}
    return result.output, ran & {"200", "201", "299"}, result


async def test_the_model_picks_the_option_the_answer_means(model_server: FakeModelServer) -> None:
    model_server.script(Reply(content="1", usage=(40, 1)))
    output, ran, result = await answer(static_plan(), "the fall one, please", registry_for(model_server))
    assert output == {"id": "B", "content": "autumn"} and ran == {"201"}
    assert (result.usage.input_count, result.usage.output_count) == (40, 1)
    [request] = model_server.requests
    system, user = request["messages"]
    assert system["role"] == "system" and system["content"].startswith("# Role\nYou are a semantic matching expert")
    assert '\n[{"option":"Ann","option_id":0},{"option":"autumn","option_id":1}]\n' in system["content"]
    assert "If you think there is no suitable option, output -1" in system["content"]
    assert user == {"role": "user", "content": "the fall one, please"}
    assert request["temperature"] == 0.8 and request["max_tokens"] == 1024 and not request.get("stream")


async def test_no_suitable_option_goes_to_default(model_server: FakeModelServer) -> None:
    model_server.script(Reply(content="-1"))
    output, ran, _ = await answer(static_plan(), "winter", registry_for(model_server))
    assert output == {"id": "other", "content": "winter"} and ran == {"299"}


async def test_an_exact_answer_does_not_ask_the_model(model_server: FakeModelServer) -> None:
    output, ran, _ = await answer(static_plan(), "Ann", registry_for(model_server))
    assert output == {"id": "A", "content": "Ann"} and ran == {"200"}
    assert model_server.requests == []


async def test_dynamic_options_match_to_branch_0(model_server: FakeModelServer) -> None:
    plan = compile_canvas(option_canvas(qa_node("option", "City?", option_type="dynamic", dynamic=DYNAMIC,
                                                llm=LLM_PARAM), 1))
    model_server.script(Reply(content=" 1\n"))  # whitespace around the id is tolerated
    output, ran, _ = await answer(plan, "the big one by the sea", registry_for(model_server),
                                  {"name": "x", "options": ["beijing", "shanghai"]})
    assert output == {"id": "B", "content": "shanghai"} and ran == {"200"}
    assert '[{"option":"beijing","option_id":0},{"option":"shanghai","option_id":1}]' in (
        model_server.requests[0]["messages"][0]["content"])


@pytest.mark.parametrize("llm", [None, {**LLM_PARAM, "modelType": 42, "modelName": "unknown"}],
                         ids=["no llmParam", "model not configured"])
async def test_without_a_configured_model_only_exact_answers_match(model_server: FakeModelServer,
                                                                   llm: dict[str, Any] | None) -> None:
    output, ran, _ = await answer(static_plan(llm), "autumn", registry_for(model_server))
    assert output == {"id": "B", "content": "autumn"} and ran == {"201"}
    output, ran, _ = await answer(static_plan(llm), "the fall one", registry_for(model_server))
    assert output == {"id": "other", "content": "the fall one"} and ran == {"299"}
    output, _, _ = await answer(static_plan(llm), "the fall one", None)  # no models on the server at all
    assert output["id"] == "other"
    assert model_server.requests == []


@pytest.mark.parametrize(("reply", "message"), [
    (Reply(content="B"), "not an option id"),
    (Reply(content="1, because it is autumn"), "not an option id"),
    (Reply(content="2"), "only 2 options"),
    (Reply(status=500), "model call failed"),
])
async def test_a_bad_model_reply_fails_the_node(model_server: FakeModelServer, reply: Reply, message: str) -> None:
    model_server.script(reply)
    with pytest.raises(NodeError, match=message):
        await answer(static_plan(), "the fall one", registry_for(model_server))


async def test_interrupt_payload_is_the_message_content() -> None:
    """One Message with the whole payload (not streamed), and the same payload in the interrupt."""
    events: list[Any] = []
    paused = await first(static_plan(), {"name": "Ann"}, None, events=events)
    [message] = [e for e in events if isinstance(e, NodeMessage)]
    assert (message.node_id, message.is_finish, message.content) == (QA, True, paused.request.data)
    assert json.loads(paused.request.data) == {"messages": [{"type": "question", "content_type": "option",
        "content": {"options": [{"name": "Ann"}, {"name": "autumn"}], "question": "Pick"}, "id": f"{QA}_0"}]}
