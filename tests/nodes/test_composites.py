"""Loop, Batch and Sub-workflow through the real engine: iterations, variables, Break, outputs as Coze Studio
collects them, concurrency, failures, and questions asked from inside an iteration, an item or a child workflow
(paused, resumed from a checkpoint that went through JSON, nothing finished run twice)."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any, ClassVar

import pytest

from knotflow.contract import ChildPlan, Node, NodeContext, NodeResult, RunLimits, RunServices
from knotflow.engine.checkpoint import Checkpoint
from knotflow.engine.compiler import Plan
from knotflow.engine.events import NodeFinished, NodeMessage, RunInterrupted, RunResult
from knotflow.engine.runner import Execution
from knotflow.errors import CanvasError, NodeError
from tests import canvases as c
from tests.node_types import compile_canvas, register
from tests.nodes.helpers import conformance_canvas

LOOP, BATCH, SUB = "21000", "28000", "90000"


def ref(block: str, name: str, type_: str = "string", **schema: Any) -> dict[str, Any]:
    value = c.ref(block, name, type_)
    value.update(schema)
    return value


def text(node_id: str, template: str, title: str = "Text", **inputs: dict[str, Any]) -> dict[str, Any]:
    """A Text (15) concat node: `output` is the template over its inputs."""
    return c.node(node_id, "15", title, inputs={
        "method": "concat", "inputParameters": [c.param(name, source) for name, source in inputs.items()],
        "concatParams": [{"name": "concatResult", "input": c.literal(template)}]},
        outputs=[{"name": "output", "type": "string"}])


def composite(node_id: str, type_id: str, inputs: dict[str, Any], blocks: list[dict[str, Any]],
              chain: list[str], outputs: list[tuple[str, dict[str, Any]]], port: str) -> dict[str, Any]:
    """A Loop or Batch whose body runs `chain` in order."""
    node = c.node(node_id, type_id, (type_id == "21" and "Loop") or "Batch", inputs=inputs)
    node["data"]["outputs"] = [{"name": name, "input": source} for name, source in outputs]
    node["blocks"] = blocks
    edges = [c.edge(node_id, chain[0], f"{port}-function-inline-output")]
    edges += [c.edge(a, b) for a, b in itertools.pairwise(chain)]
    edges.append({"sourceNodeID": chain[-1], "targetNodeID": node_id, "targetPortID": f"{port}-function-inline-input"})
    node["edges"] = edges
    return node


def around(node: dict[str, Any], *starts: tuple[str, str] | dict[str, Any], **end: dict[str, Any]) -> dict[str, Any]:
    return c.canvas([c.start(*starts), node, c.end_return(**end)],
                    [c.edge("100001", node["id"]), c.edge(node["id"], "900001")])


async def run(canvas: dict[str, Any], params: dict[str, Any] | None = None,
              services: RunServices | None = None, events: list[Any] | None = None) -> RunResult:
    plan = compile_canvas(canvas)
    return await Execution(plan, sink=(events if events is not None else []).append,
                           services=services).run(plan.entry.prepare(params or {}))


# --- Loop --------------------------------------------------------------------------------------------------
def array_loop(**extra_inputs: Any) -> dict[str, Any]:
    """For each of `words` (and `n`): text "<index>:<word>:<acc>", the variable `acc` becomes that text."""
    body = text("21001", "{{i}}:{{w}}:{{acc}}", i=ref(LOOP, "index", "integer"), w=ref(LOOP, "words"),
                acc=ref(LOOP, "acc"))
    setter = c.node("21002", "20", "Set", inputs={"inputParameters": [
        {"left": ref(LOOP, "acc"), "right": ref("21001", "output")}]})
    inputs = {"loopType": "array", "variableParameters": [c.param("acc", c.literal("init"))],
              "inputParameters": [c.param("words", ref("100001", "words", "list", schema={"type": "string"}))],
              **extra_inputs}
    return composite(LOOP, "21", inputs, [body, setter], ["21001", "21002"],
                     [("texts", ref("21001", "output", "list")), ("acc", ref(LOOP, "acc"))], "loop")


async def test_an_array_loop_collects_outputs_and_keeps_variables() -> None:
    canvas = around(array_loop(), {"name": "words", "type": "list", "schema": {"type": "string"}},
                    texts=ref(LOOP, "texts", "list"), acc=ref(LOOP, "acc"))
    result = await run(canvas, {"words": ["a", "b", "c"]})
    assert result.output == {"texts": ["0:a:init", "1:b:0:a:init", "2:c:1:b:0:a:init"],
                             "acc": "2:c:1:b:0:a:init"}


async def test_an_empty_array_runs_no_iteration_and_the_variable_keeps_its_value() -> None:
    canvas = around(array_loop(), {"name": "words", "type": "list", "schema": {"type": "string"}},
                    texts=ref(LOOP, "texts", "list"), acc=ref(LOOP, "acc"))
    assert (await run(canvas, {"words": []})).output == {"texts": [], "acc": "init"}


async def test_a_loop_takes_the_shortest_array() -> None:
    loop = array_loop()
    loop["data"]["inputs"]["inputParameters"].append(
        c.param("more", ref("100001", "more", "list", schema={"type": "integer"})))
    canvas = around(loop, {"name": "words", "type": "list", "schema": {"type": "string"}},
                    {"name": "more", "type": "list", "schema": {"type": "integer"}},
                    texts=ref(LOOP, "texts", "list"))
    assert (await run(canvas, {"words": ["a", "b", "c"], "more": [1, 2]})).output == {
        "texts": ["0:a:init", "1:b:0:a:init"]}


def breaking_loop(loop_type: str, **inputs: Any) -> dict[str, Any]:
    """Each iteration: If index >= 2 → Break, index == 1 → Continue, else Text; collects the Text's output."""
    selector = c.node("21003", "8", "If", inputs={"branches": [
        {"condition": {"logic": 2, "conditions": [{"operator": 14, "left": {"input": ref(LOOP, "index", "integer")},
                                                   "right": {"input": c.literal(2, "integer")}}]}},
        {"condition": {"logic": 2, "conditions": [{"operator": 1, "left": {"input": ref(LOOP, "index", "integer")},
                                                   "right": {"input": c.literal(1, "integer")}}]}}]})
    body = [selector, c.node("21004", "19", "Break"), c.node("21005", "29", "Continue"),
            text("21006", "ran {{i}}", i=ref(LOOP, "index", "integer"))]
    node = composite(LOOP, "21", {"loopType": loop_type, **inputs}, body, ["21003"],
                     [("ran", ref("21006", "output", "list"))], "loop")
    node["edges"] = [node["edges"][0], c.edge("21003", "21004", "true"), c.edge("21003", "21005", "true_1"),
                     c.edge("21003", "21006", "false"),
                     {"sourceNodeID": "21006", "targetNodeID": LOOP, "targetPortID": "loop-function-inline-input"}]
    return node


