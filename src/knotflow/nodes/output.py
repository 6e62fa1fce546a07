"""Output / Message (13): shows the user a rendered template while the workflow goes on."""

from __future__ import annotations

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.dsl.canvas import NodeDef
from knotflow.nodes._answer import content_template, emit_answer, streaming_enabled


class OutputNode(Node):
    type_id = "13"
    display_key = "Message"

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        self.streaming = streaming_enabled(definition)
        self.template = content_template(definition)

    async def run(self, ctx: NodeContext) -> NodeResult:
        text = await emit_answer(self.template, self.params, ctx.inputs, ctx)
        return NodeResult({"output": text})
