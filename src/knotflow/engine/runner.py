"""Run a Plan on asyncio: event-driven, branches concurrently, skipped branches pruned.

Each node waits until every incoming edge is decided. An edge is live when its source ran and (for a branching
source) chose that edge's port; otherwise it is dead. A node with at least one live edge runs; a node whose edges
are all dead is skipped, and its own out-edges die with it. A single ready node is awaited inline (no task per
node on a chain); several ready nodes run as concurrent tasks.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from knotflow.contract import (
    BodyInterrupted,
    BodyOutcome,
    BodyScope,
    ChildPlan,
    InterruptRequest,
    LateValue,
    Node,
    NodeContext,
    NodeInterrupt,
    NodeResult,
    RunServices,
    Suspended,
    TextStream,
    Usage,
    is_missing,
    lookup,
    render_value,
)
from knotflow.dsl import jsonutil
from knotflow.dsl.canvas import Param
from knotflow.dsl.convert import coerce_lenient
from knotflow.dsl.values import BLOCK_OUTPUT, Literal, ObjectValue, Ref, ValueSource, refs_in
from knotflow.engine.checkpoint import Checkpoint, CheckpointError
from knotflow.engine.compiler import Plan, PlanNode
from knotflow.engine.events import Event, NodeFinished, NodeMessage, RunInterrupted, RunResult
from knotflow.engine.policy import ERROR_PORT, as_node_error
from knotflow.errors import KnotflowError, NodeError, RunTooLarge, size_text

Sink = Callable[[Event], None]


def _no_sink(event: Event) -> None:
    return None


def _json_default(value: Any) -> Any:
    return str(value)


@dataclass(slots=True)
class _NodeContext(NodeContext):
    execution: Execution
    index: int  # the node's place in the execution's plan
    node_id: str
    node_title: str
    display_key: str
    inputs: dict[str, Any]
    attempt: int = 0
    shown: int = 0  # characters this node has shown so far, kept when it is suspended
    skip: int = 0  # characters shown before a suspension, not shown again
    spent: Usage | None = None  # tokens of this attempt's model calls; None until the node calls a model

    def resolve(self, source: ValueSource) -> Any:
        return self.execution.resolve(source)

    def is_skipped(self, source: ValueSource) -> bool:
        return self.execution.is_skipped(source)

    def emit_message(self, content: str, is_finish: bool, usage: Usage | None = None) -> None:
        self.shown += len(content)
        if self.skip:
            dropped = min(self.skip, len(content))
            content, self.skip = content[dropped:], self.skip - dropped
            if not content and not is_finish:
                return
        self.execution.account(len(content.encode()), f"the message of node '{self.node_title}' ({self.node_id})",
                               self.node_id)
        self.execution.sink(NodeMessage(self.node_id, self.node_title, self.display_key, content, is_finish, usage))

    def open_stream(self, field: str) -> TextStream:
        return self.execution.open_stream(self.node_id, field)

    @property
    def resume_data(self) -> str | None:
        return self.execution.resume_data.get(self.node_id)

    @property
    def state(self) -> dict[str, Any]:
        return self.execution.node_state.setdefault(self.node_id, {})

    @property
    def usage(self) -> Usage:
        return self.execution.usage

    def add_usage(self, input_count: int, output_count: int) -> None:
        if self.spent is None:
            self.spent = Usage()
        self.spent.add(input_count, output_count)
        self.execution.usage.add(input_count, output_count)  # a body's or child's usage is its run's: counted once

    @property
    def services(self) -> RunServices:
        return self.execution.services

    @property
    def scope(self) -> BodyScope | None:
        return self.execution.scope

    async def run_body(self, key: str, values: dict[str, Any],
                       variables: frozenset[str] = frozenset()) -> BodyOutcome:
        return await self.execution.run_body(self.index, key, values, variables)

    async def resume_body(self, key: str, answer: str, variables: frozenset[str] = frozenset()) -> BodyOutcome:
        return await self.execution.resume_body(self.index, key, answer, variables)

    async def run_workflow(self, key: str, workflow_id: str, version: str | None,
                           inputs: dict[str, Any]) -> dict[str, Any]:
        return await self.execution.run_workflow(self.index, key, workflow_id, version, inputs)

    async def resume_workflow(self, key: str, answer: str, workflow_id: str, version: str | None) -> dict[str, Any]:
        return await self.execution.resume_workflow(self.index, key, answer, workflow_id, version)


class Execution:
    """One run of a Plan. Not reusable: create one per run."""

    def __init__(
        self,
        plan: Plan,
        *,
        sink: Sink = _no_sink,
        services: RunServices | None = None,
        max_bytes: int = 20 * 1024 * 1024,
        backpressure: Callable[[], Awaitable[None]] | None = None,
        within: _Within | None = None,
    ) -> None:
        self.plan = plan
        self.sink = sink
        # Awaited before each node starts: the consumer of the run's events may make the run wait for it.
        self.backpressure = backpressure
        self.services = services or RunServices()
        # A body or child workflow runs inside its run: it reads the run's data budget and usage, and a body reads
        # the nodes around its composite.
        # None for the run itself: a reference to itself would make every run a reference cycle, its data freed
        # only by a full garbage collection.
        self._root: Execution | None = within.root if within is not None else None
        self.parent = within.parent if within is not None else None
        self.scope = within.scope if within is not None else None
        self.depth = within.depth if within is not None else 0
        self.children: dict[str, Checkpoint] = {}  # checkpoints of bodies and child workflows that wait
        self.usage: Usage = within.root.usage if within is not None else Usage()
        self.max_bytes = max_bytes
        self.bytes_used = 0
        self.outputs: list[dict[str, Any] | None] = [None] * len(plan.nodes)
        self.skipped: list[bool] = [False] * len(plan.nodes)
        self._pending = [n.in_count for n in plan.nodes]
        self._live = [False] * len(plan.nodes)
        self._ready: deque[int] = deque()
        self._running: set[asyncio.Task[None]] = set()
        self._started = [False] * len(plan.nodes)
        self._done = [False] * len(plan.nodes)  # finished or skipped: its outputs are final
        self._changed: dict[int, asyncio.Future[None]] = {}  # wakes consumers waiting on a node
        self._deferred: dict[int, str | None] = {}  # consumers that finished before all their edges were decided
        self._streams: dict[str, dict[str, TextStream]] = {}
        self._interrupts: list[tuple[int, InterruptRequest]] = []
        self._resumed: int | None = None
        self.resume_data: dict[str, str] = {}
        self.node_state: dict[str, dict[str, Any]] = {}
        self.result: RunResult | None = None

    # --- variable pool -------------------------------------------------------------------------------
    def resolve(self, source: ValueSource) -> Any:
        if isinstance(source, Literal):
            return source.value
        if isinstance(source, Ref):
            if source.source != BLOCK_OUTPUT:
                value = self.services.global_variables.get((source.source, source.path[0] if source.path else ""))
                found = lookup(value, source.path[1:])
                return None if is_missing(found) else found
            index = self.plan.by_id.get(source.block_id)
            if index is None:
                return self.parent.resolve(source) if self.parent is not None else None
            outputs = self.outputs[index]
            if outputs is None:
                return None
            found = lookup(outputs, source.path)
            return None if is_missing(found) else found
        if isinstance(source, ObjectValue):
            return {name: self.resolve(sub) for name, sub in source.fields.items()}
        return None

    def is_skipped(self, source: ValueSource) -> bool:
        if isinstance(source, Ref) and source.source == BLOCK_OUTPUT:
            index = self.plan.by_id.get(source.block_id)
            return index is None or self.skipped[index]
        return False

    def account(self, size: int, what: str, node_id: str = "") -> None:
        """Count `size` bytes of the run's data (`what` is, for the message); raise past the run's limit."""
        root = self._root or self
        root.bytes_used += size
        if root.bytes_used > root.max_bytes:
            raise RunTooLarge(root.max_bytes, root.bytes_used, f"{what}, {size_text(size)},", node_id)

    def open_stream(self, node_id: str, field: str) -> TextStream:
        streams = self._streams.setdefault(node_id, {})
        stream = streams.get(field)
        if stream is None:
            stream = streams[field] = TextStream()
        return stream

    # --- scheduling ----------------------------------------------------------------------------------
    async def run(self, parameters: dict[str, Any], warnings: list[str] | None = None) -> RunResult:
        """Run from the Start node (`warnings`: what the caller's parameters had wrong, shown on its trace entry).
        Raises RunInterrupted when a node asks the user something."""
        self._parameters = parameters
        self._parameter_warnings = warnings or []
        self._ready.append(self.plan.start)
        return await self._loop()

    async def run_node(self, node_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """Coze's single-node debug: run one node with `inputs` (by its input names, converted to their declared
        types) under its error policy, nothing before or after it; its outputs. Raises as a run would."""
        index = self.plan.by_id.get(node_id)
        if index is None:
            for composite in self.plan.nodes:  # a node inside a composite's body runs in a body run of its own
                if composite.body is not None and node_id in composite.body.by_id:
                    scope = BodyScope(composite.node.id, {}, frozenset())
                    within, sink = self._within(composite.index, "0", scope)
                    inner = Execution(composite.body, sink=sink, services=self.services, within=within)
                    return await inner.run_node(node_id, inputs)
            raise NodeError(f"the workflow has no node {node_id}", internal_code=720701011)
        plan_node = self.plan.nodes[index]
        warnings: list[str] = []
        values = {param.name: coerce_lenient(inputs[param.name], param.type, warnings)
                  if inputs.get(param.name) is not None else None for param in plan_node.node.params}
        try:
            await self._execute(index, values, warnings)
        finally:
            # Consumers started alongside a streaming node are not part of the debugged node.
            for task in self._running:
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)
        return self.outputs[index] or {}

    async def resume(self, answer: str) -> RunResult:
        """Continue a restored run: the node that interrupted runs again with `answer` as its resume data."""
        if not self._ready:
            raise NodeError("the checkpoint has no node waiting for an answer", internal_code=720701011)
        self._resumed = self._ready[0]
        self.resume_data[self.plan.nodes[self._resumed].node.id] = answer
        return await self._loop()

    def checkpoint(self) -> Checkpoint:
        """The run's state between nodes; the interrupted nodes come first in `ready`."""
        interrupted = [index for index, _ in self._interrupts]
        return Checkpoint(
            outputs=list(self.outputs),
            skipped=list(self.skipped),
            pending=list(self._pending),
            live=list(self._live),
            started=[s and i not in interrupted for i, s in enumerate(self._started)],
            ready=interrupted + [i for i in self._ready if i not in interrupted],
            input_tokens=self.usage.input_count,
            output_tokens=self.usage.output_count,
            bytes_used=self.bytes_used,
            resume_data=dict(self.resume_data),
            node_state=self.node_state,
            deferred=dict(self._deferred),
            children=dict(self.children),
        )

    @classmethod
    def restore(
        cls,
        plan: Plan,
        checkpoint: Checkpoint,
        *,
        sink: Sink = _no_sink,
        services: RunServices | None = None,
        max_bytes: int = 20 * 1024 * 1024,
        backpressure: Callable[[], Awaitable[None]] | None = None,
        within: _Within | None = None,
    ) -> Execution:
        if not checkpoint.fits(len(plan.nodes)):
            raise CheckpointError("the checkpoint does not belong to this workflow version")
        execution = cls(plan, sink=sink, services=services, max_bytes=max_bytes, backpressure=backpressure,
                        within=within)
        execution.outputs = list(checkpoint.outputs)
        execution.skipped = list(checkpoint.skipped)
        execution._pending = list(checkpoint.pending)
        execution._live = list(checkpoint.live)
        execution._started = list(checkpoint.started)
        execution._ready = deque(checkpoint.ready)
        if within is None:  # a body's or child's usage and data are its run's
            execution.usage = Usage(checkpoint.input_tokens, checkpoint.output_tokens)
            execution.bytes_used = checkpoint.bytes_used
        execution.children = dict(checkpoint.children)
        execution.resume_data = dict(checkpoint.resume_data)
        execution.node_state = dict(checkpoint.node_state)
        execution._deferred = dict(checkpoint.deferred)
        execution._done = [output is not None or skipped
                           for output, skipped in zip(execution.outputs, execution.skipped, strict=True)]
        return execution

    # --- composite nodes: bodies and child workflows ---------------------------------------------------------
    def _within(self, index: int, key: str, scope: BodyScope | None,
                workflow: Plan | None = None) -> tuple[_Within, Sink]:
        """How an inner run of node `index` — an iteration of its body, or a child `workflow` — sits in this one,
        and its sink: its node executions recorded under the node (with the iteration's index; a body's entry and
        exit are not traced), a child workflow's End not shown: its output is the node's, and an End that answers
        streams its answer into the node's `output` (the run shows it where it uses it, once — Coze Studio shows
        it twice)."""
        child = workflow is not None
        answer_end = workflow is not None and workflow.nodes[workflow.end].node.answers
        node_id = self.plan.nodes[index].node.id
        iteration = int(key) if key.isdigit() and not child else None  # a child workflow runs no iteration
        sink = self.sink
        answer = self.open_stream(node_id, "output") if child else None

        def inner(event: Event) -> None:
            if isinstance(event, NodeFinished):
                if not event.parent_node_id:
                    event.parent_node_id, event.iteration = node_id, iteration
            elif answer is not None and event.node_type == "End":
                if answer_end and not answer.closed:
                    answer.write(event.content)
                return
            sink(event)

        within = _Within(self._root or self, None if child else self, scope, self.depth + 1 if child else self.depth)
        return within, inner

    def _body(self, index: int) -> Plan:
        body = self.plan.nodes[index].body
        if body is None:
            node = self.plan.nodes[index].node
            raise NodeError(f"node '{node.title}' ({node.id}) has no body to run", node_id=node.id)
        return body

    async def run_body(self, index: int, key: str, values: dict[str, Any], variables: frozenset[str]) -> BodyOutcome:
        node_id = self.plan.nodes[index].node.id
        scope = BodyScope(node_id, values, variables)
        within, sink = self._within(index, key, scope)
        inner = Execution(self._body(index), sink=sink, services=self.services, backpressure=self.backpressure,
                          within=within)
        await self._inner(inner, f"{node_id}/{key}", inner.run(values))
        return _BodyRun(inner, scope)

    async def resume_body(self, index: int, key: str, answer: str, variables: frozenset[str]) -> BodyOutcome:
        node_id = self.plan.nodes[index].node.id
        body = self._body(index)
        checkpoint = self._waiting(node_id, key)
        scope = BodyScope(node_id, checkpoint.outputs[body.start] or {}, variables)
        within, sink = self._within(index, key, scope)
        inner = Execution.restore(body, checkpoint, sink=sink, services=self.services,
                                  backpressure=self.backpressure, within=within)
        scope.values = inner.outputs[body.start] or {}
        await self._inner(inner, f"{node_id}/{key}", inner.resume(answer))
        return _BodyRun(inner, scope)

    async def run_workflow(self, index: int, key: str, workflow_id: str, version: str | None,
                           inputs: dict[str, Any]) -> dict[str, Any]:
        loaded = await self._workflow(index, workflow_id, version)
        plan: Plan = loaded.plan
        within, sink = self._within(index, key, None, plan)
        child = Execution(plan, sink=sink, services=self.services, backpressure=self.backpressure, within=within)
        try:
            parameters = plan.entry.prepare(inputs)
        except KnotflowError as exc:
            raise NodeError(f"workflow {workflow_id}: {exc.message}", node_id=self.plan.nodes[index].node.id) from exc
        result = await self._inner(child, f"{self.plan.nodes[index].node.id}/{key}", child.run(parameters),
                                   (workflow_id, loaded.version))
        return _child_output(result)

    async def resume_workflow(self, index: int, key: str, answer: str, workflow_id: str,
                              version: str | None) -> dict[str, Any]:
        node_id = self.plan.nodes[index].node.id
        checkpoint = self._waiting(node_id, key)
        # The child goes on in the version it paused in, even if a newer one was published since.
        ran = checkpoint.workflow[1] if checkpoint.workflow and checkpoint.workflow[0] == workflow_id else version
        loaded = await self._workflow(index, workflow_id, ran)
        within, sink = self._within(index, key, None, loaded.plan)
        child = Execution.restore(loaded.plan, checkpoint, sink=sink, services=self.services,
                                  backpressure=self.backpressure, within=within)
        return _child_output(await self._inner(child, f"{node_id}/{key}", child.resume(answer),
                                               (workflow_id, loaded.version)))

    async def _workflow(self, index: int, workflow_id: str, version: str | None) -> ChildPlan:
        node = self.plan.nodes[index].node
        workflows, limit = self.services.workflows, self.services.limits.max_workflow_depth
        if workflows is None:
            raise NodeError(f"node '{node.title}' ({node.id}) runs workflow {workflow_id}, but this server runs no "
                            "sub-workflows", node_id=node.id)
        if self.depth + 1 > limit:
            raise NodeError(f"node '{node.title}' ({node.id}): sub-workflows nest deeper than {limit} levels "
                            "(KNOTFLOW_MAX_WORKFLOW_DEPTH)", node_id=node.id)
        return await workflows.load(workflow_id, version)

    def _waiting(self, node_id: str, key: str) -> Checkpoint:
        checkpoint = self.children.pop(f"{node_id}/{key}", None)
        if checkpoint is None:
            raise CheckpointError(f"node {node_id} has no iteration {key} waiting for an answer")
        return checkpoint

    async def _inner(self, inner: Execution, key: str, work: Awaitable[RunResult],
                     workflow: tuple[str, str] | None = None) -> RunResult:
        """Run a body or child workflow (`workflow`: its id and version); when a node inside asks the user, keep
        its checkpoint under `key` and pass the request on (the composite asks in turn)."""
        try:
            return await work
        except RunInterrupted as paused:
            paused.checkpoint.workflow = workflow
            self.children[key] = paused.checkpoint
            raise BodyInterrupted(InterruptRequest(paused.request.kind, paused.request.data, paused.node_id,
                                                   paused.node_title, paused.node_type,
                                                   (key, *paused.request.path))) from None

    async def _loop(self) -> RunResult:
        running = self._running
        try:
            while (self._ready and not self._interrupts) or running:
                # Once a node has interrupted, running branches finish but no new node starts: the checkpoint
                # then holds only finished nodes and the ready queue, and resuming re-runs nothing that ran.
                while self._ready and not self._interrupts:
                    if self.backpressure is not None:
                        await self.backpressure()
                        if not self._ready or self._interrupts:
                            break
                    index = self._ready.popleft()
                    if not running and not self._ready:
                        await self._execute(index)
                    else:
                        running.add(asyncio.create_task(self._execute(index)))
                if running:
                    done, _ = await asyncio.wait(set(running), return_when=asyncio.FIRST_COMPLETED)
                    running -= done
                    for task in done:
                        task.result()
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
        if self._interrupts:
            # The node just answered that asks again comes first, before nodes asking in parallel: the user's
            # conversation with it goes on (as Coze Studio, whose QA follow-ups come right after the answer).
            self._interrupts.sort(key=lambda interrupt: interrupt[0] != self._resumed)
            index, request = self._interrupts[0]
            node = self.plan.nodes[index].node
            # Who asks: the node itself, or the node inside a composite (or a child workflow) it asks for.
            asker = (request.node_id or node.id, request.node_title or node.title,
                     request.node_type or node.display_key)
            if self._root is None:
                # As Coze Studio, only the interrupt the user is asked shows its payload as a Message, not every node
                # waiting in parallel; and only the run itself shows it, not a body or child workflow inside it.
                self.sink(NodeMessage(*asker, request.data, True))
            checkpoint = self.checkpoint()
            checkpoint.asking = list(request.path)
            raise RunInterrupted(*asker, request, checkpoint)
        if self.result is None:
            if self.scope is not None:  # every branch of the body ended before its end: the iteration is done
                return RunResult({}, None, self.usage)
            raise NodeError("the run ended without reaching the End node", internal_code=720701009)
        return self.result

    def _inputs_for(self, plan_node: PlanNode, warnings: list[str]) -> dict[str, Any]:
        if plan_node.index == self.plan.start:
            warnings.extend(self._parameter_warnings)
            return self._parameters
        inputs: dict[str, Any] = {}
        replays = plan_node.node.streaming
        for param in plan_node.node.params:  # inlined _input: this is the hot path
            value = self.resolve(param.source)
            if replays and isinstance(value, str):
                value = self._finished_stream(param.source) or value
            if value is not None and not isinstance(value, TextStream):
                value = coerce_lenient(value, param.type, warnings)
            inputs[param.name] = value
        return inputs

    def _finished_stream(self, source: ValueSource) -> TextStream | None:
        """The stream a finished node's output was produced through, for a streaming consumer that starts after it
        ended: as Coze Studio, the consumer shows it chunk by chunk again rather than in one piece."""
        if not (isinstance(source, Ref) and source.source == BLOCK_OUTPUT and len(source.path) == 1):
            return None
        stream = self._streams.get(source.block_id, {}).get(source.path[0])
        return stream if stream is not None and stream.complete else None

    def _input(self, param: Param, warnings: list[str]) -> Any:
        """An input of a streaming consumer that starts early (`_inputs_for` for the others)."""
        value = self.resolve(param.source)
        if isinstance(value, str):
            value = self._finished_stream(param.source) or value
        if value is not None and not isinstance(value, TextStream):
            value = coerce_lenient(value, param.type, warnings)
        return value

    # --- streaming consumers that start early ----------------------------------------------------------
    def _notify(self, index: int) -> None:
        waiting = self._changed.pop(index, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    def _start_streaming_consumers(self, plan_node: PlanNode) -> None:
        """Expose the node's streams as its outputs for now, and start the consumers that show them live."""
        node = plan_node.node
        if node.stream_fields:
            self.outputs[plan_node.index] = {name: self.open_stream(node.id, name) for name in node.stream_fields}
            self._notify(plan_node.index)
        for consumer in plan_node.early_consumers:
            self._start_early(consumer)

    def _start_early(self, index: int) -> None:
        if self._started[index] or self._interrupts:
            return
        self._started[index] = True
        plan_node = self.plan.nodes[index]
        inputs: dict[str, Any] = {}
        warnings: list[str] = []
        for param in plan_node.node.params:
            producers = [self.plan.by_id[ref.block_id] for ref in refs_in(param.source)
                         if ref.source == BLOCK_OUTPUT and ref.block_id in self.plan.by_id]
            if all(self._done[producer] for producer in producers):
                inputs[param.name] = self._input(param, warnings)
            else:
                inputs[param.name] = LateValue(functools.partial(self._late_input, param, producers, warnings))
        self._running.add(asyncio.create_task(self._execute(index, inputs, warnings)))

    async def _late_input(self, param: Param, producers: list[int], warnings: list[str]) -> Any:
        """A consumer's input once known: a single streamed field as soon as its node streams, anything else
        once every node it reads has finished or been skipped."""
        refs = refs_in(param.source)
        streamed = refs[0].path[0] if len(refs) == 1 and len(refs[0].path) == 1 else None
        while True:
            outputs = self.outputs[producers[0]]
            if streamed is not None and outputs is not None and isinstance(outputs.get(streamed), TextStream):
                return outputs[streamed]
            waiting = [producer for producer in producers if not self._done[producer]]
            if not waiting:
                return self._input(param, warnings)
            if self._interrupts and not self._can_finish(waiting):
                raise Suspended(self.plan.nodes[waiting[0]].node.id)
            changed = self._changed.get(waiting[0])
            if changed is None:
                changed = self._changed[waiting[0]] = asyncio.get_running_loop().create_future()
            await changed

    def _can_finish(self, nodes: list[int]) -> bool:
        """Whether these nodes can finish while the run has an interrupt: they run and did not ask the user."""
        asking = {index for index, _ in self._interrupts}
        return all(self._started[index] and index not in asking for index in nodes)

    def _close_streams(self, node_id: str, outputs: dict[str, Any] | None, error: BaseException | None) -> None:
        for name, stream in self._streams.get(node_id, {}).items():
            if not stream.closed:
                # A node that returned its text without writing it piece by piece still feeds its consumers.
                if error is None and not str(stream) and outputs and outputs.get(name) is not None:
                    stream.write(render_value(outputs[name]))
                stream.close(error)

    async def _execute(
        self, index: int, resolved: dict[str, Any] | None = None, warnings: list[str] | None = None
    ) -> None:
        """Run one node; `warnings` already holds those of `resolved`, the inputs given (converting them)."""
        plan_node = self.plan.nodes[index]
        node = plan_node.node
        self._started[index] = True
        if plan_node.synthetic:  # a body's entry (the iteration's values) or exit: nothing to run, once per iteration
            self._finish(plan_node, self._parameters if index == self.plan.start else {}, None, None)
            return
        started = time.time()
        inputs: dict[str, Any] = {}
        handled: KnotflowError | None = None
        ctx: _NodeContext | None = None
        if warnings is None:
            warnings = []
        try:
            inputs = resolved if resolved is not None else self._inputs_for(plan_node, warnings)
            if plan_node.early_consumers:
                self._start_streaming_consumers(plan_node)
            ctx = _NodeContext(self, index, node.id, node.title, node.display_key, inputs)
            if plan_node.lazy:
                ctx.skip = ctx.shown = int(self.node_state.get(node.id, {}).pop("_shown", 0))
            if plan_node.policy is None:
                result = await node.run(ctx)
            else:
                result, handled = await self._run_with_policy(plan_node, ctx)
            self._close_streams(node.id, result.outputs, None)
        except asyncio.CancelledError:
            self._close_streams(node.id, None, NodeError("the run was cancelled", node_id=node.id))
            raise
        except Suspended:
            # Started early, it waits for a node held back by the interrupt: it runs again after the resume.
            self._started[index] = False
            self.node_state.setdefault(node.id, {})["_shown"] = ctx.shown if ctx is not None else 0
            self._notify(index)  # whoever waits on it re-checks: it will not finish before the resume
            if self._pending[index] == 0:
                self._ready.append(index)
            return
        except NodeInterrupt as interrupt:
            # A consumer showing its stream stops and starts again after the resume, as one waiting for its output.
            self._close_streams(node.id, None, Suspended(node.id))
            self.outputs[index] = None  # its streams, exposed while it ran, are no output to keep in the checkpoint
            self._interrupts.append((index, interrupt.request))
            for waiting in list(self._changed):
                self._notify(waiting)  # consumers started early re-check whether what they wait for can come
            self.resume_data.pop(node.id, None)
            self.sink(NodeFinished(node.id, node.type_id, node.title, "Interrupted", _safe_json(inputs), b"null",
                                   started, time.time(), usage=ctx.spent if ctx is not None else None))
            return
        except Exception as exc:
            self._close_streams(node.id, None, exc)
            error = as_node_error(exc, f"'{node.title}' ({node.id})", node.id)
            self.sink(NodeFinished(node.id, node.type_id, node.title, "Fail", _safe_json(inputs), b"null",
                                   started, time.time(), error.message, warnings=warnings or None,
                                   usage=ctx.spent if ctx is not None else None))
            raise error from exc
        self._record_success(plan_node, inputs, result, started, handled, warnings, ctx.spent)
        self._finish(plan_node, result.outputs, result.answer, result.port if plan_node.branching else None)

    def _finish(self, plan_node: PlanNode, outputs: dict[str, Any], answer: str | None, port: str | None) -> None:
        """A node done: its outputs known, its edges decided (once it has all its own inputs)."""
        index = plan_node.index
        self.outputs[index] = outputs
        self._done[index] = True
        if self._changed:
            self._notify(index)
        if index == self.plan.end:
            self.result = RunResult(outputs, answer, self.usage)
        if self._pending[index]:
            self._deferred[index] = port  # a consumer that started early: its successors wait for its edges
        else:
            self._complete(plan_node, port)

    def _record_success(self, plan_node: PlanNode, inputs: dict[str, Any], result: NodeResult, started: float,
                        handled: KnotflowError | None, warnings: list[str], usage: Usage | None) -> None:
        """Count the node's output against the run's data limit and trace it (Success, or the handled error)."""
        index, node = plan_node.index, plan_node.node
        encoded = jsonutil.dumpb(result.outputs) if result.outputs else b"{}"
        try:
            # The Start node's outputs are the run's inputs: counted as such when the run started.
            what = "the inputs" if index == self.plan.start else f"the output of node '{node.title}' ({node.id})"
            self.account(len(encoded), what, node.id)
        except RunTooLarge as error:
            self.sink(NodeFinished(node.id, node.type_id, node.title, "Fail", _safe_json(inputs), encoded,
                                   started, time.time(), error.message, warnings=warnings or None, usage=usage))
            raise
        if result.trace_output is not None:
            encoded = jsonutil.dumpb(result.trace_output)
        if result.warnings:
            warnings.extend(result.warnings)
        self.sink(NodeFinished(node.id, node.type_id, node.title, "Success", _safe_json(inputs), encoded,
                               started, time.time(), handled.message if handled is not None else None,
                               warnings=warnings or None, usage=usage))

    async def _run_with_policy(
        self, plan_node: PlanNode, ctx: _NodeContext
    ) -> tuple[NodeResult, KnotflowError | None]:
        """The node's attempts under its settingOnError; a failed attempt that is retried shows in the trace."""
        node = plan_node.node
        policy = plan_node.policy
        assert policy is not None

        inputs = ctx.inputs

        async def attempt(number: int) -> NodeResult:
            ctx.attempt = number
            ctx.spent = None  # each attempt's entry shows the tokens that attempt used
            return await node.run(ctx)

        def retry(number: int, error: KnotflowError) -> None:
            now = time.time()
            self.sink(NodeFinished(node.id, node.type_id, node.title, "Fail", _safe_json(inputs), b"null", now,
                                   now, f"attempt {number} of {policy.retries + 1} failed, retrying: "
                                   f"{error.message}", usage=ctx.spent))

        return await policy.run(attempt, label=f"'{node.title}' ({node.id})", node_id=node.id,
                                streamed=lambda: any(s.started for s in self._streams.get(node.id, {}).values()),
                                on_retry=retry)

    def _complete(self, plan_node: PlanNode, port: str | None) -> None:
        for edge_port, target in plan_node.out_edges:
            # On the error port only the error edges live; a plain edge is the normal way out.
            live = edge_port == port if port == ERROR_PORT else port is None or not edge_port or edge_port == port
            self._decide(target, live)

    def _skip(self, plan_node: PlanNode) -> None:
        self.skipped[plan_node.index] = True
        self._done[plan_node.index] = True
        self._notify(plan_node.index)
        node = plan_node.node
        now = time.time()
        self.sink(NodeFinished(node.id, node.type_id, node.title, "Skipped", b"null", b"null", now, now))
        for _, target in plan_node.out_edges:
            self._decide(target, False)

    def _decide(self, target: int, live: bool) -> None:
        if live:
            self._live[target] = True
        self._pending[target] -= 1
        if self._pending[target] == 0:
            if self._started[target]:
                if target in self._deferred:
                    self._complete(self.plan.nodes[target], self._deferred.pop(target))
            elif self._live[target]:
                self._ready.append(target)
            else:
                self._skip(self.plan.nodes[target])
        elif live and self.plan.nodes[target].lazy:
            self._start_early(target)


@dataclass(slots=True)
class _Within:
    """Where an inner run (a composite's body, a child workflow) sits: the run it belongs to, the execution its
    references reach when they name no node of its own (a body's composite's), its scope, its workflow depth."""

    root: Execution
    parent: Execution | None
    scope: BodyScope | None
    depth: int


class _BodyRun:
    """One iteration or item of a body, as its composite reads it (`BodyOutcome`)."""

    __slots__ = ("_execution", "_scope")

    def __init__(self, execution: Execution, scope: BodyScope) -> None:
        self._execution = execution
        self._scope = scope

    @property
    def broke(self) -> bool:
        return self._scope.broke

    @property
    def values(self) -> dict[str, Any]:
        return self._scope.values

    def output(self, node_id: str, path: Sequence[str]) -> tuple[bool, Any]:
        index = self._execution.plan.by_id.get(node_id)
        outputs = self._execution.outputs[index] if index is not None else None
        if outputs is None:
            return False, None
        found = lookup(outputs, tuple(path))
        return (False, None) if is_missing(found) else (True, found)


def _child_output(result: RunResult) -> dict[str, Any]:
    """A child workflow's output as the node's, as Coze Studio's: the End's variables, or `{"output": answer}`."""
    return {"output": result.answer} if result.answer is not None else dict(result.output)


def _safe_json(value: Any) -> bytes:
    try:
        return jsonutil.dumpb(value)
    except TypeError:
        import orjson

        return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS)


async def asking_node(plan: Plan, checkpoint: Checkpoint, node_id: str, services: RunServices) -> Node | None:
    """The node a paused run asks the user first, found down the checkpoint's `asking` path — inside composite
    bodies and child workflows (loaded in the version they paused in) — so that an answer can be checked before
    the run is claimed; None when the path does not lead to `node_id`."""
    for key in checkpoint.asking:
        composite = plan.by_id.get(key.partition("/")[0])
        inner = checkpoint.children.get(key)
        if composite is None or inner is None:
            return None
        body = plan.nodes[composite].body
        if body is not None:
            plan = body
        elif inner.workflow is not None and services.workflows is not None:
            plan = (await services.workflows.load(*inner.workflow)).plan
        else:
            return None
        checkpoint = inner
    index = plan.by_id.get(node_id)
    return plan.nodes[index].node if index is not None else None
