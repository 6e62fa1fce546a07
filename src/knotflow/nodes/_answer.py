"""The answer template shared by the Output node and the End node in answer mode."""

from __future__ import annotations

from typing import Any

from knotflow.contract import LateValue, NodeContext, Template, TextStream, Usage
from knotflow.dsl.canvas import NodeDef, Param
from knotflow.dsl.values import Literal, parse_block_input


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


async def emit_answer(
    template: Template, params: list[Param], inputs: dict[str, Any], ctx: NodeContext, usage: Usage | None = None
) -> str:
    """Show the rendered answer; a streamed input is shown chunk by chunk as it comes, in template order.

    Text before a streamed reference goes out first, each chunk as it arrives (`node_is_finish` false), and the
    rest of the template after the last chunk, in a final message with `node_is_finish` true. An input not known
    yet (the node started before it: several streamed inputs) is waited for where the template reaches it, after
    the text before it has gone out; an input from a skipped node renders as nothing.
    """
    if not any(isinstance(value, TextStream | LateValue) for value in inputs.values()):
        text = render_answer(template, params, inputs, ctx)
        ctx.emit_message(text, True, usage)
        return text
    sources = {param.name: param.source for param in params}
    sent: list[str] = []
    pending = ""
    for part in template.parts:
        value = inputs.get(part.root) if part.root is not None else None
        if isinstance(value, LateValue):
            if pending:
                ctx.emit_message(pending, False)
                sent.append(pending)
                pending = ""
            value = inputs[str(part.root)] = await value.get()
        skipped = part.root in sources and ctx.is_skipped(sources[str(part.root)])
        if isinstance(value, TextStream) and not part.path and not skipped:
            if pending:
                ctx.emit_message(pending, False)
                sent.append(pending)
                pending = ""
            async for chunk in value.chunks():
                ctx.emit_message(chunk, False)
                sent.append(chunk)
        else:
            values = {part.root: str(value) if isinstance(value, TextStream) else value} \
                if part.root in inputs else {}
            pending += template.render_part(part, values, {part.root} if skipped and part.root else ())
    ctx.emit_message(pending, True, usage)
    sent.append(pending)
    return "".join(sent)
