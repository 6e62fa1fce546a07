"""Node error policies (Coze's settingOnError): timeout, retries, throw / default output / exception branch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests import canvases as c
from tests.fakes.model_server import FakeModelServer, Reply, model_server, registry_for
from tests.node_types import compile_canvas, register
from tests.nodes.test_llm import LLM_ID, llm_node

from knotflow.contract import Node, NodeContext, NodeResult, RunServices
from knotflow.dsl.types import TypeInfo
from knotflow.engine.events import NodeFinished, NodeMessage, RunResult
from knotflow.engine.policy import default_output
from knotflow.engine.runner import Execution
from knotflow.errors import CanvasError, NodeError
from knotflow.models.registry import ModelEntry, ModelRegistry

__all__ = ["model_server"]

ERROR_FIELDS = [
    {"name": "errorBody", "type": "object", "readonly": True, "schema": [
        {"name": "errorMessage", "type": "string", "readonly": True},
        {"name": "errorCode", "type": "string", "readonly": True}]},
    {"name": "isSuccess", "type": "boolean", "readonly": True},
]


def guarded_llm(**setting: Any) -> dict[str, Any]:
    node = llm_node(outputs=[{"name": "output", "type": "string"}, *ERROR_FIELDS])
    node["data"]["inputs"]["settingOnError"] = setting
    return node


def returning(node: dict[str, Any], **end: dict[str, Any]) -> dict[str, Any]:
    return c.canvas([c.start(("input", "string")), node, c.end_return(**end)],
                    [c.edge("100001", LLM_ID), c.edge(LLM_ID, "900001")])


async def run(canvas: dict[str, Any], registry: ModelRegistry, events: list[Any] | None = None) -> RunResult:
    plan = compile_canvas(canvas)
    sink = events.append if events is not None else (lambda event: None)
    try:
        return await Execution(plan, sink=sink, services=RunServices(models=registry)).run(
            plan.entry.prepare({"input": "hello"}))  # type: ignore[attr-defined]
    finally:
        await registry.aclose()


async def until(condition: Any, seconds: float = 10) -> None:
    """Wait for something another thread does (the fake server noticing a closed connection)."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)


async def test_a_timed_out_attempt_is_cancelled_and_retried(model_server: FakeModelServer) -> None:
    # The first reply's first chunk comes after the node's 300 ms: that attempt is cut, the retry answers.
    model_server.script(Reply(content=["too ", "late"], delay=1.0), Reply(content=["on ", "time"]))
    events: list[Any] = []
    canvas = returning(guarded_llm(timeoutMs=300, retryTimes=1, processType=1),
                       output=c.ref(LLM_ID, "output"))
    result = await run(canvas, registry_for(model_server), events)
    assert result.output == {"output": "on time"}
    finished = [e for e in events if isinstance(e, NodeFinished) and e.node_id == LLM_ID]
    assert [e.status for e in finished] == ["Fail", "Success"]
    assert finished[0].error is not None and "attempt 1 of 2 failed, retrying" in finished[0].error
    assert "timed out after 0.3 s" in finished[0].error
    assert len(model_server.requests) == 2
    await until(lambda: "aborted" in model_server.streams)
    assert sorted(model_server.streams) == ["aborted", "complete"]  # the cut attempt's request was closed


async def test_retries_exhausted_throw_by_default(model_server: FakeModelServer) -> None:
    model_server.default = Reply(status=500, error="provider down")
    with pytest.raises(NodeError) as info:
        await run(returning(guarded_llm(retryTimes=2), output=c.ref(LLM_ID, "output")), registry_for(model_server))
    assert "provider down" in info.value.message
    assert len(model_server.requests) == 3


