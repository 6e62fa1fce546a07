"""Answers asked for as JSON (the LLM node's JSON format, the Question node's field extraction): the schema of
the declared fields, and the fields read back from a model's answer."""

from __future__ import annotations

import re
from typing import Any

from knotflow.dsl import jsonutil
from knotflow.dsl.convert import coerce
from knotflow.dsl.types import BOOLEAN, FLOAT, INTEGER, LIST, OBJECT, STRING, TypeInfo, TypeMismatch

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)\n?\s*```", re.DOTALL)
_JSON_TYPES = {STRING: "string", INTEGER: "integer", FLOAT: "number", BOOLEAN: "boolean", OBJECT: "object",
               LIST: "array"}


def json_schema(fields: dict[str, TypeInfo]) -> dict[str, Any]:
    """The JSON schema of the declared outputs, as Coze's TypeInfoToJSONSchema describes them."""

    def one(info: TypeInfo) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": _JSON_TYPES.get(info.type, "string")}
        if info.description:
            schema["description"] = info.description
        if info.type == OBJECT and info.properties:
            schema.update(json_schema(info.properties))
        if info.type == LIST and info.element is not None:
            schema["items"] = one(info.element)
        return schema

    return {"type": "object", "properties": {name: one(info) for name, info in fields.items()},
            "required": [name for name, info in fields.items() if info.required]}


def extract_json(text: str) -> str:
    """The JSON object in a model's answer: inside a ``` fence if there is one, else first `{` to last `}`."""
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    text = text.strip()
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        return text[start : end + 1]
    return text


def parse_json_answer(text: str, fields: dict[str, TypeInfo]) -> dict[str, Any]:
    """The declared fields from the answer, converted to their types. ValueError when it does not fit."""
    try:
        value = jsonutil.loads(extract_json(text))
    except jsonutil.JSONDecodeError as exc:
        raise ValueError(f"the answer is not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise ValueError("the answer is JSON but not an object")
    result: dict[str, Any] = {}
    for name, info in fields.items():
        if name in value:
            try:
                result[name] = coerce(value[name], info)
            except TypeMismatch as exc:
                raise ValueError(f"field {name!r}: {exc}") from exc
    return result