async def test_break_ends_an_infinite_loop_and_continue_skips_the_rest_of_the_iteration() -> None:
    events: list[Any] = []
    result = await run(around(breaking_loop("infinite"), ran=ref(LOOP, "ran", "list")), events=events)
    # Iteration 0 ran the Text; 1 continued (nothing collected); 2 broke.
    assert result.output == {"ran": ["ran 0"]}
    inner = [(e.node_id, e.iteration) for e in events if isinstance(e, NodeFinished) and e.parent_node_id == LOOP]
    assert ("21006", 0) in inner and ("21005", 1) in inner and ("21004", 2) in inner
    assert all(node_id != LOOP + "#end" for node_id, _ in inner)  # the body's own entry and exit are not traced


async def test_a_count_loop_runs_its_count() -> None:
    loop = breaking_loop("count", loopCount=c.literal("2", "integer"))
    assert (await run(around(loop, ran=ref(LOOP, "ran", "list")))).output == {"ran": ["ran 0"]}


async def test_an_endless_loop_stops_at_the_iteration_limit() -> None:
    loop = breaking_loop("infinite")
    loop["data"]["inputs"]["loopType"] = "infinite"
    loop["edges"] = [e for e in loop["edges"] if e.get("sourcePortID") != "true"] + [
        c.edge("21003", "21006", "true")]  # never reaches the Break
    loop["blocks"] = [b for b in loop["blocks"] if b["id"] != "21004"]
    with pytest.raises(NodeError, match=r"ran 50 iterations without ending \(KNOTFLOW_MAX_LOOP_ITERATIONS"):
        await run(around(loop, ran=ref(LOOP, "ran", "list")), services=RunServices(limits=RunLimits(50)))