async def test_default_output_on_failure(model_server: FakeModelServer) -> None:
    model_server.default = Reply(status=500, error="provider down")
    canvas = returning(guarded_llm(processType=2, dataOnErr='{"output": "sorry"}', switch=True),
                       output=c.ref(LLM_ID, "output"), ok=c.ref(LLM_ID, "isSuccess", "boolean"),
                       code=c.ref(LLM_ID, "errorBody.errorCode"))
    events: list[Any] = []
    result = await run(canvas, registry_for(model_server), events)
    assert result.output == {"output": "sorry", "ok": False, "code": "720701013"}
    node = next(e for e in events if isinstance(e, NodeFinished) and e.node_id == LLM_ID)
    assert node.status == "Success" and node.error is not None and "provider down" in node.error


async def test_success_reports_is_success(model_server: FakeModelServer) -> None:
    model_server.script(Reply(content="fine"))
    canvas = returning(guarded_llm(processType=2, dataOnErr='{"output": "sorry"}'),
                       output=c.ref(LLM_ID, "output"), ok=c.ref(LLM_ID, "isSuccess", "boolean"))
    result = await run(canvas, registry_for(model_server))
    assert result.output == {"output": "fine", "ok": True}


def branch_canvas(setting: dict[str, Any]) -> dict[str, Any]:
    """LLM with an exception branch: `default` → Output "ok", `branch_error` → Output "failed: {{msg}}"."""
    return c.canvas(
        [c.start(("input", "string")), guarded_llm(**setting),
         c.output("201", "ok: {{x}}", x=c.ref(LLM_ID, "output")),
         c.output("202", "failed: {{m}}", m=c.ref(LLM_ID, "errorBody")),
         c.end_return(ok=c.ref(LLM_ID, "isSuccess", "boolean"))],
        [c.edge("100001", LLM_ID), c.edge(LLM_ID, "201", "default"), c.edge(LLM_ID, "202", "branch_error"),
         c.edge("201", "900001"), c.edge("202", "900001")],
    )


async def test_exception_branch_takes_the_error_port(model_server: FakeModelServer) -> None:
    model_server.default = Reply(status=500, error="provider down")
    events: list[Any] = []
    result = await run(branch_canvas({"processType": 3, "timeoutMs": 60000}), registry_for(model_server), events)
    assert result.output == {"ok": False}
    statuses = {e.node_id: e.status for e in events if isinstance(e, NodeFinished)}
    assert statuses["201"] == "Skipped" and statuses["202"] == "Success"
    shown = [m.content for m in events if isinstance(m, NodeMessage) and m.node_id == "202"]
    assert shown and "provider down" in shown[0] and '"errorCode":"720701013"' in shown[0]
    llm = next(e for e in events if isinstance(e, NodeFinished) and e.node_id == LLM_ID)
    assert llm.outputs.startswith(b'{"errorBody"')  # only the error fields, as Coze Studio


async def test_exception_branch_success_takes_the_default_port(model_server: FakeModelServer) -> None:
    model_server.script(Reply(content="fine"))
    events: list[Any] = []
    result = await run(branch_canvas({"processType": 3}), registry_for(model_server), events)
    assert result.output == {"ok": True}
    statuses = {e.node_id: e.status for e in events if isinstance(e, NodeFinished)}
    assert statuses["201"] == "Success" and statuses["202"] == "Skipped"


async def test_a_plain_edge_is_the_normal_way_out_of_an_exception_branch(model_server: FakeModelServer) -> None:
    canvas = branch_canvas({"processType": 3})
    canvas["edges"][1] = c.edge(LLM_ID, "201")
    model_server.default = Reply(status=500)
    events: list[Any] = []
    await run(canvas, registry_for(model_server), events)
    statuses = {e.node_id: e.status for e in events if isinstance(e, NodeFinished)}
    assert statuses["201"] == "Skipped" and statuses["202"] == "Success"


def test_exception_branch_ports_are_checked() -> None:
    canvas = branch_canvas({"processType": 3})
    canvas["edges"][1] = c.edge(LLM_ID, "201", "elsewhere")
    with pytest.raises(CanvasError, match="branch_error"):
        compile_canvas(canvas)


def test_default_output_needs_data() -> None:
    with pytest.raises(CanvasError, match="dataOnErr"):
        compile_canvas(returning(guarded_llm(processType=2), output=c.ref(LLM_ID, "output")))


