"""End (2): the workflow's result, as returned variables or as a rendered answer (`useAnswerContent`)."""

from __future__ import annotations

from knotflow.contract import Node, NodeContext, NodeResult, settled
from knotflow.dsl import jsonutil
from knotflow.dsl.canvas import NodeDef
from knotflow.nodes._answer import content_template, emit_answer, streaming_enabled

RETURN_VARIABLES = "returnVariables"
USE_ANSWER_CONTENT = "useAnswerContent"


class EndNode(Node):
    type_id = "2"
    display_key = "End"

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        plan = definition.inputs.get("terminatePlan") or RETURN_VARIABLES
        if plan not in (RETURN_VARIABLES, USE_ANSWER_CONTENT):
            raise ValueError(f"unknown terminatePlan {plan!r}")
        self.answer_mode = self.answers = plan == USE_ANSWER_CONTENT
        self.streaming = self.answer_mode and streaming_enabled(definition)
        self.template = content_template(definition) if self.answer_mode else None

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = ctx.inputs
        if self.template is None:
            ctx.emit_message(jsonutil.dumps(inputs), True, ctx.usage)
            return NodeResult(inputs)
        answer = await emit_answer(self.template, self.params, inputs, ctx, ctx.usage)
        outputs = {name: await settled(value) for name, value in inputs.items()}
        return NodeResult(outputs, answer=answer)
