"""Coze Studio's publish-time canvas checks (its ValidateTree), run before a canvas is compiled.

In Coze's order: isolated nodes are pruned first (a node nothing leads to, Comment nodes among them — not
transitively, exactly as Coze's PruneIsolatedNodes), then every node must lead somewhere and every branch port
must be connected, edges must not form a cycle, and, on the nodes reachable from Start, composite nodes must not
nest and input parameter names must be identifiers. Composite
nodes' inner canvases are checked the same way, the composite node standing in for Start. All problems of the
first failing check are reported together, each naming its node by title and id.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from graphlib import CycleError, TopologicalSorter

from knotflow.dsl.canvas import Canvas, EdgeDef, NodeDef
from knotflow.errors import CanvasError

START_TYPE, END_TYPE, BREAK_TYPE, CONTINUE_TYPE = "1", "2", "19", "29"
DEFAULT_PORT = "default"

# Coze's validateInputParameterName.
_PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The ports a node's outgoing edges must cover (its branches, and `default`/`branch_error` with an exception
# branch); empty for a node that only needs one outgoing edge of any port.
ExpectedPorts = Callable[[NodeDef], list[str]]


@dataclass(slots=True, frozen=True)
class Issue:
    node_id: str
    title: str
    problem: str

    def __str__(self) -> str:
        label = f"'{self.title}' ({self.node_id})" if self.title else self.node_id
        return f"node {label} {self.problem}"


class InvalidCanvas(CanvasError):
    """A canvas Coze Studio would refuse to publish; `issues` lists every problem found by the failing check."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("the workflow is not valid: " + "; ".join(str(issue) for issue in issues))
        self.issues = issues


def prune_isolated(nodes: list[NodeDef], edges: list[EdgeDef], parent: NodeDef | None = None,
                   ) -> tuple[list[NodeDef], list[EdgeDef]]:
    """Drop the nodes no edge leads to (Start, End and a composite's Break/Continue excepted) and their edges."""
    kept_nodes = []
    for node in nodes:
        if node.blocks and node.edges:
            blocks, inner_edges = prune_isolated(node.blocks, node.edges, node)
            node = replace(node, blocks=blocks, edges=inner_edges)
        kept_nodes.append(node)
    targets = {edge.target for edge in edges}
    isolated = {node.id for node in kept_nodes
                if node.type not in (START_TYPE, END_TYPE) and node.id not in targets
                and not (parent is not None and node.type in (BREAK_TYPE, CONTINUE_TYPE))}
    return ([node for node in kept_nodes if node.id not in isolated],
            [edge for edge in edges if edge.source not in isolated])


def _connection_issues(nodes: list[NodeDef], edges: list[EdgeDef], expected_ports: ExpectedPorts,
                       composite: NodeDef | None = None) -> list[Issue]:
    issues: list[Issue] = []
    for node in nodes:
        if node.blocks and node.edges:
            issues += _connection_issues(node.blocks, node.edges, expected_ports, node)
    members = nodes if composite is None else [*nodes, composite]
    for node in members:
        outgoing = [edge for edge in edges if edge.source == node.id]
        if node.type == END_TYPE:
            continue
        if node.type == START_TYPE:
            if not outgoing:
                issues.append(Issue(node.id, node.title, "(Start) is not connected to any node"))
            continue
        ports = expected_ports(node)
        if ports:
            # A plain edge from a node with an exception branch is its normal way out (knotflow's canvases).
            plain = DEFAULT_PORT if DEFAULT_PORT in ports else ""
            used = {edge.source_port or plain for edge in outgoing}
            unknown = [port for port in used if port not in ports]
            if unknown:
                issues.append(Issue(node.id, node.title, f"has no branch '{unknown[0]}' (its branches: "
                                                         f"{', '.join(ports)})"))
            missing = [port for port in ports if port not in used]
            if missing:
                issues.append(Issue(node.id, node.title, f"has branch ports that are not connected: "
                                                         f"{', '.join(missing)}"))
        elif not outgoing and node.type not in (BREAK_TYPE, CONTINUE_TYPE):
            issues.append(Issue(node.id, node.title, "is not connected to a next node"))
    return issues


def _reachable(nodes: list[NodeDef], edges: list[EdgeDef], entry: str) -> list[NodeDef]:
    by_id = {node.id: node for node in nodes}
    successors: dict[str, list[str]] = {}
    for edge in edges:
        successors.setdefault(edge.source, []).append(edge.target)
    seen, queue = {entry}, [entry]
    while queue:
        for target in successors.get(queue.pop(), []):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return [by_id[node_id] for node_id in seen if node_id in by_id]


def _parameter_issues(reachable: list[NodeDef]) -> list[Issue]:
    issues = []
    for node in reachable:
        for raw in node.inputs.get("inputParameters") or []:
            if not isinstance(raw, dict) or raw.get("input") is None:
                continue
            name = str(raw.get("name") or "")
            if not _PARAMETER_NAME.match(name):
                issues.append(Issue(node.id, node.title, f'has an input parameter named "{name}": a parameter '
                                    "name only allows letters, digits and _, and must not begin with a digit"))
        if node.blocks and node.edges:
            issues += _parameter_issues(_reachable(node.blocks, node.edges, node.id))
    return issues


def _cycle_issues(nodes: list[NodeDef], edges: list[EdgeDef]) -> list[Issue]:
    by_id = {node.id: node for node in nodes}
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for edge in edges:
        sorter.add(edge.target, edge.source)
    try:
        sorter.prepare()
    except CycleError as exc:
        cycle = [by_id[node_id] for node_id in exc.args[1][:-1] if node_id in by_id]
        path = " → ".join(f"'{node.title}' ({node.id})" if node.title else node.id for node in cycle)
        first = cycle[0] if cycle else NodeDef("", "", "", {})
        return [Issue(first.id, first.title, f"is on a cycle ({path}): edges may not form loops; only loop "
                                             "nodes may repeat")]
    return []


def _nesting_issues(reachable: list[NodeDef]) -> list[Issue]:
    return [Issue(node.id, node.title, "holds another composite node: composite nodes such as batch/loop "
                                       "cannot be nested")
            for node in reachable if node.blocks and node.edges
            and any(inner.blocks and inner.edges for inner in node.blocks)]


def validate_canvas(canvas: Canvas, expected_ports: ExpectedPorts) -> tuple[list[NodeDef], list[EdgeDef]]:
    """Raise InvalidCanvas for what Coze Studio refuses at publish; return the canvas with isolated nodes pruned."""
    nodes, edges = prune_isolated(canvas.nodes, canvas.edges)
    start = next((node for node in nodes if node.type == START_TYPE), None)
    reachable = _reachable(nodes, edges, start.id) if start is not None else []
    for issues in (lambda: _connection_issues(nodes, edges, expected_ports), lambda: _cycle_issues(nodes, edges),
                   lambda: _nesting_issues(reachable), lambda: _parameter_issues(reachable)):
        found = issues()
        if found:
            raise InvalidCanvas(found)
    return nodes, edges