def test_default_output_is_converted_to_the_declared_outputs() -> None:
    outputs = {"name": TypeInfo("string", "name"), "age": TypeInfo("integer", "age")}
    assert default_output('{"name": 7, "age": "3", "extra": 1}', outputs) == {"name": "7", "age": 3, "extra": 1}
    # Text that is not a JSON object: strings get the text, everything else its zero value (Coze's fallback).
    assert default_output("oops", outputs) == {"name": "oops", "age": 0}


@register
class BreakingStreamNode(Node):
    """Test-only producer: streams its `tokens` ("|"-separated), then fails if the last one is "BOOM"."""

    type_id = "test-breaking-stream"
    display_key = "LLM"
    stream_fields = frozenset({"output"})

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = ctx.inputs
        stream = ctx.open_stream("output")
        for token in str(inputs["tokens"]).split("|"):
            if token == "BOOM":
                raise RuntimeError("provider failed mid-stream")
            stream.write(token)
        return NodeResult({"output": str(inputs["tokens"])})


async def test_a_node_that_already_streamed_is_not_retried() -> None:
    # Tokens reached the streaming Output node before the failure: the run fails, whatever the policy says.
    producer = c.node("300", "test-breaking-stream", "Model", outputs=[{"name": "output", "type": "string"}],
                      inputs={"inputParameters": [c.param("tokens", c.literal("partial |BOOM"))],
                              "settingOnError": {"retryTimes": 2, "processType": 2,
                                                 "dataOnErr": '{"output": "sorry"}'}})
    canvas = c.canvas(
        [c.start(), producer, c.output("201", "{{x}}", streaming=True, x=c.ref("300", "output")),
         c.end_return(output=c.ref("300", "output"))],
        [c.edge("100001", "300"), c.edge("300", "201"), c.edge("201", "900001")],
    )
    events: list[Any] = []
    with pytest.raises(NodeError, match="mid-stream"):
        await Execution(compile_canvas(canvas), sink=events.append).run({})
    assert [e.status for e in events if isinstance(e, NodeFinished) and e.node_id == "300"] == ["Fail"]


async def test_a_node_that_fails_before_streaming_gives_its_consumers_the_default_output() -> None:
    producer = c.node("300", "test-breaking-stream", "Model", outputs=[{"name": "output", "type": "string"}],
                      inputs={"inputParameters": [c.param("tokens", c.literal("BOOM"))],
                              "settingOnError": {"processType": 2, "dataOnErr": '{"output": "sorry"}'}})
    canvas = c.canvas(
        [c.start(), producer, c.output("201", "said: {{x}}", streaming=True, x=c.ref("300", "output")),
         c.end_return(output=c.ref("300", "output"))],
        [c.edge("100001", "300"), c.edge("300", "201"), c.edge("201", "900001")],
    )
    events: list[Any] = []
    result = await Execution(compile_canvas(canvas), sink=events.append).run({})
    assert result.output == {"output": "sorry"}
    assert "".join(m.content for m in events if isinstance(m, NodeMessage) and m.node_id == "201") == "said: sorry"


async def test_retry_uses_the_backup_model(model_server: FakeModelServer) -> None:
    backup = FakeModelServer().start()
    try:
        model_server.default = Reply(status=500, error="main model down")
        backup.script(Reply(content="from backup"))
        node = guarded_llm(retryTimes=1, ext={"backupLLmParam": '{"modelType": 42, "temperature": 0.1}'})
        registry = ModelRegistry([
            ModelEntry(model_type=1737521813, base_url=model_server.base_url, model="main", timeout=5),
            ModelEntry(model_type=42, base_url=backup.base_url, model="backup", timeout=5)])
        result = await run(returning(node, output=c.ref(LLM_ID, "output")), registry)
        assert result.output == {"output": "from backup"}
        assert backup.requests[0]["temperature"] == 0.1
    finally:
        backup.stop()
