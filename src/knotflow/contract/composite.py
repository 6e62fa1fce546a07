"""What composite nodes (Loop, Batch, Sub-workflow) and the nodes inside them use of their run.

A composite node's body — the nodes and edges its canvas nests in `blocks` — is compiled by the engine into a plan
of its own. The composite runs it once per iteration or item through `NodeContext.run_body` (and a child workflow
through `run_workflow`), and reads what the body's nodes produced from the `BodyOutcome`. The body's nodes see the
iteration through `NodeContext.scope`: their references to the composite's id read the iteration's values (the
current element of each array, `index`, and a Loop's variables, live); Set variable and Break act on it.

When something inside asks the user, `run_body` / `run_workflow` raise `BodyInterrupted`: the engine keeps the
inner run's checkpoint (nested in the run's own), the composite records which iterations or items wait (in
`ctx.state`) and raises `NodeInterrupt` with the request; on resume it answers the one it asked with
`resume_body` / `resume_workflow`, and the inner run goes on where it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from knotflow.contract.node import InterruptRequest

INDEX = "index"  # the iteration's index, as body nodes reference it (`{blockID: <composite>, name: "index"}`)


class BodyInterrupted(Exception):
    """A node inside the body (or the child workflow) asks the user: `request` names who asks and what."""

    def __init__(self, request: InterruptRequest) -> None:
        super().__init__(f"interrupt type {request.kind} inside a body")
        self.request = request


@dataclass(slots=True)
class BodyScope:
    """One iteration or item of a composite's body, as its nodes see it."""

    owner_id: str  # the composite node's id: references to it read `values`
    values: dict[str, Any]  # index, each array's current element, a Loop's variables (live)
    variables: frozenset[str] = field(default_factory=frozenset)  # which `values` a Set variable node may change
    broke: bool = False  # a Break node ran: the Loop stops after this iteration

    def set_variable(self, name: str, value: Any) -> bool:
        """Change a loop variable for the rest of this iteration and the next; False when `name` is none."""
        if name not in self.variables:
            return False
        self.values[name] = value
        return True


class BodyOutcome(Protocol):
    """What one iteration or item of a body produced."""

    @property
    def broke(self) -> bool:
        """Whether a Break node ran in it."""
        ...

    @property
    def values(self) -> dict[str, Any]:
        """The iteration's values at its end (a Loop's variables as they were left)."""
        ...

    def output(self, node_id: str, path: Sequence[str]) -> tuple[bool, Any]:
        """Whether the body's node `node_id` ran in this iteration, and the value at `path` of its outputs."""
        ...