def test_a_loop_without_a_known_type_or_arrays_is_refused() -> None:
    loop = array_loop()
    loop["data"]["inputs"]["loopType"] = "forever"
    with pytest.raises(CanvasError, match="unsupported loop type: forever"):
        compile_canvas(around(loop))
    loop = array_loop()
    loop["data"]["inputs"]["inputParameters"] = []
    with pytest.raises(CanvasError, match="input arrays is empty when loop type is ByArray"):
        compile_canvas(around(loop))


def test_a_body_reading_a_node_that_is_not_upstream_of_its_composite_is_refused() -> None:
    body = text("21001", "{{x}}", x=ref("900001", "output"))
    loop = composite(LOOP, "21", {"loopType": "count", "loopCount": c.literal("1", "integer")}, [body],
                     ["21001"], [("texts", ref("21001", "output", "list"))], "loop")
    with pytest.raises(CanvasError, match="not upstream"):
        compile_canvas(around(loop))


# --- Batch -------------------------------------------------------------------------------------------------
@register
class SlowEcho(Node):
    """Test node: waits `delay` seconds, counts how many run at once, fails for the word "boom"."""

    type_id = "test-slow-echo"
    display_key = "Code"
    running: ClassVar[int] = 0
    most: ClassVar[int] = 0

    async def run(self, ctx: NodeContext) -> NodeResult:
        SlowEcho.running += 1
        SlowEcho.most = max(SlowEcho.most, SlowEcho.running)
        try:
            await asyncio.sleep(float(ctx.inputs.get("delay") or 0))
            if ctx.inputs.get("word") == "boom":
                raise ValueError("boom")
            return NodeResult({"out": f"{ctx.inputs['index']}={ctx.inputs['word']}"})
        finally:
            SlowEcho.running -= 1


def slow_batch(size: int = 0, concurrency: int = 2) -> dict[str, Any]:
    echo = c.node("28001", "test-slow-echo", "Echo", inputs={"inputParameters": [
        c.param("word", ref(BATCH, "words")), c.param("index", ref(BATCH, "index", "integer")),
        c.param("delay", ref(BATCH, "delays", "float"))]}, outputs=[{"name": "out", "type": "string"}])
    inputs = {"batchSize": c.literal(str(size), "integer"), "concurrentSize": c.literal(str(concurrency), "integer"),
              "inputParameters": [c.param("words", ref("100001", "words", "list", schema={"type": "string"})),
                                  c.param("delays", ref("100001", "delays", "list", schema={"type": "float"}))]}
    return composite(BATCH, "28", inputs, [echo], ["28001"], [("outs", ref("28001", "out", "list"))], "batch")


BATCH_START = ({"name": "words", "type": "list", "schema": {"type": "string"}},
               {"name": "delays", "type": "list", "schema": {"type": "float"}})


async def test_a_batch_keeps_the_items_order_and_its_concurrency() -> None:
    SlowEcho.most = 0
    canvas = around(slow_batch(concurrency=2), *BATCH_START, outs=ref(BATCH, "outs", "list"))
    result = await run(canvas, {"words": ["a", "b", "c", "d"], "delays": [0.06, 0.01, 0.03, 0.0]})
    assert result.output == {"outs": ["0=a", "1=b", "2=c", "3=d"]}
    assert SlowEcho.most == 2


