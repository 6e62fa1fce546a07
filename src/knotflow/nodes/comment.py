"""Comment (31): a sticky note on the canvas; the engine ignores it."""

from __future__ import annotations

from typing import Any

from knotflow.nodes.base import Node, NodeContext, NodeResult, register


@register
class CommentNode(Node):
    type_id = "31"
    display_key = "Comment"
    executable = False

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> NodeResult:
        return NodeResult({})
