"""What a run tells the outside world while it runs. The API turns these into Coze SSE events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from knotflow.contract import InterruptRequest, Usage
from knotflow.engine.checkpoint import Checkpoint


@dataclass(slots=True)
class NodeMessage:
    """A chunk of text a node shows the user (Output node, End node, Question node)."""

    node_id: str
    node_title: str
    node_type: str
    content: str
    is_finish: bool
    usage: Usage | None = None


@dataclass(slots=True)
class NodeFinished:
    """One node execution, for the run's trace."""

    node_id: str
    node_type: str
    node_title: str
    status: str  # "Success" | "Fail" | "Skipped"
    inputs: Any
    outputs: Any
    started_at: float
    finished_at: float
    error: str | None = None
    node_execute_uuid: str = ""
    # What went wrong without failing the node: input values that did not fit their type, a FromJSON value that
    # did not fit the output type (Coze Studio shows these as the node's errorInfo at errorLevel "Warn").
    warnings: list[str] | None = None
    # A node inside a composite's body or a child workflow: the composite (or Sub-workflow node) it ran for, and
    # the iteration or item (Coze's loop_index / batch_index).
    parent_node_id: str = ""
    iteration: int | None = None
    # The tokens this execution's model calls used (this attempt's, for a retried node); None when it called no
    # model, so that a trace can tell "no model" from "a model that reported 0". A composite's entry has none:
    # the nodes of its body have theirs, and a trace's entries sum to the run's usage.
    usage: Usage | None = None


@dataclass(slots=True)
class RunResult:
    """The End node's result: its output object, and in answer mode the rendered answer."""

    output: dict[str, Any]
    answer: str | None = None
    usage: Usage = field(default_factory=Usage)

    @property
    def answer_mode(self) -> bool:
        return self.answer is not None


class RunInterrupted(Exception):
    """The run paused: `checkpoint` restores it with `Execution.restore`."""

    def __init__(
        self, node_id: str, node_title: str, node_type: str, request: InterruptRequest, checkpoint: Checkpoint
    ) -> None:
        super().__init__(f"node {node_id} asks the user (interrupt type {request.kind})")
        self.node_id = node_id
        self.node_title = node_title
        self.node_type = node_type
        self.request = request
        self.checkpoint = checkpoint


Event = NodeMessage | NodeFinished
