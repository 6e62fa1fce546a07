"""The interface every node type implements, and the registry that maps canvas type ids to node classes.

A node type is one module in `knotflow.nodes` holding one `Node` subclass decorated with `@register`. The
class parses and validates its part of the canvas in `__init__` (compile time, once per published version) and
does its work in `run` (once per execution), talking to the run only through `NodeContext`.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from knotflow.dsl.canvas import NodeDef, Param
from knotflow.dsl.values import ValueSource, refs_in
from knotflow.engine.events import Usage
from knotflow.engine.streams import TextStream
from knotflow.errors import UnknownNodeType


@dataclass(slots=True)
class NodeResult:
    outputs: dict[str, Any]
    port: str | None = None  # the branch taken, for nodes with `branching = True`
    answer: str | None = None  # the End node's rendered answer, in answer mode
    warnings: list[str] | None = None  # shown on the node's trace entry; the node still succeeds
    # What the trace shows as the node's output when it is not `outputs` (Coze Studio's ToCallbackOutput): the
    # Selector's outputs are empty, its trace says which branch it passed to.
    trace_output: dict[str, Any] | None = None


class NodeContext(Protocol):
    """What a running node may ask of the engine."""

    node_id: str
    node_title: str
    attempt: int  # 0 on the first attempt, n on the n-th retry (settingOnError.retryTimes)

    def resolve(self, source: ValueSource) -> Any: ...

    def is_skipped(self, source: ValueSource) -> bool: ...

    def emit_message(self, content: str, is_finish: bool, usage: Usage | None = None) -> None: ...

    def open_stream(self, field: str) -> TextStream:
        """The stream for output `field` (declared in `stream_fields`): write pieces, close, then return the
        whole text in the result as usual. Streaming consumers downstream read it while it grows."""
        ...

    @property
    def resume_data(self) -> str | None:
        """The user's answer when this node runs again after it interrupted the run; None on a first run."""
        ...

    @property
    def state(self) -> dict[str, Any]:
        """This node's own JSON-ready memory for this run, kept in the checkpoint across interrupts (e.g. the
        questions already asked and the answers given)."""
        ...

    @property
    def usage(self) -> Usage: ...

    @property
    def services(self) -> Any: ...


class Node(ABC):
    """A compiled node: configuration parsed from the canvas, ready to run many times."""

    type_id: ClassVar[str]
    display_key: ClassVar[str]  # `node_type` in SSE messages (Coze's DisplayKey)
    branching: ClassVar[bool] = False
    stream_fields: frozenset[str] = frozenset()  # outputs this node can produce piece by piece
    streaming: bool = False  # a consumer that shows streamed inputs as they come (Output, End in answer mode)

    def __init__(self, definition: NodeDef) -> None:
        self.id = definition.id
        self.title = definition.title
        self.definition = definition
        self.params: list[Param] = definition.params()

    @abstractmethod
    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> NodeResult:
        """Do the node's work. `inputs` holds `inputParameters` resolved against the variable pool."""

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

    def references(self) -> list[Any]:
        return [ref for source in [p.source for p in self.params] + self.sources() for ref in refs_in(source)]


_REGISTRY: dict[str, type[Node]] = {}
_loaded = False


def register(cls: type[Node]) -> type[Node]:
    if cls.type_id in _REGISTRY and _REGISTRY[cls.type_id] is not cls:
        raise RuntimeError(f"node type {cls.type_id} registered twice")
    _REGISTRY[cls.type_id] = cls
    return cls


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    import knotflow.nodes as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name != "base" and not module.name.startswith("_"):
            importlib.import_module(f"knotflow.nodes.{module.name}")
    _loaded = True


def node_class(definition: NodeDef) -> type[Node]:
    _load_all()
    cls = _REGISTRY.get(definition.type)
    if cls is None:
        raise UnknownNodeType(definition.id, definition.type, definition.title)
    return cls


def known_types() -> dict[str, type[Node]]:
    _load_all()
    return dict(_REGISTRY)
