"""JSON serialization (58): the `input` value as a JSON string, as Coze Studio's Go encoder writes it."""

from __future__ import annotations

from typing import Any

from knotflow.dsl.gojson import dumps
from knotflow.errors import NodeError
from knotflow.nodes.base import Node, NodeContext, NodeResult, register

INPUT_KEY = "input"
OUTPUT_KEY = "output"


@register
class JsonSerializeNode(Node):
    type_id = "58"
    display_key = "ToJSON"

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> NodeResult:
        try:
            text = dumps(inputs.get(INPUT_KEY))
        except (TypeError, ValueError) as exc:
            raise NodeError(f"serialization error: {exc}", node_id=self.id) from exc
        return NodeResult({OUTPUT_KEY: text})