async def test_batch_size_caps_the_items() -> None:
    canvas = around(slow_batch(size=2), *BATCH_START, outs=ref(BATCH, "outs", "list"))
    result = await run(canvas, {"words": ["a", "b", "c"], "delays": [0, 0, 0]})
    assert result.output == {"outs": ["0=a", "1=b"]}


async def test_a_failing_item_fails_the_batch() -> None:
    canvas = around(slow_batch(), *BATCH_START, outs=ref(BATCH, "outs", "list"))
    with pytest.raises(NodeError, match="boom"):
        await run(canvas, {"words": ["a", "boom", "c"], "delays": [0.05, 0, 0.05]})


# --- questions inside composites ---------------------------------------------------------------------------
async def answer(plan: Plan, paused: RunInterrupted, reply: str, events: list[Any]) -> RunResult:
    restored = Execution.restore(plan, Checkpoint.loads(paused.checkpoint.dumps()), sink=events.append)
    return await restored.resume(reply)


async def test_questions_inside_two_batch_items_are_asked_one_at_a_time() -> None:
    """Coze Studio's TestInterruptWithinBatch: each item asks an Input form, then a Question; four answers."""
    canvas = conformance_canvas("batch/batch_with_inner_interrupt.json")
    plan = compile_canvas(canvas)
    events: list[Any] = []
    with pytest.raises(RunInterrupted) as asked:
        await Execution(plan, sink=events.append).run(plan.entry.prepare(
            {"input_array": ["a", "b"], "batch_concurrency": 2}))
    seen = [asked.value]
    replies = [json.dumps({"input": "input 1"}), json.dumps({"input": "input 2"}), "answer 1", "answer 2"]
    result: RunResult | None = None
    for reply in replies:
        try:
            result = await answer(plan, seen[-1], reply, events)
        except RunInterrupted as again:
            seen.append(again)
    assert [p.node_type for p in seen] == ["Input", "Input", "Question", "Question"]
    assert [p.node_id for p in seen] == ["165663", "165663", "197297", "197297"]
    assert result is not None and sorted(result.output["output"]) == ["answer 1", "answer 2"]
    # The message shown for each question is the asking node's (as Studio), once per question.
    shown = [e.node_id for e in events if isinstance(e, NodeMessage)]
    assert shown.count("165663") == 2 and shown.count("197297") == 2
    # No item's node ran twice to success.
    done = [(e.node_id, e.iteration) for e in events if isinstance(e, NodeFinished) and e.status == "Success"]
    assert sorted(done) == sorted({*done})


def ask(node_id: str, title: str = "Ask") -> dict[str, Any]:
    """An Input (30) form asking for one text, `x`."""
    return c.node(node_id, "30", title, inputs={"outputSchema": json.dumps([{"type": "string", "name": "x"}])},
                  outputs=[{"name": "x", "type": "string"}])


WORDS = {"name": "words", "type": "list", "schema": {"type": "string"}}


def asking_loop() -> dict[str, Any]:
    """For each of `words`: a text "before <word>", the form Ask, then "<word>=<x>"; the End returns the pairs."""
    body = [text("21001", "before {{w}}", w=ref(LOOP, "words")), ask("21007"),
            text("21008", "{{w}}={{x}}", w=ref(LOOP, "words"), x=ref("21007", "x"))]
    loop = composite(LOOP, "21", {"loopType": "array", "inputParameters": [
        c.param("words", ref("100001", "words", "list", schema={"type": "string"}))]}, body,
        ["21001", "21007", "21008"], [("pairs", ref("21008", "output", "list"))], "loop")
    return around(loop, WORDS, pairs=ref(LOOP, "pairs", "list"))


