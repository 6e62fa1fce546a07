"""Variable assign (40): write app and user variables, as Coze Studio's VariableAssigner.

Each `inputParameters` entry pairs `left`, a reference to the variable (`global_variable_app` or
`global_variable_user`, a top-level name), with `input`, the value. The pairs are written in order through the
run's variables service, each stored at once (converted to the variable's declared type); the output is
`{"isSuccess": true}`. A failure (an undeclared variable, a value that does not fit) fails the node, and its
settingOnError applies. Unlike Coze Studio, whose app variables keep an assignment only for the rest of the run,
knotflow stores app variables too.

The node's inputs are named by the variables' names, as Studio's are.
"""

from __future__ import annotations

from dataclasses import dataclass

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.dsl.canvas import NodeDef, Param
from knotflow.dsl.values import BLOCK_OUTPUT, Ref, parse_block_input
from knotflow.errors import CanvasError, NodeError

WRITABLE = ("global_variable_app", "global_variable_user")
SYSTEM = "global_variable_system"
VARIABLE_ERROR = 777777764  # Coze Studio's ErrVariablesAPIFail
INPUT_MISSING = 777777763  # Coze Studio's ErrInputFieldMissing


@dataclass(frozen=True, slots=True)
class Assignment:
    source: str  # global_variable_app | global_variable_user
    variable: str


class VariableAssignNode(Node):
    type_id = "40"
    display_key = "AssignVariable"

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        self.assignments: list[Assignment] = []
        params: list[Param] = []
        entries = definition.inputs.get("inputParameters")
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, dict):
                continue
            left, _ = parse_block_input(entry.get("left"))
            if entry.get("left") is None or entry.get("input") is None:
                raise self._refused(f"its assignment {index + 1} lacks its variable (left) or its value (input)")
            if not isinstance(left, Ref) or left.source == BLOCK_OUTPUT:
                raise self._refused(f"assignment {index + 1} does not name a variable (app or user variables can "
                                    "be assigned, not node outputs)")
            if left.source == SYSTEM:
                raise self._refused(f"system variables are read-only ({'.'.join(left.path)})")
            if left.source not in WRITABLE:
                raise self._refused(f"it cannot assign {left.source} variables (a loop's variables are set by "
                                    "Set variable)")
            if not left.path:
                raise self._refused(f"assignment {index + 1} names no variable (its path is empty)")
            if len(left.path) != 1:
                raise self._refused(f"it can only assign a top-level variable, not {'.'.join(left.path)}")
            variable = left.path[0]
            source, value_type = parse_block_input(entry["input"])
            value_type.name = variable
            params.append(Param(variable, source, value_type))
            self.assignments.append(Assignment(left.source, variable))
        self.params = params

    def _refused(self, reason: str) -> CanvasError:
        return CanvasError(f"variable assign node '{self.title}' ({self.id}): {reason}")

    async def run(self, ctx: NodeContext) -> NodeResult:
        variables = ctx.services.variables
        if variables is None:
            raise NodeError("this run has no variables service to assign variables with",
                            internal_code=VARIABLE_ERROR, node_id=self.id)
        for assignment in self.assignments:
            value = ctx.inputs.get(assignment.variable)
            if value is None:
                raise NodeError(f"input field {assignment.variable} not found", internal_code=INPUT_MISSING,
                                node_id=self.id)
            await variables.assign(assignment.source, assignment.variable, value)
        return NodeResult({"isSuccess": True})
