"""A streaming End / Output reading several streamed inputs: template order, no waiting on what it has not reached,
skipped inputs, and interrupts while it waits."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from tests import canvases as c
from tests.fakes.model_server import FakeModelServer, Reply
from tests.node_types import compile_canvas, register
from tests.nodes.test_llm import llm_node

from knotflow.contract import InterruptRequest, Node, NodeContext, NodeInterrupt, NodeResult, RunServices
from knotflow.engine.checkpoint import Checkpoint
from knotflow.engine.events import NodeFinished, NodeMessage, RunInterrupted
from knotflow.engine.runner import Execution
from knotflow.models.registry import ModelEntry, ModelRegistry

END = "900001"


@register
class GateNode(Node):
    """Test-only node: finishes only once the text `opens` has been shown, so a consumer that waited for it before
    showing that text would never finish (the wait gives up after 5 s and fails the test)."""

    type_id = "test-gate"
    display_key = "Code"
    shown: ClassVar[list[str]] = []
    changed: ClassVar[asyncio.Event | None] = None

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = ctx.inputs
        while str(inputs["opens"]) not in "".join(self.shown):
            assert self.changed is not None
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 5)
        return NodeResult({"output": "gate open"})


@register
class AskNode(Node):
    """Test-only node: asks once (interrupts), then outputs the answer."""

    type_id = "test-ask"
    display_key = "Input"

    async def run(self, ctx: NodeContext) -> NodeResult:
        if ctx.resume_data is None:
            raise NodeInterrupt(InterruptRequest(5, "{}"))
        return NodeResult({"output": ctx.resume_data})


@register
class WordsNode(Node):
    """Test-only streaming producer: writes its `words` one by one, yielding to the loop between them."""

    type_id = "test-words"
    display_key = "LLM"
    stream_fields = frozenset({"output"})

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = ctx.inputs
        stream = ctx.open_stream("output")
        for word in str(inputs["words"]).split("|"):
            stream.write(word)
            await asyncio.sleep(0)
        return NodeResult({"output": str(inputs["words"]).replace("|", "")})


def words(node_id: str, text: str) -> dict[str, Any]:
    return c.node(node_id, "test-words", "Model " + node_id, outputs=[{"name": "output", "type": "string"}],
                  inputs={"inputParameters": [c.param("words", c.literal(text))]})


def llm(node_id: str, model_type: int) -> dict[str, Any]:
    node = llm_node(model_type=model_type)
    node["id"] = node_id
    node["data"]["nodeMeta"]["title"] = "LLM " + node_id
    return node


async def run(canvas: dict[str, Any], services: RunServices | None = None) -> tuple[Any, list[Any]]:
    GateNode.shown = []
    GateNode.changed = asyncio.Event()
    events: list[Any] = []

    def sink(event: Any) -> None:
        events.append(event)
        if isinstance(event, NodeMessage):
            GateNode.shown.append(event.content)
            assert GateNode.changed is not None
            GateNode.changed.set()

    plan = compile_canvas(canvas)
    result = await Execution(plan, sink=sink, services=services).run(plan.entry.prepare({"input": "hi"}))  # type: ignore[attr-defined]
    return result, events


def end_messages(events: list[Any]) -> list[str]:
    return [e.content for e in events if isinstance(e, NodeMessage) and e.node_id == END]


async def test_two_llms_stream_into_one_end_in_template_order() -> None:
    """The first LLM is slow, the second answers at once: the End shows the first's tokens as they come, then the
    second's, as the template orders them, even though the second finished long before."""
    slow, fast = FakeModelServer().start(), FakeModelServer().start()
    registry = ModelRegistry([ModelEntry(model_type=1, base_url=slow.base_url, model="slow", timeout=10),
                              ModelEntry(model_type=2, base_url=fast.base_url, model="fast", timeout=10)])
    try:
        slow.script(Reply(content=["s1 ", "s2 ", "s3"], delay=0.3))
        fast.script(Reply(content=["f1 ", "f2"]))
        canvas = c.canvas(
            [c.start(("input", "string")), llm("301", 1), llm("302", 2),
             c.end_answer("A: {{a}} | B: {{b}}", streaming=True, a=c.ref("301", "output"), b=c.ref("302", "output"))],
            [c.edge("100001", "301"), c.edge("100001", "302"), c.edge("301", END), c.edge("302", END)],
        )
        result, events = await run(canvas, RunServices(models=registry))
    finally:
        await registry.aclose()
        slow.stop()
        fast.stop()
    assert result.answer == "A: s1 s2 s3 | B: f1 f2"
    # The second LLM's text was complete when the End reached it: its chunks are replayed, as Coze Studio does.
    assert end_messages(events) == ["A: ", "s1 ", "s2 ", "s3", " | B: ", "f1 ", "f2", ""]
    finished = [e.node_id for e in events if isinstance(e, NodeFinished) and e.node_id in ("301", "302")]
    assert finished == ["302", "301"]  # the second LLM was done first; the order on screen is the template's


async def test_an_end_does_not_wait_for_a_node_it_has_not_reached() -> None:
    """The gate finishes only once the End has shown the first model's text: waiting for it would never end."""
    gate = c.node("400", "test-gate", "Gate", inputs={"inputParameters": [c.param("opens", c.literal("one two"))]})
    canvas = c.canvas(
        [c.start(("input", "string")), words("301", "one |two"), gate,
         c.end_answer("{{a}} / {{g}}", streaming=True, a=c.ref("301", "output"), g=c.ref("400", "output"))],
        [c.edge("100001", "301"), c.edge("100001", "400"), c.edge("301", END), c.edge("400", END)],
    )
    result, events = await run(canvas)
    assert result.answer == "one two / gate open"
    assert result.output == {"a": "one two", "g": "gate open"}
    assert end_messages(events) == ["one ", "two", " / ", "gate open"]


