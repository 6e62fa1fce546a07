"""JSON deserialization (59): parse the `input` string into the declared `output` type.

Invalid JSON (or JSON of the wrong shape for an object / list output) fails the node. A value that does not
fit the declared type is a warning, not an error: Coze Studio's `nodes.Convert` makes it null (a scalar or
an object field) or drops it (a list element), and the node succeeds with the warnings on its trace entry
(dsl/convert.py, the conversion every node input goes through).
"""

from __future__ import annotations

from typing import Any

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.dsl import jsonutil
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.convert import DATA_TYPE_NAMES, Conversion, MissingRequired, check_required, convert
from knotflow.dsl.types import LIST, OBJECT
from knotflow.errors import CanvasError, NodeError

INPUT_KEY = "input"
OUTPUT_KEY = "output"


class JsonDeserializeNode(Node):
    type_id = "59"
    display_key = "FromJSON"

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        output = next((info for info in definition.outputs if info.name == OUTPUT_KEY), None)
        if output is None:
            raise CanvasError(
                f"node '{self.title}' ({self.id}): FromJSON needs an output named '{OUTPUT_KEY}'"
            )
        if output.type not in DATA_TYPE_NAMES:
            raise CanvasError(f"node '{self.title}' ({self.id}): unsupported output type {output.type!r}")
        self.output = output

    def _parse(self, text: str) -> Any:
        try:
            value = jsonutil.loads(text)
        except jsonutil.JSONDecodeError as exc:
            raise NodeError(f"JSON unmarshaling failed: {exc}", node_id=self.id) from exc
        # Go unmarshals into a map or a slice for these roots: other JSON (but null) is an error there.
        expected = {OBJECT: dict, LIST: list}.get(self.output.type)
        if expected is not None and value is not None and not isinstance(value, expected):
            raise NodeError(
                f"JSON unmarshaling failed: expected a JSON {'object' if expected is dict else 'array'}, "
                f"got {type(value).__name__}",
                node_id=self.id,
            )
        return value

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = ctx.inputs
        text = inputs.get(INPUT_KEY)
        if not isinstance(text, str):
            raise NodeError(f"input is not a string, got {type(text).__name__}", node_id=self.id)
        conv = Conversion()
        try:
            parsed = self._parse(text)
            if parsed is None and self.output.type == OBJECT:
                # Go decodes `null` into a nil map, which still has to carry the required fields.
                check_required(self.output, {}, OUTPUT_KEY)
            value = convert(parsed, self.output, OUTPUT_KEY, conv)
        except MissingRequired as exc:
            exc.node_id = self.id
            raise
        return NodeResult({OUTPUT_KEY: value}, warnings=conv.warnings or None)
