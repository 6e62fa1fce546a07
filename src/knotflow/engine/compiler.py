"""Canvas → Plan: validate the graph once and index it for the scheduler."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from knotflow.contract import Node, NodeContext, NodeResult, NodeTypes, node_class
from knotflow.dsl.canvas import Canvas, EdgeDef, NodeDef, parse_canvas
from knotflow.dsl.values import BLOCK_OUTPUT, Ref
from knotflow.engine.batch_mode import expand_batch_mode
from knotflow.engine.policy import DEFAULT_PORT, ERROR_PORT, ErrorPolicy, parse_policy
from knotflow.engine.validation import ExpectedPorts, validate_canvas
from knotflow.errors import CanvasError, UnknownNodeType

START_TYPE, END_TYPE, BREAK_TYPE, CONTINUE_TYPE = "1", "2", "19", "29"
# The ports by which a composite's canvas marks where its body starts and ends (Coze Studio's normalizePorts).
BODY_PORTS = frozenset({"loop-function-inline-output", "batch-function-inline-output",
                        "loop-function-inline-input", "batch-function-inline-input"})
BODY_EXIT_SUFFIX = "#end"
MAX_NODE_ID_LENGTH = 64  # Coze's ids are short numbers; the run records keep them in 64 characters


@dataclass(slots=True)
class PlanNode:
    node: Node
    index: int
    type_id: str
    out_edges: list[tuple[str, int]] = field(default_factory=list)  # (source port, target index)
    in_count: int = 0
    # Streaming consumers that start as soon as this node starts, to show its streamed output as it comes.
    early_consumers: list[int] = field(default_factory=list)
    policy: ErrorPolicy | None = None  # settingOnError: timeout, retries, what a failure does
    lazy: bool = False  # a streaming consumer that may start before all its predecessors are done
    branching: bool = False  # it chooses a port: a branching node, or one with an exception branch
    body: Plan | None = None  # a composite node's body, run per iteration or item
    synthetic: bool = False  # a body's entry or exit: run like a node, but no node of the canvas (no trace)

    def __post_init__(self) -> None:
        self.branching = self.node.branching or (self.policy is not None and self.policy.branches)


@dataclass(slots=True)
class Plan:
    """A validated, indexed workflow, built once per published version and shared by all its runs."""

    nodes: list[PlanNode]
    start: int
    end: int
    global_refs: list[Ref]
    by_id: dict[str, int]
    # A body's references to nodes outside it, which the enclosing plan checks are upstream of the composite.
    outer_refs: list[Ref] = field(default_factory=list)

    @property
    def entry(self) -> Node:
        return self.nodes[self.start].node

    @property
    def exit(self) -> Node:
        return self.nodes[self.end].node

    def walk(self) -> Iterator[Node]:
        """Every node of the canvas the plan runs, the nodes inside composites' bodies included."""
        for plan_node in self.nodes:
            if not plan_node.synthetic:
                yield plan_node.node
            if plan_node.body is not None:
                yield from plan_node.body.walk()


def _ports(node: Node, policy: ErrorPolicy | None) -> list[str] | None:
    """The ports an edge from this node may name; None when any port is accepted (a plain node)."""
    if policy is not None and policy.branches:
        return [*(node.ports() if node.branching else [DEFAULT_PORT]), ERROR_PORT]
    return node.ports() if node.branching else None


def _instantiate(definition: NodeDef, node_types: NodeTypes) -> Node | None:
    cls = node_class(node_types, definition)
    if not cls.executable:
        return None
    try:
        return cls(definition)
    except CanvasError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CanvasError(f"node '{definition.title}' ({definition.id}, type {definition.type}): {exc}") from exc


def _reachable(start: int, successors: list[list[int]]) -> set[int]:
    seen = {start}
    queue = deque([start])
    while queue:
        for target in successors[queue.popleft()]:
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


def _check_acyclic(count: int, successors: list[list[int]], titles: list[str]) -> list[int]:
    indegree = [0] * count
    for targets in successors:
        for target in targets:
            indegree[target] += 1
    order = [i for i in range(count) if indegree[i] == 0]
    for i in order:
        for target in successors[i]:
            indegree[target] -= 1
            if indegree[target] == 0:
                order.append(target)
    if len(order) != count:
        stuck = [titles[i] for i in range(count) if indegree[i] > 0]
        raise CanvasError(f"the workflow has a cycle through {', '.join(stuck[:5])}; only loop nodes may repeat")
    return order


