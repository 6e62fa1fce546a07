"""The node interface: what a node type implements, and what a running node may ask of its run.

A node type is one module in `knotflow.nodes` holding one `Node` subclass with its canvas `type_id`. The class
parses and validates its part of the canvas in `__init__` (compile time, once per published version) and does
its work in `run` (once per execution), talking to the run only through its `NodeContext`.

Every optional capability is declared here with its default, so the engine and the catalog ask a node what it
can do by calling the hook, never by looking for an attribute (Coze Studio's small node interfaces, spelled as
overridable methods).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from knotflow.dsl.canvas import NodeDef, Param
from knotflow.dsl.values import Ref, ValueSource, refs_in
from knotflow.errors import UnknownNodeType

if TYPE_CHECKING:
    from knotflow.contract.composite import BodyOutcome, BodyScope
    from knotflow.contract.services import RunServices
    from knotflow.contract.streams import TextStream

# What the engine's error policy (a node's settingOnError) adds to a node's outputs; a canvas declares them
# readonly, and a node that checks its declared outputs against what it produces leaves them out.
IS_SUCCESS, ERROR_BODY = "isSuccess", "errorBody"
POLICY_OUTPUTS = frozenset({IS_SUCCESS, ERROR_BODY})

ModelKey = tuple[int | None, str | None]  # how a canvas names a model: llmParam modelType, modelName


@dataclass(slots=True)
class Usage:
    """Tokens models used: a run's, summed over its nodes, or one node execution's."""

    input_count: int = 0
    output_count: int = 0

    @property
    def token_count(self) -> int:
        return self.input_count + self.output_count

    def add(self, input_count: int, output_count: int) -> None:
        self.input_count += input_count
        self.output_count += output_count

    def as_dict(self) -> dict[str, int]:
        return {"token_count": self.token_count, "output_count": self.output_count, "input_count": self.input_count}


@dataclass(slots=True)
class InterruptRequest:
    """A node's request to pause the run until the user answers (Coze's InterruptType: 2 question, 5 input)."""

    kind: int
    data: str  # the payload the client gets as interrupt_data.data
    # Who asks, when it is not the node that raised the interrupt: a composite node passes on the request of a
    # node inside its body (or a child workflow), and the user is shown that node.
    node_id: str = ""
    node_title: str = ""
    node_type: str = ""
    # Where that node is: the keys of the nested checkpoints (`Checkpoint.children`) leading from the node that
    # raised the interrupt down to the asker's own run, outermost first; empty for the node itself.
    path: tuple[str, ...] = ()


class NodeInterrupt(Exception):
    """Raised by a node's `run` to pause the run; the node runs again with `ctx.resume_data` on resume."""

    def __init__(self, request: InterruptRequest) -> None:
        super().__init__(f"interrupt type {request.kind}")
        self.request = request


@dataclass(slots=True)
class NodeResult:
    outputs: dict[str, Any]
    port: str | None = None  # the branch taken, for nodes with `branching = True`
    answer: str | None = None  # the End node's rendered answer, in answer mode
    warnings: list[str] | None = None  # shown on the node's trace entry; the node still succeeds
    # What the trace shows as the node's output when it is not `outputs` (Coze Studio's ToCallbackOutput): the
    # Selector's outputs are empty, its trace says which branch it passed to.
    trace_output: dict[str, Any] | None = None


