"""The Question node: ask, pause, resume from the JSON checkpoint; options route to ports; extraction."""

from __future__ import annotations

import json
from typing import Any

import pytest

from knotflow.contract import RunServices
from knotflow.engine.checkpoint import Checkpoint
from knotflow.engine.events import NodeFinished, NodeMessage, RunInterrupted
from knotflow.engine.runner import Execution
from knotflow.errors import BadRequest, NodeError
from knotflow.models.registry import ModelRegistry
from tests import canvases as c
from tests.fakes.model_server import FakeModelServer, Reply, model_server, registry_for
from tests.node_types import compile_canvas
from tests.nodes.helpers import conformance_canvas

__all__ = ["model_server"]  # the fixture, imported so pytest finds it here

QA = "140000"
MODEL_TYPE = 1737521813
LLM_PARAM = {"modelName": "豆包", "modelType": MODEL_TYPE, "responseFormat": 2, "systemPrompt": "",
             "temperature": 0.8, "maxTokens": 1024}


def qa_node(answer_type: str = "text", question: str = "Hi {{name}}?", option_type: str = "static",
            options: list[str] | None = None, dynamic: dict[str, Any] | None = None, extra: bool = False,
            outputs: list[dict[str, Any]] | None = None, llm: dict[str, Any] | None = None,
            limit: int = 3) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "inputParameters": [c.param("name", c.ref("100001", "name"))],
        "question": question, "answer_type": answer_type, "option_type": option_type,
        "options": [{"name": name} for name in options or ["", ""]],
        "dynamic_option": dynamic or {"type": "string", "value": {"type": "ref", "content": {
            "source": "block-output", "blockID": "", "name": ""}}},
        "extra_output": extra, "limit": limit,
    }
    if llm is not None:
        inputs["llmParam"] = llm
    if outputs is None:
        outputs = ([{"name": "optionId", "type": "string"}, {"name": "optionContent", "type": "string"}]
                   if answer_type == "option" else [{"name": "USER_RESPONSE", "type": "string", "required": True}])
    return c.node(QA, "18", "Question", inputs=inputs, outputs=outputs)


def text_canvas(node: dict[str, Any], **end: dict[str, Any]) -> dict[str, Any]:
    end = end or {"r": c.ref(QA, "USER_RESPONSE")}
    return c.canvas([c.start(("name", "string"), ("options", "list")), node, c.end_return(**end)],
                    [c.edge("100001", QA), c.edge(QA, "900001")])


def option_canvas(node: dict[str, Any], branches: int) -> dict[str, Any]:
    outs = [c.output(f"20{i}", f"branch {i}") for i in range(branches)] + [c.output("299", "default")]
    edges = [c.edge("100001", QA)] + [c.edge(QA, f"20{i}", f"branch_{i}") for i in range(branches)]
    edges += [c.edge(QA, "299", "default")] + [c.edge(o["id"], "900001") for o in outs]
    end = c.end_return(id=c.ref(QA, "optionId"), content=c.ref(QA, "optionContent"))
    return c.canvas([c.start(("name", "string"), {"name": "options", "type": "list", "schema": {"type": "string"}}),
                     node, *outs, end], edges)


async def first(plan: Any, params: dict[str, Any], registry: ModelRegistry | None = None,
                events: list[Any] | None = None) -> RunInterrupted:
    sink = events.append if events is not None else (lambda event: None)
    with pytest.raises(RunInterrupted) as caught:
        await Execution(plan, sink=sink, services=RunServices(models=registry)).run(plan.entry.prepare(params))
    return caught.value


async def resume(plan: Any, paused: RunInterrupted, answer: str, registry: ModelRegistry | None = None,
                 events: list[Any] | None = None) -> Any:
    sink = events.append if events is not None else (lambda event: None)
    stored = Checkpoint.loads(paused.checkpoint.dumps())
    return await Execution.restore(plan, stored, sink=sink, services=RunServices(models=registry)).resume(answer)


async def test_text_question_pauses_and_resumes_with_the_answer() -> None:
    plan = compile_canvas(text_canvas(qa_node()))
    events: list[Any] = []
    paused = await first(plan, {"name": "Ann"}, events=events)
    assert (paused.node_id, paused.node_type, paused.request.kind) == (QA, "Question", 2)
    assert json.loads(paused.request.data) == {"messages": [
        {"type": "question", "content_type": "text", "content": "Hi Ann?", "id": f"{QA}_0"}]}
    assert [(m.node_id, m.content, m.is_finish) for m in events if isinstance(m, NodeMessage)] == [
        (QA, paused.request.data, True)]
    result = await resume(plan, paused, "fine")
    assert result.output == {"r": "fine"}