def _link_streaming_consumers(plan_nodes: list[PlanNode]) -> None:
    """A streaming consumer (streaming Output, End in answer mode) starts as soon as it is sure to run — when a
    predecessor that takes no branch starts, or an edge to it is decided live — and waits inside its template
    for each value it reaches: streamed text as it comes, other values once their node has finished. Not while a
    predecessor that shows text itself still runs: the two would interleave their text on the one answer stream
    (Coze Studio shows the Output node's text whole, then the End's)."""
    for producer in plan_nodes:
        for _, target in producer.out_edges:
            consumer = plan_nodes[target]
            if consumer.node.streaming:
                consumer.lazy = True
                if (not producer.branching and not producer.node.streaming
                        and target not in producer.early_consumers):
                    producer.early_consumers.append(target)


def _expected_ports(instances: dict[str, Node | None], node_types: NodeTypes) -> ExpectedPorts:
    """The ports a node's edges must cover, for the canvas checks: its branches and its exception branch."""
    def expected(definition: NodeDef) -> list[str]:
        node = instances.get(definition.id)
        if node is None and definition.id not in instances:  # inside a composite node
            cls = node_types.get(definition.type)
            node = _instantiate(definition, node_types) if cls is not None and cls.branching else None
        branching = node is not None and node.branching
        policy = parse_policy(definition, branching)
        ports = _ports(node, policy) if node is not None else (
            [DEFAULT_PORT, ERROR_PORT] if policy is not None and policy.branches else None)
        return ports or []
    return expected


def branch_ports(definition: NodeDef, node_types: NodeTypes) -> list[str]:
    """The ports a node's outgoing edges must cover (its branches, its exception branch), as the canvas checks
    see them; [] for a node with one way out, or one whose configuration does not compile."""
    try:
        return _expected_ports({}, node_types)(definition)
    except CanvasError:
        return []


def compile_canvas(canvas: Canvas | dict | str, node_types: NodeTypes) -> Plan:
    """The plan of a canvas whose nodes are of `node_types`; a CanvasError naming the first problem."""
    if not isinstance(canvas, Canvas):
        canvas = parse_canvas(canvas)
    canvas = replace(canvas, nodes=[expand_batch_mode(definition) for definition in canvas.nodes])
    everywhere = [*canvas.nodes, *(inner for d in canvas.nodes for inner in d.blocks)]
    if len({d.id for d in everywhere}) != len(everywhere):
        raise CanvasError("two nodes share one id")
    for definition in everywhere:
        if len(definition.id) > MAX_NODE_ID_LENGTH:
            raise CanvasError(f"node '{definition.title}' has an id longer than {MAX_NODE_ID_LENGTH} characters")
    # Instantiate every node first, so an unknown type is reported even on an isolated node — after the canvas
    # checks, which need no node implementation.
    instances: dict[str, Node | None] = {}
    unknown: list[UnknownNodeType] = []
    for definition in everywhere:
        try:
            instances[definition.id] = _instantiate(definition, node_types)
        except UnknownNodeType as exc:
            unknown.append(exc)
    pruned, _ = validate_canvas(canvas, _expected_ports(instances, node_types))
    if unknown:
        raise unknown[0]
    starts = [d for d in canvas.nodes if d.type == START_TYPE]
    ends = [d for d in canvas.nodes if d.type == END_TYPE]
    if len(starts) != 1 or len(ends) != 1:
        raise CanvasError(f"a workflow needs exactly one Start and one End node (found {len(starts)} and {len(ends)})")
    bodies = {d.id: d for d in pruned if d.blocks}
    nodes = [(d, instances[d.id]) for d in canvas.nodes]
    plan = _compile_graph(nodes, canvas.edges, starts[0].id, ends[0].id, instances, bodies)
    if plan.outer_refs:
        raise CanvasError(f"a node reads {plan.outer_refs[0].label}, but node {plan.outer_refs[0].block_id} "
                          "does not exist")
    return plan


class _BodyEntry(Node):
    """Where a body starts: its outputs are the iteration's values, which references to the composite read."""

    type_id = "body-entry"
    display_key = "Start"

    async def run(self, ctx: NodeContext) -> NodeResult:
        return NodeResult(ctx.inputs)


class _BodyExit(Node):
    """Where a body ends: every branch of the body, and every Break and Continue node, leads here."""

    type_id = "body-exit"
    display_key = "End"

    async def run(self, ctx: NodeContext) -> NodeResult:
        return NodeResult({})


def _compile_body(composite: NodeDef, instances: dict[str, Node | None]) -> Plan:
    """A composite node's body as a plan of its own: an entry standing for the composite (its id, so that the
    body's references to the composite read the iteration's values), the inner nodes, and an exit."""
    exit_id = composite.id + BODY_EXIT_SUFFIX
    entry = NodeDef(composite.id, _BodyEntry.type_id, composite.title, {})
    leave = NodeDef(exit_id, _BodyExit.type_id, composite.title, {})
    edges = [EdgeDef(edge.source, exit_id if edge.target == composite.id else edge.target,
                     "" if edge.source_port in BODY_PORTS else edge.source_port) for edge in composite.edges]
    # Break and Continue end their branch: the body's end waits for them too (as Coze Studio's inner END does).
    edges += [EdgeDef(inner.id, exit_id) for inner in composite.blocks if inner.type in (BREAK_TYPE, CONTINUE_TYPE)]
    nodes = [(entry, _BodyEntry(entry)), *((d, instances[d.id]) for d in composite.blocks),
             (leave, _BodyExit(leave))]
    plan = _compile_graph(nodes, edges, entry.id, exit_id, instances, {}, synthetic={entry.id, exit_id})
    return plan