class NodeContext(ABC):
    """One execution of one node: its inputs, and what it may ask of the run. A new context is made for every
    attempt's call, so a field added here never changes a node's signature."""

    __slots__ = ()

    node_id: str
    node_title: str
    attempt: int  # 0 on the first attempt, n on the n-th retry (settingOnError.retryTimes)
    inputs: dict[str, Any]  # `inputParameters` resolved against the variable pool, converted to their types

    @abstractmethod
    def resolve(self, source: ValueSource) -> Any:
        """The value of a source the node reads beyond its inputs (a dynamic option list, a template's ref)."""

    @abstractmethod
    def is_skipped(self, source: ValueSource) -> bool:
        """Whether `source` names the output of a node on a branch the run did not take."""

    @abstractmethod
    def emit_message(self, content: str, is_finish: bool, usage: Usage | None = None) -> None:
        """Show text to the user (a `Message` event)."""

    @abstractmethod
    def open_stream(self, field: str) -> TextStream:
        """The stream for output `field` (declared in `stream_fields`): write pieces, close, then return the
        whole text in the result as usual. Streaming consumers downstream read it while it grows."""

    @property
    @abstractmethod
    def resume_data(self) -> str | None:
        """The user's answer when this node runs again after it interrupted the run; None on a first run."""

    @property
    @abstractmethod
    def state(self) -> dict[str, Any]:
        """This node's own JSON-ready memory for this run, kept in the checkpoint across interrupts (e.g. the
        questions already asked and the answers given)."""

    @property
    @abstractmethod
    def usage(self) -> Usage:
        """The run's token usage so far (its bodies and child workflows included), to read: the End node shows
        it. A node adds what it used through `add_usage`, never to this."""

    @abstractmethod
    def add_usage(self, input_count: int, output_count: int) -> None:
        """Count the tokens a model call of this node used: on this execution's trace entry (this attempt's, when
        the node is retried) and in the run's usage, once."""

    @property
    @abstractmethod
    def services(self) -> RunServices:
        """What the node may reach outside the run: models, files, chat history and the rest."""

    @property
    @abstractmethod
    def scope(self) -> BodyScope | None:
        """The iteration or item around a node inside a composite's body (see `contract.composite`); None for a
        node at a workflow's top level."""

    @abstractmethod
    async def run_body(self, key: str, values: dict[str, Any],
                       variables: frozenset[str] = frozenset()) -> BodyOutcome:
        """Run this composite node's body once with the iteration's `values` (see `BodyScope`; `variables` are
        the names among them a Set variable node may change); `key` names the iteration among this node's runs of
        its body. Raises BodyInterrupted when a node inside asks the user."""

    @abstractmethod
    async def resume_body(self, key: str, answer: str, variables: frozenset[str] = frozenset()) -> BodyOutcome:
        """Go on with the iteration `key` that asked the user, with the user's answer."""

    @abstractmethod
    async def run_workflow(self, key: str, workflow_id: str, version: str | None,
                           inputs: dict[str, Any]) -> dict[str, Any]:
        """Run another published workflow (`version` None: its latest) as part of this run; its End node's output.
        Raises BodyInterrupted when a node of the child asks the user."""

    @abstractmethod
    async def resume_workflow(self, key: str, answer: str, workflow_id: str, version: str | None) -> dict[str, Any]:
        """Go on with the child workflow `key` (of `workflow_id` at `version`) that asked the user, with the
        user's answer."""


class Node(ABC):
    """A compiled node: configuration parsed from the canvas, ready to run many times."""

    type_id: ClassVar[str]
    display_key: ClassVar[str]  # `node_type` in SSE messages (Coze's DisplayKey)
    branching: ClassVar[bool] = False  # it chooses one of `ports()` in its result
    # False for a node that only annotates the canvas (Comment): it is dropped from the plan, never run.
    executable: ClassVar[bool] = True
    # A node whose canvas nests a body (`blocks`, `edges`: Loop, Batch): the engine compiles it, and the node runs
    # it through `NodeContext.run_body`.
    composite: ClassVar[bool] = False
    stream_fields: frozenset[str] = frozenset()  # outputs this node can produce piece by piece
    streaming: bool = False  # a consumer that shows streamed inputs as they come (Output, End in answer mode)
    answers: bool = False  # its messages are its workflow's answer text (End in answer mode)

    def __init__(self, definition: NodeDef) -> None:
        self.id = definition.id
        self.title = definition.title
        self.definition = definition
        self.params: list[Param] = definition.params()

    @abstractmethod
    async def run(self, ctx: NodeContext) -> NodeResult:
        """Do the node's work on `ctx.inputs`."""

    def check_resume(self, answer: str) -> None:
        """Refuse an answer this node cannot take (raise BadRequest) before a run is resumed with it, so that
        a wrong answer leaves the run waiting instead of failing it."""
        return None

    def ports(self) -> list[str]:
        """The branch ports a branching node may choose from."""
        return []

    def sources(self) -> list[ValueSource]:
        """Every value source the node reads, beyond `inputParameters` (for dependency checks)."""
        return []

    def references(self) -> list[Ref]:
        return [ref for source in [p.source for p in self.params] + self.sources() for ref in refs_in(source)]

    def required_models(self) -> list[ModelKey]:
        """The models the node calls, so that publishing refuses a canvas whose models are not configured."""
        return []

    def required_workflows(self) -> list[tuple[str, str | None]]:
        """The workflows the node runs (id, version or None for the latest), so that publishing refuses one that
        does not exist or that would run itself."""
        return []

    def prepare(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """For a workflow's entry node: the caller's parameters as the run takes them (validated, defaults filled);
        BadRequest naming the first bad one."""
        return parameters


NodeTypes = Mapping[str, type[Node]]  # canvas type id → node class


def node_class(node_types: NodeTypes, definition: NodeDef) -> type[Node]:
    cls = node_types.get(definition.type)
    if cls is None:
        raise UnknownNodeType(definition.id, definition.type, definition.title)
    return cls
