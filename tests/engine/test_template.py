"""Coze templates: `{{a.b[0]}}`, skipped sources, unknown roots and missing paths render as Coze does."""

from __future__ import annotations

import pytest

from knotflow.contract import Template


@pytest.mark.parametrize(("text", "values", "expected"), [
    ("Hello, {{name}}!", {"name": "Ada"}, "Hello, Ada!"),
    ("{{ name }}", {"name": "Ada"}, "Ada"),
    ("{{obj.field1}}", {"obj": {"field1": ["1234", "5678"]}}, '["1234","5678"]'),
    ("{{items[1].n}}", {"items": [{"n": 1}, {"n": 2}]}, "2"),
    ("{{m[0][1]}}", {"m": [[1, 2]]}, "2"),
    ("{{n}}/{{f}}/{{b}}/{{z}}", {"n": 3, "f": 2.5, "b": True, "z": None}, "3/2.5/true/"),
    ("{{f}}", {"f": 100.0}, "100"),
    ("{{unknown}}", {"name": "x"}, "{{unknown}}"),
    ("{{obj.missing}}", {"obj": {}}, "obj.missing"),
    ("{{items[5]}}", {"items": [1]}, "items[5]"),
    ("{{obj}}", {"obj": {"中": "文"}}, '{"中":"文"}'),
    ("no placeholders", {}, "no placeholders"),
])
def test_render(text: str, values: dict[str, object], expected: str) -> None:
    assert Template.parse(text).render(values) == expected


def test_skipped_roots_render_as_nothing() -> None:
    assert Template.parse("[{{a}}][{{b}}]").render({"a": "x", "b": "y"}, skipped={"b"}) == "[x][]"


def test_roots() -> None:
    assert Template.parse("{{a.b}} {{c[0]}} {{a}}").roots == {"a", "c"}