def _compile_graph(definitions: list[tuple[NodeDef, Node | None]], canvas_edges: list[EdgeDef], start_id: str,
                   end_id: str, instances: dict[str, Node | None], bodies: dict[str, NodeDef],
                   synthetic: frozenset[str] | set[str] = frozenset()) -> Plan:
    compiled = definitions
    nodes: list[tuple[NodeDef, Node]] = [(d, n) for d, n in compiled if n is not None]
    ids = [d.id for d, _ in nodes]
    index = {node_id: i for i, node_id in enumerate(ids)}
    start, end = index[start_id], index[end_id]

    skipped_ids = {d.id for d, n in compiled if n is None}
    policies = [parse_policy(d, n.branching) for d, n in nodes]
    successors: list[list[int]] = [[] for _ in nodes]
    edges: list[tuple[int, str, int]] = []
    for edge in canvas_edges:
        if edge.source in skipped_ids or edge.target in skipped_ids:
            continue
        if edge.source not in index or edge.target not in index:
            missing = edge.source if edge.source not in index else edge.target
            raise CanvasError(f"an edge refers to node {missing}, which is not in the canvas")
        source, target = index[edge.source], index[edge.target]
        node, policy = nodes[source][1], policies[source]
        port = edge.source_port  # the canvas checks made sure it is one of the node's ports
        if not port and policy is not None and policy.branches and not node.branching:
            port = DEFAULT_PORT  # a plain edge from a node with an exception branch is its normal way out
        successors[source].append(target)
        edges.append((source, port, target))

    live = _reachable(start, successors)
    if end not in live:
        raise CanvasError("the End node cannot be reached from the Start node" if not synthetic else
                          f"the body of node '{nodes[start][0].title}' ({ids[start]}) never reaches its end")
    titles = [n.title or n.id for _, n in nodes]
    order = _check_acyclic(len(nodes), [[t for t in s if t in live] if i in live else [] for i, s in
                                        enumerate(successors)], titles)
    # Ancestor sets as integer bitsets: set unions made this quadratic in Python on long chains.
    ancestors = [0] * len(nodes)
    for i in order:
        if i not in live:
            continue
        for target in successors[i]:
            ancestors[target] |= ancestors[i] | (1 << i)

    # Isolated nodes (not reachable from Start) are pruned, as Coze Studio does.
    kept = [i for i in range(len(nodes)) if i in live]
    renumber = {old: new for new, old in enumerate(kept)}
    plan_nodes = [PlanNode(nodes[old][1], new, nodes[old][0].type, policy=policies[old],
                           synthetic=nodes[old][0].id in synthetic) for new, old in enumerate(kept)]
    for source, port, target in edges:
        if source in live and target in live:
            plan_nodes[renumber[source]].out_edges.append((port, renumber[target]))
            plan_nodes[renumber[target]].in_count += 1

    _link_streaming_consumers(plan_nodes)

    global_refs: list[Ref] = []
    outer_refs: list[Ref] = []
    for old in kept:
        node = nodes[old][1]
        references = list(node.references())
        if nodes[old][0].id in bodies:
            body = _compile_body(bodies[nodes[old][0].id], instances)
            plan_nodes[renumber[old]].body = body
            global_refs += body.global_refs
            references += body.outer_refs  # the composite reads them for its body: they must be upstream of it
        for ref in references:
            if ref.source != BLOCK_OUTPUT:
                global_refs.append(ref)
                continue
            if not ref.block_id:
                raise CanvasError(
                    f"node '{node.title}' ({node.id}) has an input that references no node (empty blockID)"
                )
            producer = index.get(ref.block_id)
            if producer is None:
                if synthetic:  # a body may read nodes around its composite: the enclosing plan checks them
                    outer_refs.append(ref)
                    continue
                raise CanvasError(
                    f"node '{node.title}' ({node.id}) reads {ref.label}, but node {ref.block_id} does not exist"
                )
            if producer != old and not ancestors[old] >> producer & 1:
                raise CanvasError(
                    f"node '{node.title}' ({node.id}) reads {ref.label}, but node {ref.block_id} is not "
                    "upstream of it"
                    if producer in live
                    else f"node '{node.title}' ({node.id}) reads {ref.label} from a node that is never run"
                )
    return Plan(plan_nodes, renumber[start], renumber[end], global_refs,
                {n.node.id: n.index for n in plan_nodes}, outer_refs)
