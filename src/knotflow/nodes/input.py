"""Input (30): pause the run with a form; the answer (JSON of field → value) becomes the node's outputs."""

from __future__ import annotations

from typing import Any

from knotflow.contract import InterruptRequest, Node, NodeContext, NodeInterrupt, NodeResult
from knotflow.dsl import jsonutil
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.convert import coerce
from knotflow.dsl.types import LIST, OBJECT, TypeInfo, TypeMismatch
from knotflow.errors import BadRequest, CanvasError

INTERRUPT_INPUT = 5


def _fill_declared(value: Any, info: TypeInfo) -> Any:
    """Coze gives every declared object field a value: absent ones are null, at any depth."""
    if value is None:
        return None
    if info.type == OBJECT and isinstance(value, dict) and info.properties:
        filled = dict(value)
        for name, prop in info.properties.items():
            filled[name] = _fill_declared(filled.get(name), prop)
        return filled
    if info.type == LIST and isinstance(value, list) and info.element is not None:
        return [_fill_declared(item, info.element) for item in value]
    return value


class InputNode(Node):
    type_id = "30"
    display_key = "Input"

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        schema = definition.inputs.get("outputSchema")
        if isinstance(schema, str) and schema.strip():
            try:
                raw_fields = jsonutil.loads(schema)
            except jsonutil.JSONDecodeError as exc:
                raise CanvasError(f"input node '{self.title}' ({self.id}): outputSchema is not JSON") from exc
            self.fields = TypeInfo.parse_list(raw_fields)
            self.schema_text = schema
        else:
            self.fields = definition.outputs
            self.schema_text = jsonutil.dumps(definition.data.get("outputs") or [])
        self.form = jsonutil.dumps({"content": self.schema_text, "content_type": "form_schema"})

    def parse_answer(self, answer: str) -> dict[str, Any]:
        try:
            given = jsonutil.loads(answer) if answer.strip() else {}
        except jsonutil.JSONDecodeError as exc:
            raise BadRequest(f"resume_data for an input node must be a JSON object of field → value ({exc})") from exc
        if not isinstance(given, dict):
            raise BadRequest("resume_data for an input node must be a JSON object of field → value")
        values: dict[str, Any] = {}
        for field in self.fields:
            value = given.get(field.name)
            if value is None or value == "":
                if field.required:
                    raise BadRequest(f"the form field '{field.name}' is required")
                values[field.name] = None
                continue
            try:
                values[field.name] = _fill_declared(coerce(value, field), field)
            except TypeMismatch as exc:
                raise BadRequest(f"the form field '{field.name}' ({field.type}): {exc}") from exc
        return values

    def check_resume(self, answer: str) -> None:
        self.parse_answer(answer)

    async def run(self, ctx: NodeContext) -> NodeResult:
        answer = ctx.resume_data
        if answer is None:
            raise NodeInterrupt(InterruptRequest(INTERRUPT_INPUT, self.form))
        return NodeResult(self.parse_answer(answer))
