"""The answer template shared by the Output node and the End node in answer mode."""

from __future__ import annotations

from typing import Any

from knotflow.dsl.canvas import NodeDef, Param
from knotflow.dsl.values import Literal, parse_block_input
from knotflow.engine.template import Template
from knotflow.nodes.base import NodeContext


def content_template(definition: NodeDef) -> Template:
    raw = definition.inputs.get("content")
    if isinstance(raw, str):
        return Template.parse(raw)
    source, _ = parse_block_input(raw)
    text = source.value if isinstance(source, Literal) else ""
    return Template.parse(text if isinstance(text, str) else "")


def streaming_enabled(definition: NodeDef) -> bool:
    return bool(definition.inputs.get("streamingOutput", False))


def render_answer(template: Template, params: list[Param], inputs: dict[str, Any], ctx: NodeContext) -> str:
    skipped = {param.name for param in params if ctx.is_skipped(param.source)}
    return template.render(inputs, skipped)
