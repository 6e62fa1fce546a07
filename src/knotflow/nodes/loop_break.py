"""Break (19): inside a Loop's body, end the loop after the current iteration (the rest of the iteration, and
branches running beside it, still finish; its outputs are still collected), as Coze Studio's."""

from __future__ import annotations

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.errors import NodeError


class LoopBreakNode(Node):
    type_id = "19"
    display_key = "Break"

    async def run(self, ctx: NodeContext) -> NodeResult:
        if ctx.scope is None:
            raise NodeError(f"break node '{self.title}' ({self.id}) must be inside a loop", node_id=self.id)
        ctx.scope.broke = True
        return NodeResult({})