def asking_batch() -> dict[str, Any]:
    """For each of `words`, two at a time: the form Ask, then "<word>=<x>"; the End returns the pairs."""
    body = [ask("28007"), text("28008", "{{w}}={{x}}", w=ref(BATCH, "words"), x=ref("28007", "x"))]
    batch = composite(BATCH, "28", {"concurrentSize": c.literal(2, "integer"), "inputParameters": [
        c.param("words", ref("100001", "words", "list", schema={"type": "string"}))]}, body,
        ["28007", "28008"], [("pairs", ref("28008", "output", "list"))], "batch")
    return around(batch, WORDS, pairs=ref(BATCH, "pairs", "list"))


async def test_a_question_inside_a_loop_iteration_goes_on_in_that_iteration() -> None:
    plan = compile_canvas(asking_loop())
    events: list[Any] = []
    with pytest.raises(RunInterrupted) as first:
        await Execution(plan, sink=events.append).run({"words": ["a", "b"]})
    assert (first.value.node_id, first.value.node_title) == ("21007", "Ask")
    with pytest.raises(RunInterrupted) as second:
        await answer(plan, first.value, json.dumps({"x": "1"}), events)
    result = await answer(plan, second.value, json.dumps({"x": "2"}), events)
    assert result.output == {"pairs": ["a=1", "b=2"]}
    befores = [e.iteration for e in events if isinstance(e, NodeFinished) and e.node_id == "21001"]
    assert befores == [0, 1]  # the text before the question ran once per iteration, never again on resume


# --- Sub-workflow ------------------------------------------------------------------------------------------
class Workflows:
    """Child workflows by id, compiled from canvases."""

    def __init__(self, **canvases: dict[str, Any]) -> None:
        self.plans = {workflow_id.removeprefix("w"): compile_canvas(canvas)
                      for workflow_id, canvas in canvases.items()}
        self.loads: list[tuple[str, str | None]] = []

    async def load(self, workflow_id: str, version: str | None) -> ChildPlan:
        self.loads.append((workflow_id, version))
        if workflow_id not in self.plans:
            raise NodeError(f"sub-workflow {workflow_id} does not exist in this workflow's space")
        return ChildPlan(self.plans[workflow_id], version or "v1")


def sub_node(node_id: str, workflow_id: str, version: str = "", **inputs: dict[str, Any]) -> dict[str, Any]:
    return c.node(node_id, "9", "Child", inputs={
        "workflowId": workflow_id, "workflowVersion": version,
        "inputParameters": [c.param(name, source) for name, source in inputs.items()]},
        outputs=[{"name": "output", "type": "string"}])


def child_canvas() -> dict[str, Any]:
    """Start(name) → Output "child says {{name}}" → End returning {output: "hi <name>"}."""
    return c.canvas([c.start(("name", "string")), c.output("135000", "child says {{name}}",
                                                           name=c.ref("100001", "name")),
                     text("150000", "hi {{name}}", name=c.ref("100001", "name")),
                     c.end_return(output=c.ref("150000", "output"))],
                    [c.edge("100001", "135000"), c.edge("135000", "150000"), c.edge("150000", "900001")])


async def test_a_sub_workflow_runs_with_the_nodes_inputs_and_its_end_is_the_nodes_output() -> None:
    workflows = Workflows(w777=child_canvas())
    canvas = around(sub_node(SUB, "777", name=c.ref("100001", "who")), ("who", "string"),
                    out=ref(SUB, "output"))
    events: list[Any] = []
    result = await run(canvas, {"who": "Ann"}, RunServices(workflows=workflows), events)
    assert result.output == {"out": "hi Ann"}
    assert workflows.loads == [("777", None)]  # no version named: the latest
    # The child's Output node shows its message; the child's End does not (the parent shows what it wants).
    messages = [(e.node_id, e.content) for e in events if isinstance(e, NodeMessage)]
    assert messages == [("135000", "child says Ann"), ("900001", '{"out":"hi Ann"}')]
    inner = {e.node_id for e in events if isinstance(e, NodeFinished) and e.parent_node_id == SUB}
    assert inner == {"100001", "135000", "150000", "900001"}


@register
class Spender(Node):
    """Test node: uses 3 input and 5 output tokens, as a model call would."""

    type_id = "test-spender"
    display_key = "LLM"

    async def run(self, ctx: NodeContext) -> NodeResult:
        ctx.add_usage(3, 5)
        return NodeResult({"output": "spent"})


