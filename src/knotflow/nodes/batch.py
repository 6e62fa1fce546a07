"""Batch (28): run the body once per item of its arrays, several items at a time.

As Coze Studio's batch node (`nodes/batch/batch.go`):

- The items are the shortest of the list-typed `inputParameters`, at most `batchSize` of them (0: 100); up to
  `concurrentSize` run at once (0: 10). The body's nodes read the current element of each array and `index`
  through references to the batch node.
- Each output collects a field of a node inside the body, one entry per item in the items' order whatever order
  they finish in, null where the node did not run.
- An item's failure (one its nodes' own error policies did not handle) cancels the items still running and fails
  the node, which then goes through the batch node's own error policy.
- Items that ask the user pause the whole run once every other item has finished or asked: they are asked one
  at a time, in the order they asked, each with its own event id; answering one goes on inside that item only,
  the others keep waiting.
"""

from __future__ import annotations

import asyncio
from typing import Any

from knotflow.contract import INDEX, BodyInterrupted, Node, NodeContext, NodeInterrupt, NodeResult
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.convert import coerce_lenient
from knotflow.dsl.types import INTEGER, TypeInfo
from knotflow.dsl.values import ValueSource, parse_block_input
from knotflow.errors import CanvasError
from knotflow.nodes._composite import (
    Collect,
    arrays,
    element,
    length,
    output_refs,
    request_json,
    request_of,
)

DEFAULT_BATCH_SIZE, DEFAULT_CONCURRENCY = 100, 10


class BatchNode(Node):
    type_id = "28"
    display_key = "Batch"
    composite = True

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        label = f"batch node '{self.title}' ({self.id})"
        self.arrays = arrays(self.params)
        if not self.arrays:
            raise CanvasError(f"{label}: need to have at least one incoming array for batch")
        self.collect = [Collect(name, ref.block_id, ref.path) for name, ref in output_refs(definition, label)]
        if not self.collect:
            raise CanvasError(f"{label}: need to have at least one output variable for batch")
        if not definition.blocks:
            raise CanvasError(f"{label}: need to have inner workflow for batch")
        self.size_source, _ = parse_block_input(definition.inputs.get("batchSize"))
        self.concurrency_source, _ = parse_block_input(definition.inputs.get("concurrentSize"))

    def sources(self) -> list[ValueSource]:
        return [self.size_source, self.concurrency_source]

    def _setting(self, ctx: NodeContext, source: ValueSource, default: int) -> int:
        value = coerce_lenient(ctx.resolve(source), TypeInfo(type=INTEGER))
        return int(value) if value and int(value) > 0 else default

    async def run(self, ctx: NodeContext) -> NodeResult:
        state = ctx.state
        answer = ctx.resume_data
        if answer is None or not state.get("waiting"):
            total = min(min(length(ctx.inputs.get(a.name)) for a in self.arrays),
                        self._setting(ctx, self.size_source, DEFAULT_BATCH_SIZE))
            state.clear()
            state.update(total=total, done=[], waiting={}, collected={c.name: [None] * total for c in self.collect})
        total = int(state["total"])
        concurrency = self._setting(ctx, self.concurrency_source, DEFAULT_CONCURRENCY)
        waiting: dict[str, Any] = state["waiting"]  # item → the request it asks, in the order they asked
        resumed: str | None = None
        todo: list[int] = []
        if answer is not None and waiting:
            resumed = next(iter(waiting))
            waiting.pop(resumed)
        started = {*state["done"], *(int(key) for key in waiting)}
        todo = [index for index in range(total) if index not in started and str(index) != resumed]
        # The item answered first, then the others in order; `concurrency` workers share the one iterator, so
        # that each item is taken once and no more than `concurrency` run at a time.
        first: list[tuple[int, str | None]] = [(int(resumed), answer)] if resumed is not None else []
        queue = iter([*first, *((index, None) for index in todo)])

        async def item(index: int, answer: str | None = None) -> None:
            key = str(index)
            try:
                if answer is not None:
                    outcome = await ctx.resume_body(key, answer)
                else:
                    values = {INDEX: index, **{a.name: element(ctx.inputs.get(a.name), index) for a in self.arrays}}
                    outcome = await ctx.run_body(key, values)
            except BodyInterrupted as asked:
                waiting[key] = request_json(asked.request)
                return
            for collect in self.collect:
                state["collected"][collect.name][index] = outcome.output(collect.node_id, collect.path)[1]
            state["done"].append(index)

        async def worker() -> None:
            for index, answer in queue:
                await item(index, answer)

        try:
            async with asyncio.TaskGroup() as group:  # the first failure cancels the items still running
                for _ in range(min(concurrency, len(todo) + (resumed is not None))):
                    group.create_task(worker())
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        if waiting:
            # Questions are asked in the order they were put: an item answered that asks again waits behind the
            # items already waiting, as Coze Studio's TestInterruptWithinBatch expects (Input, Input, Question...).
            raise NodeInterrupt(request_of(waiting[next(iter(waiting))]))
        outputs = dict(state["collected"])
        state.clear()
        return NodeResult(outputs)
