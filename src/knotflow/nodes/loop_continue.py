"""Continue (29): inside a Loop's body, end the branch it is on; the iteration ends when its other branches have,
and the next one starts (as Coze Studio's, it passes its inputs through)."""

from __future__ import annotations

from knotflow.contract import Node, NodeContext, NodeResult


class LoopContinueNode(Node):
    type_id = "29"
    display_key = "Continue"

    async def run(self, ctx: NodeContext) -> NodeResult:
        return NodeResult(dict(ctx.inputs))
