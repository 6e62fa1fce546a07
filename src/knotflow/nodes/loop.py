"""Loop (21): run the body once per element of its arrays, a number of times, or until a Break.

As Coze Studio's loop node (`nodes/loop/loop.go`):

- `loopType` `array` iterates over the shortest of the list-typed `inputParameters` (an empty or missing one:
  none); `count` runs `loopCount` times; `infinite` runs until a Break node runs (knotflow stops it, failing the
  node, after `KNOTFLOW_MAX_LOOP_ITERATIONS`, where Studio has no bound).
- The body's nodes read the current element of each array and `index` through references to the loop node, and
  the loop variables (`variableParameters`, initialised once) likewise; Set variable (20) changes a variable for
  the rest of the iteration and the next ones. Break (19) ends the loop after its iteration (whose outputs still
  count); Continue (29) ends its branch.
- An output referencing a node inside the body collects that node's field once per iteration the node ran (a
  skipped node adds nothing, so the list may be shorter than the iterations, as in Studio); an output referencing
  one of the loop's variables (`{blockID: <loop>, name: <variable>}`) is the variable's final value. Studio takes
  any single-segment reference named like a variable for the variable, whatever node it names; knotflow requires
  it to name the loop.
- A question inside an iteration pauses the whole run; the resume goes on inside that same iteration, and the
  iterations after it follow.
"""

from __future__ import annotations

from typing import Any

from knotflow.contract import INDEX, BodyInterrupted, BodyOutcome, Node, NodeContext, NodeInterrupt, NodeResult
from knotflow.dsl.canvas import NodeDef, parse_params
from knotflow.dsl.convert import coerce_lenient
from knotflow.dsl.types import INTEGER, TypeInfo
from knotflow.dsl.values import ValueSource, parse_block_input
from knotflow.errors import CanvasError, NodeError
from knotflow.nodes._composite import (
    Collect,
    arrays,
    element,
    length,
    output_refs,
    request_json,
    request_of,
)

ARRAY, COUNT, INFINITE = "array", "count", "infinite"
CODE_LOOP_LIMIT = 720701013


class LoopNode(Node):
    type_id = "21"
    display_key = "Loop"
    composite = True

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        label = f"loop node '{self.title}' ({self.id})"
        self.loop_type = str(definition.inputs.get("loopType") or "")
        if self.loop_type not in (ARRAY, COUNT, INFINITE):
            raise CanvasError(f"{label}: unsupported loop type: {self.loop_type or '(none)'}")
        self.variables = parse_params(definition.inputs.get("variableParameters"))
        self.names = frozenset(variable.name for variable in self.variables)
        self.arrays = arrays(self.params, self.names)
        if self.loop_type == ARRAY and not self.arrays:
            raise CanvasError(f"{label}: input arrays is empty when loop type is ByArray")
        if not definition.blocks:
            raise CanvasError(f"{label}: inner workflow is required for Loop Node")
        self.count_source, _ = parse_block_input(definition.inputs.get("loopCount"))
        self.collect: list[Collect] = []
        self.finals: list[tuple[str, str]] = []  # (output name, loop variable)
        for name, ref in output_refs(definition, label):
            if ref.block_id == self.id:
                if len(ref.path) != 1 or ref.path[0] not in self.names:
                    raise CanvasError(f"{label}: output '{name}' refers to the loop but to none of its variables "
                                      "(a variable is read whole: a path of one name)")
                self.finals.append((name, ref.path[0]))
            else:
                self.collect.append(Collect(name, ref.block_id, ref.path))

    def sources(self) -> list[ValueSource]:
        return [self.count_source, *(variable.source for variable in self.variables)]

    def _iterations(self, ctx: NodeContext) -> int | None:
        """How many iterations the loop runs; None: until a Break."""
        if self.loop_type == ARRAY:
            return min(length(ctx.inputs.get(array.name)) for array in self.arrays)
        if self.loop_type == COUNT:
            count = coerce_lenient(ctx.resolve(self.count_source), TypeInfo(type=INTEGER))
            return max(int(count or 0), 0)
        return None

    async def run(self, ctx: NodeContext) -> NodeResult:
        state = ctx.state
        answer = ctx.resume_data
        if answer is None or "asked" not in state:
            state.clear()
            state.update(next=0, collected={c.name: [] for c in self.collect},
                         variables={v.name: coerce_lenient(ctx.resolve(v.source), v.type) for v in self.variables})
        limit = ctx.services.limits.max_loop_iterations
        total = self._iterations(ctx)
        broke = False
        if answer is not None and "asked" in state:
            broke = self._finish_iteration(state, await self._body(ctx, state, answer=answer))
        while not broke and (total is None or state["next"] < total):
            index = state["next"]
            if index >= limit:
                raise NodeError(f"loop node '{self.title}' ({self.id}) ran {limit} iterations without ending "
                                "(KNOTFLOW_MAX_LOOP_ITERATIONS)", internal_code=CODE_LOOP_LIMIT, node_id=self.id)
            values = {INDEX: index, **{a.name: element(ctx.inputs.get(a.name), index) for a in self.arrays},
                      **state["variables"]}
            broke = self._finish_iteration(state, await self._body(ctx, state, values=values))
        outputs: dict[str, Any] = dict(state["collected"])
        outputs.update({name: state["variables"].get(variable) for name, variable in self.finals})
        state.clear()
        return NodeResult(outputs)

    async def _body(self, ctx: NodeContext, state: dict[str, Any], *, values: dict[str, Any] | None = None,
                    answer: str | None = None) -> BodyOutcome:
        key = str(state["next"])
        try:
            if answer is not None:
                return await ctx.resume_body(key, answer, self.names)
            assert values is not None
            return await ctx.run_body(key, values, self.names)
        except BodyInterrupted as asked:
            state["asked"] = request_json(asked.request)  # the iteration waits; the run asks for it
            raise NodeInterrupt(request_of(state["asked"])) from None

    def _finish_iteration(self, state: dict[str, Any], outcome: BodyOutcome) -> bool:
        """Collect what the iteration produced; whether it broke the loop."""
        state.pop("asked", None)
        for collect in self.collect:
            ran, value = outcome.output(collect.node_id, collect.path)
            if ran:
                state["collected"][collect.name].append(value)
        state["variables"] = {name: outcome.values.get(name) for name in self.names}
        state["next"] += 1
        return outcome.broke
