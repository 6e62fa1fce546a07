"""Small Coze canvases built in code for tests (the shapes Coze Studio saves)."""

from __future__ import annotations

from typing import Any


def ref(block_id: str, name: str, type_: str = "string") -> dict[str, Any]:
    return {"type": type_, "value": {"type": "ref", "content": {"source": "block-output", "blockID": block_id,
                                                                 "name": name}}}


def literal(value: Any, type_: str = "string") -> dict[str, Any]:
    return {"type": type_, "value": {"type": "literal", "content": value}}


def param(name: str, block_input: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "input": block_input}


def node(node_id: str, type_id: str, title: str, **data: Any) -> dict[str, Any]:
    return {"id": node_id, "type": type_id, "meta": {"position": {"x": 0, "y": 0}},
            "data": {"nodeMeta": {"title": title}, **data}}


def start(*params: tuple[str, str] | dict[str, Any]) -> dict[str, Any]:
    outputs = [p if isinstance(p, dict) else {"name": p[0], "type": p[1], "required": False} for p in params]
    return node("100001", "1", "Start", outputs=outputs)


def end_return(**outputs: dict[str, Any]) -> dict[str, Any]:
    return node("900001", "2", "End", inputs={
        "terminatePlan": "returnVariables",
        "inputParameters": [param(name, source) for name, source in outputs.items()],
    })


def end_answer(template: str, streaming: bool = False, **inputs: dict[str, Any]) -> dict[str, Any]:
    return node("900001", "2", "End", inputs={
        "terminatePlan": "useAnswerContent",
        "streamingOutput": streaming,
        "content": literal(template),
        "inputParameters": [param(name, source) for name, source in inputs.items()],
    })


def output(node_id: str, template: str, title: str = "Output", streaming: bool = False,
           **inputs: dict[str, Any]) -> dict[str, Any]:
    return node(node_id, "13", title, inputs={
        "streamingOutput": streaming,
        "content": literal(template),
        "inputParameters": [param(name, source) for name, source in inputs.items()],
    })


def edge(source: str, target: str, port: str = "") -> dict[str, Any]:
    item = {"sourceNodeID": source, "targetNodeID": target}
    if port:
        item["sourcePortID"] = port
    return item


def canvas(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, Any]:
    return {"nodes": nodes, "edges": edges, "versions": {"loop": "v2"}}


def echo() -> dict[str, Any]:
    """Start(input) → End({output: input})."""
    return canvas([start(("input", "string")), end_return(output=ref("100001", "input"))],
                  [edge("100001", "900001")])


def greeting() -> dict[str, Any]:
    """Start(name) → Output('Hello, {{name}}!') → End({output: name})."""
    return canvas(
        [start(("name", "string")), output("135000", "Hello, {{name}}!", name=ref("100001", "name")),
         end_return(output=ref("100001", "name"))],
        [edge("100001", "135000"), edge("135000", "900001")],
    )
