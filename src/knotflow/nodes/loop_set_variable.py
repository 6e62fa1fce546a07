"""Set variable (20): inside a Loop's body, give loop variables new values (`inputParameters`: `left`, a loop
variable, and `right`, its value), visible at once to the rest of the iteration and to the next ones. As Coze
Studio's, the value is taken as it is (no conversion to the variable's type); the node outputs nothing."""

from __future__ import annotations

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.values import Ref, ValueSource, parse_block_input
from knotflow.errors import CanvasError, NodeError


class LoopSetVariableNode(Node):
    type_id = "20"
    display_key = "LoopSetVariable"

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        label = f"loop set variable node '{self.title}' ({self.id})"
        self.pairs: list[tuple[str, ValueSource]] = []
        for item in definition.inputs.get("inputParameters") or []:
            left = item.get("left") if isinstance(item, dict) else None
            right = item.get("right") if isinstance(item, dict) else None
            if left is None or right is None:
                raise CanvasError(f"{label}: param left or right is nil")
            target, _ = parse_block_input(left)
            if not isinstance(target, Ref) or len(target.path) != 1:
                raise CanvasError(f"{label}: param left must reference a loop variable")
            self.pairs.append((target.path[0], parse_block_input(right)[0]))

    def sources(self) -> list[ValueSource]:
        return [source for _, source in self.pairs]

    async def run(self, ctx: NodeContext) -> NodeResult:
        scope = ctx.scope
        if scope is None:
            raise NodeError(f"loop set variable node '{self.title}' ({self.id}) must be inside a loop",
                            node_id=self.id)
        for name, source in self.pairs:
            if not scope.set_variable(name, ctx.resolve(source)):
                raise NodeError(f"loop set variable node '{self.title}' ({self.id}): {name!r} is no variable of "
                                "the loop it is in", node_id=self.id)
        return NodeResult({})