async def test_empty_answer_is_refused() -> None:
    node = compile_canvas(text_canvas(qa_node())).nodes[1].node
    for answer in ["", "  "]:
        with pytest.raises(BadRequest, match="must not be empty"):
            node.check_resume(answer)
    node.check_resume("ok")


@pytest.mark.parametrize(("answer", "expected", "ran"), [
    ("B {{x}}", {"id": "B", "content": "B {{x}}"}, "201"),
    ("Ann", {"id": "A", "content": "Ann"}, "200"),
    ("something else", {"id": "other", "content": "something else"}, "299"),
])
async def test_static_options_route_by_exact_text(answer: str, expected: dict[str, str], ran: str) -> None:
    plan = compile_canvas(option_canvas(qa_node("option", "Pick", options=["{{name}}", "B {{x}}"]), 2))
    paused = await first(plan, {"name": "Ann"})
    assert json.loads(paused.request.data) == {"messages": [{"type": "question", "content_type": "option", "content": {
        "options": [{"name": "Ann"}, {"name": "B {{x}}"}], "question": "Pick"}, "id": f"{QA}_0"}]}
    events: list[Any] = []
    result = await resume(plan, paused, answer, events=events)
    assert result.output == expected
    done = {e.node_id for e in events if isinstance(e, NodeFinished) and e.status == "Success"}
    assert done & {"200", "201", "299"} == {ran}


async def test_dynamic_options_come_from_a_variable() -> None:
    dynamic = {"type": "list", "schema": {"type": "string"}, "value": {"type": "ref", "content": {
        "source": "block-output", "blockID": "100001", "name": "options"}}}
    plan = compile_canvas(option_canvas(qa_node("option", "City?", option_type="dynamic", dynamic=dynamic), 1))
    paused = await first(plan, {"name": "x", "options": ["beijing", "shanghai"]})
    content = json.loads(paused.request.data)["messages"][0]["content"]
    assert content == {"options": [{"name": "beijing"}, {"name": "shanghai"}], "question": "City?"}
    events: list[Any] = []
    result = await resume(plan, paused, "shanghai", events=events)
    assert result.output == {"id": "B", "content": "shanghai"}
    done = {e.node_id for e in events if isinstance(e, NodeFinished) and e.status == "Success"}
    assert "200" in done and "299" not in done  # every dynamic option takes branch_0, as in Coze


async def test_dynamic_options_empty_fail() -> None:
    dynamic = {"type": "list", "schema": {"type": "string"}, "value": {"type": "ref", "content": {
        "source": "block-output", "blockID": "100001", "name": "options"}}}
    plan = compile_canvas(option_canvas(qa_node("option", "City?", option_type="dynamic", dynamic=dynamic), 1))
    with pytest.raises(NodeError, match="dynamic options"):
        await Execution(plan).run(plan.entry.prepare({"name": "x", "options": []}))  # type: ignore[attr-defined]


EXTRACT_OUTPUTS = [{"name": "USER_RESPONSE", "type": "string", "required": True},
                   {"name": "user_name", "type": "string", "required": True},
                   {"name": "user_age", "type": "integer", "required": True}]


def extract_canvas(limit: int = 3, llm: dict[str, Any] | None = LLM_PARAM) -> dict[str, Any]:
    node = qa_node(question="name and age?", extra=True, outputs=EXTRACT_OUTPUTS, llm=llm, limit=limit)
    return text_canvas(node, r=c.ref(QA, "USER_RESPONSE"), n=c.ref(QA, "user_name"),
                       a=c.ref(QA, "user_age", "integer"))


async def test_extraction_fills_declared_fields(model_server: FakeModelServer) -> None:
    registry = registry_for(model_server)
    plan = compile_canvas(extract_canvas())
    paused = await first(plan, {"name": "x"}, registry)
    model_server.script(Reply(content='```json\n{"fields": {"user_name": "Ann", "user_age": "30"}}\n```',
                              usage=(5, 2)))
    result = await resume(plan, paused, "Ann, 30", registry)
    assert result.output == {"r": "Ann, 30", "n": "Ann", "a": 30}
    sent = model_server.requests[0]["messages"]
    assert [m["role"] for m in sent] == ["system", "assistant", "user"]
    assert sent[1]["content"] == "name and age?" and sent[2]["content"].startswith("Ann, 30\n")
    assert "必填字段: [user_name user_age]" in sent[2]["content"]


