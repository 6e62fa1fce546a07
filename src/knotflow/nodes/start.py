"""Start (1): the workflow's parameters, typed by the node's declared outputs, with their default values.

The caller's parameters are converted as Coze Studio converts them at the API (`ConvertInputs` with FailFast):
Go's strconv and JSON rules, and a value that does not fit is a 4000 naming the parameter, not a null.
"""

from __future__ import annotations

from typing import Any

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.dsl import jsonutil
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.convert import MissingRequired, coerce
from knotflow.dsl.types import TypeInfo, TypeMismatch, is_empty
from knotflow.errors import BadRequest


class StartNode(Node):
    type_id = "1"
    display_key = "Start"

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        self.parameters: list[TypeInfo] = definition.outputs
        for info in self.parameters:
            if info.default is not None and not (isinstance(info.default, str) and info.default == ""):
                try:
                    info.default = coerce(info.default, info)
                except (TypeMismatch, MissingRequired) as exc:
                    raise BadRequest(f"the default value of parameter '{info.name}' is invalid: {exc}") from exc
            else:
                info.default = None

    def prepare(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Validate and type the caller's parameters; raise BadRequest naming the first bad one."""
        values: dict[str, Any] = {}
        for info in self.parameters:
            given = parameters.get(info.name)
            if not is_empty(given):
                try:
                    given = coerce(given, info)
                except (TypeMismatch, MissingRequired) as exc:
                    shown = given if isinstance(given, str) else jsonutil.dumps(given)
                    shown = repr(shown[:60] + "…" if len(shown) > 60 else shown)
                    raise BadRequest(f"parameter '{info.name}': {exc.args[0]} (got {shown})") from exc
            if is_empty(given):
                if info.default is not None:
                    values[info.name] = info.default
                elif info.required:
                    raise BadRequest(f"missing required parameter '{info.name}' ({info.type})")
                continue
            values[info.name] = given
        return values

    def undeclared(self, parameters: dict[str, Any]) -> list[str]:
        """Warnings for parameters the node does not declare (a misspelt name): ignored, as Coze ignores them."""
        declared = {info.name for info in self.parameters}
        return [f"parameter '{name}' is not declared by the Start node: ignored" for name in parameters
                if name not in declared]

    async def run(self, ctx: NodeContext) -> NodeResult:
        return NodeResult(ctx.inputs)
