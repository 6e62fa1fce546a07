"""The HTTP request node's URL and body templates, as Coze Studio reads them: a placeholder names its own value
(`{{block_output_<node id>.<field path>}}`, `{{global_variable_<scope>["name"]}}` — "implicit dependencies"), each
an input of the node named by the MD5 of the placeholder; any other placeholder stays as written.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from knotflow.contract import Template, is_missing, lookup
from knotflow.contract.template import Part
from knotflow.dsl.canvas import Param
from knotflow.dsl.gojson import dumps, json_float
from knotflow.dsl.types import LIST, STRING, TypeInfo, to_text
from knotflow.dsl.values import BLOCK_OUTPUT, GLOBAL_SOURCES, Ref
from knotflow.errors import CanvasError

_PLACEHOLDER = re.compile(r"\{\{(.*?)}}")  # what Studio extracts as a template's variables (not trimmed)
_GLOBAL_VARIABLE = re.compile(r'global_variable_\w+\s*\["(.*?)"]')
_GLOBAL_SPELLING = re.compile(r'global_variable_(\w+)\["(\w+)"]')  # rewritten to a path before rendering


def md5_name(prefix: str, text: str) -> str:
    return prefix + hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class Variable:
    """A value a template names itself: the input holding it, and where it sits in the template's values."""

    param: Param
    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImplicitTemplate:
    """A URL or body template with the implicit inputs its placeholders need."""

    template: Template
    variables: tuple[Variable, ...]

    @classmethod
    def parse(cls, text: str, prefix: str, where: str) -> ImplicitTemplate:
        variables: dict[str, Variable] = {}
        for expression in _PLACEHOLDER.findall(text):
            name = md5_name(prefix, expression)
            if name not in variables:
                variable = _implicit_variable(expression, name, where)
                if variable is not None:
                    variables[name] = variable
        adapted = _GLOBAL_SPELLING.sub(r"global_variable_\1.\2", text)
        return cls(Template.parse(adapted), tuple(variables.values()))

    @property
    def params(self) -> list[Param]:
        return [variable.param for variable in self.variables]

    def render(self, value_of: Callable[[Param], Any]) -> str:
        values: dict[str, Any] = {}
        for variable in self.variables:
            _set_path(values, variable.path, value_of(variable.param))
        return "".join(_render_part(part, values) for part in self.template.parts)


def _render_part(part: Part, values: dict[str, Any]) -> str:
    if part.root is None:
        return part.text
    value = lookup(values[part.root], part.path) if part.root in values else None
    if part.root not in values or is_missing(value):
        return "{{" + part.text + "}}"  # Studio leaves a placeholder it cannot fill as written
    return template_text(value)


def _implicit_variable(expression: str, name: str, where: str) -> Variable | None:
    if expression.startswith("block_output_"):
        node_id, *fields = expression.removeprefix("block_output_").split(".")
        if not fields:
            raise CanvasError(f"{where}: invalid block_output_ variable: {expression}")
        # The reference reads the fields up to the first index; the template indexes into what it read.
        path: list[str] = []
        indexed = False
        for field in fields:
            head, bracket, _ = field.partition("[")
            if head:
                path.append(head)
            if bracket:
                indexed = True
                break
        info = TypeInfo(type=LIST if indexed else STRING, name=name)
        param = Param(name, Ref(BLOCK_OUTPUT, node_id, tuple(path)), info)
        return Variable(param, (f"block_output_{node_id}", *path))
    if expression.startswith("global_variable_"):
        match = _GLOBAL_VARIABLE.search(expression)
        if match is None:
            return None
        scope = next((s for s in sorted(GLOBAL_SOURCES) if expression.startswith(s)), None)
        if scope is None:
            raise CanvasError(f"{where}: invalid global variable type: {expression}")
        param = Param(name, Ref(scope, "", (match.group(1),)), TypeInfo(type=STRING, name=name))
        return Variable(param, (scope, match.group(1)))
    return None


def _set_path(values: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        child = values.get(key)
        if not isinstance(child, dict):
            child = values[key] = {}
        values = child
    values[path[-1]] = value


def template_text(value: Any) -> str:
    """A value in a Studio template: text as it is, null as nothing, numbers as JSON writes them, objects and
    lists as JSON with sorted keys."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        try:
            return json_float(value)
        except ValueError:
            return to_text(value)
    if isinstance(value, bool | int):
        return to_text(value)
    return dumps(_sorted_keys(value))


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value
