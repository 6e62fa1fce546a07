"""Coze's `{{name.path[0]}}` templates, parsed once at compile time and rendered against a node's inputs.

Rendering follows Coze Studio (`nodes.Render`): a reference to an input that came from a skipped branch renders
as nothing; a root that names no input stays as written (`{{x}}`); a path that does not exist in the value renders
as the path text itself; null renders as nothing, strings as they are, and everything else as Studio's JSON
(the inputs are marshalled and read back as JSON numbers): a float as Go's JSON writes it (`1e-7`, `1e+21`,
`3`), objects with their keys sorted.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from knotflow.dsl.gojson import dumps
from knotflow.dsl.types import to_text

_PLACEHOLDER = re.compile(r"{{\s*([^}]+?)\s*}}")
_MISSING = object()


@dataclass(slots=True, frozen=True)
class Part:
    text: str
    root: str | None = None
    path: tuple[str | int, ...] = ()

    @property
    def is_variable(self) -> bool:
        return self.root is not None


def _parse_path(expression: str) -> tuple[str | int, ...] | None:
    path: list[str | int] = []
    for segment in expression.split("."):
        bracket = segment.find("[")
        if bracket == -1:
            path.append(segment)
            continue
        if bracket > 0:
            path.append(segment[:bracket])
        rest = segment[bracket:]
        while rest.startswith("["):
            close = rest.find("]")
            if close == -1 or not rest[1:close].strip().isdigit():
                return None
            path.append(int(rest[1:close]))
            rest = rest[close + 1 :]
        if rest:
            return None
    return tuple(path)


@dataclass(slots=True, frozen=True)
class Template:
    parts: tuple[Part, ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        parts: list[Part] = []
        last = 0
        for match in _PLACEHOLDER.finditer(text):
            if match.start() > last:
                parts.append(Part(text[last : match.start()]))
            expression = match.group(1)
            path = _parse_path(expression)
            if path and isinstance(path[0], str):
                parts.append(Part(expression, str(path[0]), path[1:]))
            else:
                parts.append(Part(expression))
            last = match.end()
        if last < len(text):
            parts.append(Part(text[last:]))
        return cls(tuple(parts))

    @property
    def roots(self) -> set[str]:
        return {part.root for part in self.parts if part.root is not None}

    def render_part(self, part: Part, values: Mapping[str, Any], skipped: Collection[str] = ()) -> str:
        if part.root is None:
            return part.text
        if part.root in skipped:
            return ""
        if part.root not in values:
            return "{{" + part.text + "}}"
        value = lookup(values[part.root], part.path)
        if value is _MISSING:
            return part.text
        return render_value(value)

    def render(self, values: Mapping[str, Any], skipped: Collection[str] = ()) -> str:
        return "".join(self.render_part(part, values, skipped) for part in self.parts)


def render_value(value: Any) -> str:
    """A value as Coze Studio's template shows it (`TemplatePart.Render`)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return dumps(value, sort_keys=True)
    except (TypeError, ValueError):  # NaN or infinity, which Go's encoder refuses: shown as strconv writes them
        return to_text(value)


def lookup(value: Any, path: tuple[str | int, ...]) -> Any:
    """Follow `path` into `value`; `_MISSING` when a step does not exist."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return _MISSING
            value = value[step]
        elif isinstance(value, dict) and step in value:
            value = value[step]
        else:
            return _MISSING
    return value


def is_missing(value: Any) -> bool:
    return value is _MISSING
