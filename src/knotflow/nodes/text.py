"""Text processing (15): concatenate a template, or split a string.

Canvas: `inputs.method` is `concat` or `split`.
- concat: `concatParams` holds `concatResult` (the `{{var}}` template over `inputParameters`) and
  `arrayItemConcatChar`. Any list a placeholder reaches, at the top or deep in a path, renders as its items
  joined with that separator (used verbatim: `\\n` in the canvas is a backslash and an n); everything else
  renders as in any Coze template. Output: `{output: string}`.
- split: `splitParams` holds `delimiters` (a list); the input parameter `String` is split on the first
  delimiter, then every piece on the next, and so on. Output: `{output: [string]}`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from knotflow.contract import Node, NodeContext, NodeResult, Template, lookup
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.gojson import dumps, json_float
from knotflow.dsl.values import Literal
from knotflow.errors import CanvasError, NodeError

CONCAT, SPLIT = "concat", "split"
OUTPUT_KEY = "output"
SPLIT_INPUT = "String"


def _go_print(value: Any) -> str:
    """Go's `%v` of a JSON-decoded value (how a list nested in a joined list prints)."""
    if value is None:
        return "<nil>"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json_float(value)  # a json.Number: the number as the JSON encoder wrote it
    if isinstance(value, list):
        return "[" + " ".join(_go_print(item) for item in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{key}:{_go_print(value[key])}" for key in sorted(value, key=str)) + "]"
    return str(value)


def join_items(items: list[Any], separator: str) -> str:
    """One list rendered by the concat template: nulls empty, objects as JSON, the rest as Go prints them."""
    parts = []
    for item in items:
        if item is None:
            parts.append("")
        elif isinstance(item, dict):
            parts.append(dumps(item))
        else:
            parts.append(_go_print(item))
    return separator.join(parts)


def render(template: Template, values: Mapping[str, Any], skipped: Collection[str], separator: str) -> str:
    pieces = []
    for part in template.parts:
        if part.root is not None and part.root not in skipped and part.root in values:
            value = lookup(values[part.root], part.path)
            if isinstance(value, list):
                pieces.append(join_items(value, separator))
                continue
        pieces.append(template.render_part(part, values, skipped))
    return "".join(pieces)


def split(text: str, separators: list[str]) -> list[str]:
    pieces = [text]
    for separator in separators:
        pieces = [piece for whole in pieces for piece in _go_split(whole, separator)]
    return pieces


def _go_split(text: str, separator: str) -> list[str]:
    # Go's strings.Split with an empty separator splits into characters (and "" into nothing).
    return list(text) if separator == "" else text.split(separator)


def _literal_text(definition: NodeDef, key: str, name: str) -> Any:
    param = next((p for p in definition.params(key) if p.name == name), None)
    if param is None:
        return None
    if not isinstance(param.source, Literal):
        raise ValueError(f"{key}.{name} must be a literal value")
    return param.source.value


class TextNode(Node):
    type_id = "15"
    display_key = "Text"

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        self.method = definition.inputs.get("method")
        try:
            if self.method == CONCAT:
                self._parse_concat(definition)
            elif self.method == SPLIT:
                self._parse_split(definition)
            else:
                raise ValueError(f"not supported method: {self.method!r} (expected 'concat' or 'split')")
        except ValueError as exc:
            raise CanvasError(f"node '{self.title}' ({self.id}): {exc}") from exc

    def _parse_concat(self, definition: NodeDef) -> None:
        template = _literal_text(definition, "concatParams", "concatResult")
        if not isinstance(template, str) or not template:
            raise ValueError("concat needs a template (concatParams.concatResult)")
        self.template = Template.parse(template)
        separator = _literal_text(definition, "concatParams", "arrayItemConcatChar")
        self.separator = separator if isinstance(separator, str) else ""

    def _parse_split(self, definition: NodeDef) -> None:
        delimiters = _literal_text(definition, "splitParams", "delimiters")
        if not isinstance(delimiters, list) or not delimiters:
            raise ValueError("split needs at least one delimiter (splitParams.delimiters)")
        if not all(isinstance(d, str) for d in delimiters):
            raise ValueError("split delimiters must be strings")
        self.separators: list[str] = delimiters

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = ctx.inputs
        if self.method == CONCAT:
            skipped = {param.name for param in self.params if ctx.is_skipped(param.source)}
            return NodeResult({OUTPUT_KEY: render(self.template, inputs, skipped, self.separator)})
        if SPLIT_INPUT not in inputs:
            raise NodeError(f"split needs an input parameter named '{SPLIT_INPUT}'", node_id=self.id)
        text = inputs[SPLIT_INPUT]
        if not isinstance(text, str):
            raise NodeError(
                f"input '{SPLIT_INPUT}' must be a string, got {type(text).__name__}", node_id=self.id
            )
        return NodeResult({OUTPUT_KEY: split(text, self.separators)})
