"""Comment (31): a sticky note on the canvas; the engine ignores it."""

from __future__ import annotations

from knotflow.contract import Node, NodeContext, NodeResult


class CommentNode(Node):
    type_id = "31"
    display_key = "Comment"
    executable = False

    async def run(self, ctx: NodeContext) -> NodeResult:
        return NodeResult({})