async def test_a_childs_token_usage_counts_in_the_runs_once_per_run_of_the_child() -> None:
    spending = c.canvas([c.start(), c.node("160000", "test-spender", "Spend", outputs=[
        {"name": "output", "type": "string"}]), c.end_return(output=c.ref("160000", "output"))],
        [c.edge("100001", "160000"), c.edge("160000", "900001")])
    body = [sub_node("21001", "8")]
    loop = composite(LOOP, "21", {"loopType": "count", "loopCount": c.literal(2, "integer")}, body, ["21001"],
                     [("outs", ref("21001", "output", "list"))], "loop")
    canvas = around(loop, outs=ref(LOOP, "outs", "list"))
    result = await run(canvas, services=RunServices(workflows=Workflows(w8=spending)))
    assert result.output == {"outs": ["spent", "spent"]}
    assert (result.usage.input_count, result.usage.output_count) == (6, 10)


def deep_asking() -> dict[str, Any]:
    """Start(name) → the form Deep → End returning {output: "<name>: <x>"}."""
    return c.canvas([c.start(("name", "string")), ask("300", "Deep"),
                     text("301", "{{name}}: {{x}}", name=c.ref("100001", "name"), x=ref("300", "x")),
                     c.end_return(output=c.ref("301", "output"))],
                    [c.edge("100001", "300"), c.edge("300", "301"), c.edge("301", "900001")])


def passing_on(child_id: str, output: str = "output") -> dict[str, Any]:
    """Start(name) → Sub-workflow `child_id` with that name → End returning the child's output."""
    return around(sub_node(SUB, child_id, name=c.ref("100001", "name")), ("name", "string"),
                  **{output: ref(SUB, "output")})


async def test_a_question_two_children_down_pauses_the_run_and_the_resume_goes_on_there() -> None:
    workflows = Workflows(w2=passing_on("3"), w3=deep_asking())
    canvas = passing_on("2", output="out")
    plan = compile_canvas(canvas)
    services = RunServices(workflows=workflows)
    events: list[Any] = []
    with pytest.raises(RunInterrupted) as paused:
        await Execution(plan, sink=events.append, services=services).run({"name": "Ann"})
    assert (paused.value.node_id, paused.value.node_title) == ("300", "Deep")
    restored = Execution.restore(plan, Checkpoint.loads(paused.value.checkpoint.dumps()), sink=events.append,
                                 services=services)
    assert (await restored.resume(json.dumps({"x": "deep answer"}))).output == {"out": "Ann: deep answer"}


async def test_sub_workflows_nested_past_the_depth_limit_fail() -> None:
    recursive = around(sub_node(SUB, "5"), out=ref(SUB, "output"))
    workflows = Workflows(w5=recursive)
    with pytest.raises(NodeError, match=r"nest deeper than 3 levels \(KNOTFLOW_MAX_WORKFLOW_DEPTH"):
        await run(recursive, services=RunServices(workflows=workflows, limits=RunLimits(max_workflow_depth=3)))


async def test_debugging_one_node_inside_a_loop_runs_it_with_the_inputs_given() -> None:
    plan = compile_canvas(around(array_loop(), WORDS, texts=ref(LOOP, "texts", "list")))
    events: list[Any] = []
    outputs = await Execution(plan, sink=events.append).run_node("21001", {"i": 4, "w": "sun", "acc": "x"})
    assert outputs == {"output": "4:sun:x"}
    assert [(e.node_id, e.parent_node_id) for e in events if isinstance(e, NodeFinished)] == [("21001", LOOP)]
    with pytest.raises(NodeError, match="the workflow has no node 404"):
        await Execution(plan).run_node("404", {})


