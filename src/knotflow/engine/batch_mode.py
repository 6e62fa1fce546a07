"""A node in batch mode (`inputs.batch.batchEnable`: an LLM, a Sub-workflow... run once per item of lists) is a
Batch node with that node as its body, as Coze Studio rewrites it (`canvas/adaptor/to_schema.go::parseBatchMode`):

- the Batch keeps the node's id and title; its arrays are `batch.inputLists`, its `batchSize` and
  `concurrentSize` those of `batch`; its one output, named as the node's one declared output (a list of
  objects), collects each item's whole output;
- the node itself becomes `<id>_inner` (title `<title>_inner`) inside it, its outputs the fields of that list's
  objects, its error policy applying per item; its inputs' references to `<id>` (`item1`, `item1.output`) read
  the current item.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from knotflow.dsl.canvas import EdgeDef, NodeDef
from knotflow.errors import CanvasError

BATCH_TYPE = "28"
INNER_SUFFIX = "_inner"


def _literal_integer(value: Any) -> dict[str, Any]:
    return {"type": "integer", "value": {"type": "literal", "content": str(value if value is not None else 0)}}


def expand_batch_mode(definition: NodeDef) -> NodeDef:
    """The node as Coze Studio runs it: a Batch around it when batch mode is on, else unchanged."""
    if definition.blocks:
        return replace(definition, blocks=[expand_batch_mode(inner) for inner in definition.blocks])
    batch = definition.inputs.get("batch")
    if not isinstance(batch, dict) or batch.get("batchEnable") is not True:
        return definition
    label = f"node '{definition.title}' ({definition.id})"
    outputs = definition.data.get("outputs")
    if not isinstance(outputs, list) or len(outputs) != 1 or not isinstance(outputs[0], dict):
        count = len(outputs) if isinstance(outputs, list) else 0
        raise CanvasError(f"{label}: node batch mode output should be one list, actual count: {count}")
    output = outputs[0]
    if output.get("type") != "list":
        raise CanvasError(f"{label}: node batch mode output should be list, actual type: {output.get('type')}")
    element: dict[str, Any] = output["schema"] if isinstance(output.get("schema"), dict) else {}
    if element.get("type") != "object":
        raise CanvasError(f"{label}: node batch mode output element should be object, actual type: "
                          f"{element.get('type')}")
    inner_id = definition.id + INNER_SUFFIX
    inner_data = copy.deepcopy(definition.data)
    inner_data["inputs"] = {key: value for key, value in inner_data.get("inputs", {}).items() if key != "batch"}
    inner_data["outputs"] = element.get("schema") or []
    inner_data.setdefault("nodeMeta", {})["title"] = definition.title + INNER_SUFFIX
    inner = NodeDef(inner_id, definition.type, definition.title + INNER_SUFFIX, inner_data)
    batch_data = {
        "nodeMeta": definition.data.get("nodeMeta") or {"title": definition.title},
        "inputs": {
            "inputParameters": batch.get("inputLists") or [],
            "batchSize": _literal_integer(batch.get("batchSize")),
            "concurrentSize": _literal_integer(batch.get("concurrentSize")),
        },
        "outputs": [{"name": output.get("name"), "type": "list", "schema": element,
                     "input": {"type": "list", "schema": element, "value": {"type": "ref", "content": {
                         "source": "block-output", "blockID": inner_id, "name": ""}}}}],
    }
    edges = [EdgeDef(definition.id, inner_id, "batch-function-inline-output"),
             EdgeDef(inner_id, definition.id, "", "batch-function-inline-input")]
    return NodeDef(definition.id, BATCH_TYPE, definition.title, batch_data, [inner], edges)
