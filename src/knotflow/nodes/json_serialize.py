"""JSON serialization (58): the `input` value as a JSON string, as Coze Studio's Go encoder writes it."""

from __future__ import annotations

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.dsl.gojson import dumps
from knotflow.errors import NodeError

INPUT_KEY = "input"
OUTPUT_KEY = "output"


class JsonSerializeNode(Node):
    type_id = "58"
    display_key = "ToJSON"

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = ctx.inputs
        try:
            text = dumps(inputs.get(INPUT_KEY))
        except (TypeError, ValueError) as exc:
            raise NodeError(f"serialization error: {exc}", node_id=self.id) from exc
        return NodeResult({OUTPUT_KEY: text})