async def test_missing_information_asks_again_until_the_limit(model_server: FakeModelServer) -> None:
    registry = registry_for(model_server)
    plan = compile_canvas(extract_canvas(limit=2))
    paused = await first(plan, {"name": "x"}, registry)
    model_server.script(Reply(content='{"fields": {"user_name": "Ann"}, "question": "How old are you?"}'))
    with pytest.raises(RunInterrupted) as again:
        await resume(plan, paused, "I am Ann", registry)
    assert json.loads(again.value.request.data) == {"messages": [
        {"type": "question", "content_type": "text", "content": "name and age?", "id": f"{QA}_0"},
        {"type": "answer", "content_type": "text", "content": "I am Ann", "id": f"{QA}_1"},
        {"type": "question", "content_type": "text", "content": "How old are you?", "id": f"{QA}_2"}]}
    model_server.script(Reply(content='{"fields": {}, "question": "Your age, please?"}'))
    with pytest.raises(NodeError, match="limit"):
        await resume(plan, again.value, "secret", registry)
    sent = model_server.requests[1]["messages"]
    assert [m["content"] for m in sent[1:4]] == ["name and age?", "I am Ann", "How old are you?"]


async def test_follow_up_answer_completes(model_server: FakeModelServer) -> None:
    registry = registry_for(model_server)
    plan = compile_canvas(extract_canvas())
    paused = await first(plan, {"name": "x"}, registry)
    model_server.script(Reply(content='{"fields": {"user_name": "Ann"}, "question": "Age?"}'),
                        Reply(content='{"fields": {"user_name": "Ann", "user_age": 7}, "question": ""}'))
    with pytest.raises(RunInterrupted) as again:
        await resume(plan, paused, "Ann", registry)
    result = await resume(plan, again.value, "7", registry)
    assert result.output == {"r": "7", "n": "Ann", "a": 7}


async def test_extraction_without_a_model_fails_clearly() -> None:
    plan = compile_canvas(extract_canvas(llm=None))
    paused = await first(plan, {"name": "x"})
    with pytest.raises(NodeError, match="llmParam"):
        await resume(plan, paused, "Ann, 30")


async def test_conformance_canvas_compiles_and_asks() -> None:
    plan = compile_canvas(conformance_canvas("qa_with_structured_output.json"))
    node = next(p.node for p in plan.nodes if p.node.type_id == "18")
    assert node.ports() == []
    chat = compile_canvas(conformance_canvas("chatflow/chat_run_with_interrupt.json"))
    option = next(p.node for p in chat.nodes if p.node.type_id == "18" and p.node.ports())
    assert option.ports() == ["branch_0", "branch_1", "default"]


async def test_a_waiting_question_keeps_its_conversation_while_another_node_is_answered(
        model_server: FakeModelServer) -> None:
    """Two questions asked in parallel: answering one re-runs the other, which asks its open question again
    (Coze: "interrupted but not resumed"); a follow-up question comes right after the answer it follows."""
    other = c.node("150000", "18", "Other", inputs={"inputParameters": [], "question": "Colour?",
                                                    "answer_type": "text"},
                   outputs=[{"name": "USER_RESPONSE", "type": "string"}])
    asking = qa_node(question="name and age?", extra=True, outputs=EXTRACT_OUTPUTS, llm=LLM_PARAM)
    plan = compile_canvas(c.canvas(
        [c.start(("name", "string")), asking, other,
         c.end_return(n=c.ref(QA, "user_name"), a=c.ref(QA, "user_age", "integer"), colour=c.ref("150000",
                                                                                             "USER_RESPONSE"))],
        [c.edge("100001", QA), c.edge("100001", "150000"), c.edge(QA, "900001"), c.edge("150000", "900001")]))
    registry = registry_for(model_server)
    model_server.script(Reply(content='{"fields": {"user_name": "Ann"}, "question": "Age?"}'),
                        Reply(content='{"fields": {"user_name": "Ann", "user_age": 7}}'))
    answers = {QA: ["I am Ann", "7"], "150000": ["red"]}
    asked: list[tuple[str, list[Any]]] = []
    events: list[Any] = []
    paused = await first(plan, {"name": "x"}, registry, events=events)
    while True:
        asked.append((paused.node_id, json.loads(paused.request.data)["messages"]))
        # Only the interrupt the user is asked is shown as a Message, not the other question waiting with it.
        assert [(e.node_id, e.content) for e in events if isinstance(e, NodeMessage)] == [
            (paused.node_id, paused.request.data)]
        events.clear()
        try:
            result = await resume(plan, paused, answers[paused.node_id].pop(0), registry, events=events)
            break
        except RunInterrupted as again:
            paused = again
    assert result.output == {"n": "Ann", "a": 7, "colour": "red"}
    follow_up = [messages for node, messages in asked if node == QA and len(messages) == 3]
    assert follow_up and all([m["content"] for m in messages] == ["name and age?", "I am Ann", "Age?"]
                             for messages in follow_up)
    assert [node for node, _ in asked] == [QA, QA, "150000"] and answers == {QA: [], "150000": []}
    assert [m["content"] for m in asked[2][1]] == ["Colour?"]