@register
class Streamer(Node):
    """Test node: streams its `output` in three pieces, as an LLM streams tokens."""

    type_id = "test-streamer"
    display_key = "LLM"
    stream_fields = frozenset({"output"})

    async def run(self, ctx: NodeContext) -> NodeResult:
        stream = ctx.open_stream("output")
        for piece in ("one ", "two ", "three"):
            stream.write(piece)
            await asyncio.sleep(0.01)
        stream.close()
        return NodeResult({"output": str(stream)})


def streaming_child(asks: bool = False) -> dict[str, Any]:
    """Start → [the form Deep →] a streaming node → End answering "<{{s}}>" as it streams."""
    nodes = [c.start(), c.node("170000", "test-streamer", "Stream", outputs=[{"name": "output", "type": "string"}]),
             c.end_answer("<{{s}}>", streaming=True, s=c.ref("170000", "output"))]
    chain = ["100001", "170000", "900001"]
    if asks:
        nodes.insert(1, ask("300", "Deep"))
        chain.insert(1, "300")
    return c.canvas(nodes, [c.edge(a, b) for a, b in itertools.pairwise(chain)])


def showing_child_output(child_id: str) -> dict[str, Any]:
    """Start → Sub-workflow `child_id` → End answering "[{{out}}]" as it streams."""
    return c.canvas([c.start(), sub_node(SUB, child_id), c.end_answer("[{{out}}]", streaming=True,
                                                                       out=ref(SUB, "output"))],
                    [c.edge("100001", SUB), c.edge(SUB, "900001")])


async def test_a_child_end_that_answers_streams_once_where_the_parent_shows_it() -> None:
    """coze-studio#2281: Studio shows the child's streamed answer, then again where the parent shows it."""
    events: list[Any] = []
    result = await run(showing_child_output("6"), services=RunServices(workflows=Workflows(w6=streaming_child())),
                       events=events)
    assert result.answer == "[<one two three>]"
    messages = [(e.node_id, e.content) for e in events if isinstance(e, NodeMessage)]
    assert all(node_id == "900001" for node_id, _ in messages)  # only the parent's End shows it
    assert "".join(content for _, content in messages) == "[<one two three>]"
    assert len(messages) >= 4  # live, piece by piece: not one message at the end


async def test_a_child_that_asks_before_it_answers_pauses_the_parents_streaming_end() -> None:
    workflows = Workflows(w6=streaming_child(asks=True))
    plan = compile_canvas(showing_child_output("6"))
    services = RunServices(workflows=workflows)
    events: list[Any] = []
    with pytest.raises(RunInterrupted) as paused:
        await Execution(plan, sink=events.append, services=services).run({})
    assert paused.value.node_title == "Deep"
    restored = Execution.restore(plan, Checkpoint.loads(paused.value.checkpoint.dumps()), sink=events.append,
                                 services=services)
    result = await restored.resume(json.dumps({"x": "ok"}))
    assert result.answer == "[<one two three>]"
    shown = "".join(e.content for e in events if isinstance(e, NodeMessage) and e.node_id == "900001")
    assert shown == "[<one two three>]"  # the part shown before the pause is not shown again


async def test_a_child_end_returning_variables_shows_the_same_whether_the_parent_streams_or_not() -> None:
    returning = c.canvas([c.start(), c.end_return(output=ref("100001", "data", "object"))],
                         [c.edge("100001", "900001")])
    returning["nodes"][0]["data"]["outputs"] = [{"name": "data", "type": "object", "schema": [
        {"name": "b", "type": "integer"}, {"name": "a", "type": "list", "schema": {"type": "integer"}}]}]
    answers = []
    for streaming in (True, False):
        canvas = showing_child_output("6")
        canvas["nodes"][2]["data"]["inputs"]["streamingOutput"] = streaming
        canvas["nodes"][1]["data"]["inputs"]["inputParameters"] = [
            c.param("data", c.literal(json.dumps({"b": 1, "a": [1, 2]}), "object"))]
        answers.append((await run(canvas, services=RunServices(workflows=Workflows(w6=returning)))).answer)
    assert answers[0] == answers[1] and json.loads(answers[0][1:-1]) == {"a": [1, 2], "b": 1}, answers
