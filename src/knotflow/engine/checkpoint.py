"""A paused run's state, typed and versioned, with its (de)serialisation in this one place.

An `Execution` writes a `Checkpoint` when a node asks the user something (`Execution.checkpoint`) and is rebuilt
from one to go on (`Execution.restore`); the service stores it as the JSON text `dumps` gives, beside the
question (the interrupts table). Every version ever written keeps loading: `loads` reads version 1 (written up
to the typed checkpoint; tests/fixtures/checkpoints holds real rows) and the current version.

A checkpoint nests: `children` holds, by key, the checkpoints of the sub-graphs a node runs — a composite node's
iterations or items, a child workflow — each of them a `Checkpoint` of its own plan, so a pause anywhere below
restores level by level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from knotflow.dsl import jsonutil
from knotflow.errors import NodeError

VERSION = 2
_READABLE = (1, 2)
CODE_BAD_CHECKPOINT = 720701011


class CheckpointError(NodeError):
    """A stored checkpoint this code cannot read, or one that belongs to another plan."""

    def __init__(self, message: str) -> None:
        super().__init__(message, internal_code=CODE_BAD_CHECKPOINT)


@dataclass(slots=True)
class Checkpoint:
    """Per-node lists are indexed like the plan's nodes."""

    outputs: list[dict[str, Any] | None]  # finished nodes' outputs; None: not finished
    skipped: list[bool]  # on a branch the run did not take
    pending: list[int]  # incoming edges not yet decided
    live: list[bool]  # some incoming edge was decided live
    started: list[bool]  # started (the nodes that asked are not: they run again on resume)
    ready: list[int]  # nodes to start on resume, the ones that asked first (the one to answer first of all)
    input_tokens: int = 0
    output_tokens: int = 0
    bytes_used: int = 0  # the run's data so far, against its size limit
    resume_data: dict[str, str] = field(default_factory=dict)  # answers given, by node id, not yet consumed
    node_state: dict[str, dict[str, Any]] = field(default_factory=dict)  # nodes' own memory (NodeContext.state)
    deferred: dict[int, str | None] = field(default_factory=dict)  # early consumers done, edges not yet decided
    children: dict[str, Checkpoint] = field(default_factory=dict)  # nested sub-graphs' checkpoints, by key
    # A child workflow's: the workflow and the version it ran, which its resume runs again.
    workflow: tuple[str, str] | None = None
    # The keys in `children`, level by level, that lead to the run of the node the user is asked first (empty:
    # a node of this plan); the service finds that node with them to check an answer before it resumes.
    asking: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "outputs": self.outputs,
            "skipped": self.skipped,
            "pending": self.pending,
            "live": self.live,
            "started": self.started,
            "ready": self.ready,
            "usage": [self.input_tokens, self.output_tokens],
            "bytes_used": self.bytes_used,
            "resume_data": self.resume_data,
            "node_state": self.node_state,
            "deferred": {str(index): port for index, port in self.deferred.items()},
            "children": {key: child.to_json() for key, child in self.children.items()},
            "workflow": list(self.workflow) if self.workflow else None,
            "asking": self.asking,
        }

    @classmethod
    def from_json(cls, data: Any) -> Checkpoint:
        if not isinstance(data, dict) or data.get("version") not in _READABLE:
            version = data.get("version") if isinstance(data, dict) else None
            raise CheckpointError(f"the checkpoint's format (version {version!r}) is not one this server reads")
        try:
            usage = data["usage"]
            return cls(
                outputs=list(data["outputs"]),
                skipped=[bool(flag) for flag in data["skipped"]],
                pending=[int(count) for count in data["pending"]],
                live=[bool(flag) for flag in data["live"]],
                started=[bool(flag) for flag in data["started"]],
                ready=[int(index) for index in data["ready"]],
                input_tokens=int(usage[0]),
                output_tokens=int(usage[1]),
                bytes_used=int(data["bytes_used"]),
                resume_data=dict(data.get("resume_data") or {}),
                node_state=dict(data.get("node_state") or {}),
                deferred={int(index): port for index, port in (data.get("deferred") or {}).items()},
                children={str(key): cls.from_json(child) for key, child in (data.get("children") or {}).items()},
                workflow=(str(data["workflow"][0]), str(data["workflow"][1])) if data.get("workflow") else None,
                asking=[str(key) for key in data.get("asking") or ()],
            )
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"the checkpoint is damaged: {exc!r}") from exc

    def dumps(self) -> str:
        return jsonutil.dumps(self.to_json())

    @classmethod
    def loads(cls, text: str | bytes) -> Checkpoint:
        try:
            data = jsonutil.loads(text)
        except jsonutil.JSONDecodeError as exc:
            raise CheckpointError(f"the checkpoint is not JSON: {exc}") from exc
        return cls.from_json(data)

    def fits(self, node_count: int) -> bool:
        """Whether the checkpoint can belong to a plan of `node_count` nodes."""
        lists = (self.outputs, self.skipped, self.pending, self.live, self.started)
        return all(len(values) == node_count for values in lists) and all(
            0 <= index < node_count for index in self.ready)