async def test_a_streaming_output_waits_for_its_last_edges_before_its_successors_run() -> None:
    """An Output node that started early and finished while another predecessor still ran lets its successors go
    only once that predecessor is done: the End reads the gate's output through it."""
    gate = c.node("400", "test-gate", "Gate", inputs={"inputParameters": [c.param("opens", c.literal("one two"))]})
    canvas = c.canvas(
        [c.start(("input", "string")), words("301", "one |two"), gate,
         c.output("500", "{{a}}", streaming=True, a=c.ref("301", "output")),
         c.end_return(o=c.ref("500", "output"), g=c.ref("400", "output"))],
        [c.edge("100001", "301"), c.edge("100001", "400"), c.edge("301", "500"), c.edge("400", "500"),
         c.edge("500", END)],
    )
    result, events = await run(canvas)
    assert result.output == {"o": "one two", "g": "gate open"}
    order = [e.node_id for e in events if isinstance(e, NodeFinished)]
    assert order.index("500") < order.index("400") < order.index(END)


async def test_an_interrupt_while_the_end_waits_resumes_without_showing_text_twice() -> None:
    """The End shows the first model's text, then waits for a model held back by a question: the run pauses,
    and after the answer the End goes on where it stopped."""
    ask = c.node("400", "test-ask", "Ask", outputs=[{"name": "output", "type": "string"}])
    canvas = c.canvas(
        [c.start(("input", "string")), words("301", "one |two"), ask, words("302", "three |four"),
         c.end_answer("[{{a}}] [{{b}}] [{{q}}]", streaming=True, a=c.ref("301", "output"),
                      b=c.ref("302", "output"), q=c.ref("400", "output"))],
        [c.edge("100001", "301"), c.edge("100001", "400"), c.edge("400", "302"), c.edge("301", END),
         c.edge("302", END)],
    )
    plan = compile_canvas(canvas)
    events: list[Any] = []
    try:
        await Execution(plan, sink=events.append).run(plan.entry.prepare({"input": "hi"}))  # type: ignore[attr-defined]
        raise AssertionError("the run should ask")
    except RunInterrupted as paused:
        checkpoint = Checkpoint.loads(paused.checkpoint.dumps())
    first = "".join(end_messages(events))
    assert first.startswith("[one two] [")
    events.clear()
    result = await Execution.restore(plan, checkpoint, sink=events.append).resume("yes")
    assert first + "".join(end_messages(events)) == "[one two] [three four] [yes]"
    assert result.answer == "[one two] [three four] [yes]"


async def test_an_end_waiting_for_the_node_that_asks_pauses_with_it() -> None:
    ask = c.node("400", "test-ask", "Ask", outputs=[{"name": "output", "type": "string"}])
    canvas = c.canvas(
        [c.start(("input", "string")), words("301", "one |two"), ask,
         c.end_answer("{{a}} + {{q}}", streaming=True, a=c.ref("301", "output"), q=c.ref("400", "output"))],
        [c.edge("100001", "301"), c.edge("100001", "400"), c.edge("301", END), c.edge("400", END)],
    )
    plan = compile_canvas(canvas)
    events: list[Any] = []
    try:
        await Execution(plan, sink=events.append).run(plan.entry.prepare({"input": "hi"}))  # type: ignore[attr-defined]
        raise AssertionError("the run should ask")
    except RunInterrupted as paused:
        checkpoint = Checkpoint.loads(paused.checkpoint.dumps())
    first = "".join(end_messages(events))
    events.clear()
    result = await Execution.restore(plan, checkpoint, sink=events.append).resume("yes")
    assert first + "".join(end_messages(events)) == "one two + yes" == result.answer


async def test_a_skipped_input_renders_as_nothing() -> None:
    selector = c.node("600", "8", "If", inputs={"branches": [{"condition": {"logic": 2, "conditions": [
        {"operator": 1, "left": {"input": c.ref("100001", "input")}, "right": {"input": c.literal("no")}}]}}]})
    canvas = c.canvas(
        [c.start(("input", "string")), selector, words("301", "one |two"), words("302", "never"),
         c.end_answer("<{{a}}><{{b}}>", streaming=True, a=c.ref("301", "output"), b=c.ref("302", "output"))],
        [c.edge("100001", "600"), c.edge("600", "302", "true"), c.edge("600", "301", "false"),
         c.edge("301", END), c.edge("302", END)],
    )
    result, events = await run(canvas)
    assert result.answer == "<one two><>"
    statuses = {e.node_id: e.status for e in events if isinstance(e, NodeFinished)}
    assert statuses["302"] == "Skipped"


async def test_a_streaming_end_after_a_streaming_output_does_not_interleave_with_it() -> None:
    """Coze Studio's llm_emitter canvas: the End reads the model directly, but its only predecessor is a streaming
    Output node that shows the same model. The End's text goes out after all of the Output's, never in between."""
    canvas = c.canvas(
        [c.start(("input", "string")), words("301", "one |two |three"),
         c.output("500", "emitter: {{a}}", streaming=True, a=c.ref("301", "output")),
         c.end_answer("exit: {{a}}", streaming=True, a=c.ref("301", "output"))],
        [c.edge("100001", "301"), c.edge("301", "500"), c.edge("500", END)],
    )
    result, events = await run(canvas)
    shown = [e.node_id for e in events if isinstance(e, NodeMessage) and e.content]
    assert shown == ["500"] * shown.count("500") + [END] * shown.count(END), shown
    assert "".join(e.content for e in events if isinstance(e, NodeMessage) and e.node_id == "500") == \
        "emitter: one two three"
    assert result.answer == "exit: one two three"
