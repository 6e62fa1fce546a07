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


HTTP_NODE_ID = "145000"
HTTP_OUTPUTS = [{"type": "string", "name": "body"}, {"type": "integer", "name": "statusCode"},
                {"type": "string", "name": "headers"}]


def http_request(url: str, method: str = "GET", *, headers: dict[str, dict[str, Any]] | None = None,
                 params: dict[str, dict[str, Any]] | None = None, auth: dict[str, Any] | None = None,
                 body: dict[str, Any] | None = None, setting: dict[str, Any] | None = None,
                 node_id: str = HTTP_NODE_ID, **inputs: Any) -> dict[str, Any]:
    """An HTTP request node (45) as Coze Studio's editor saves it; `inputs` adds e.g. settingOnError."""
    return node(node_id, "45", "HTTP", inputParameters=[], outputs=HTTP_OUTPUTS, inputs={
        "apiInfo": {"method": method, "url": url},
        "headers": [param(name, source) for name, source in (headers or {}).items()],
        "params": [param(name, source) for name, source in (params or {}).items()],
        "auth": auth or {"authOpen": False, "authType": "BEARER_AUTH", "authData": {}},
        "body": body or {"bodyType": "EMPTY", "bodyData": {}},
        "setting": setting if setting is not None else {"timeout": 120, "retryTimes": 3},
        **inputs,
    })


def http_workflow(http_node: dict[str, Any], *start_params: tuple[str, str] | dict[str, Any]) -> dict[str, Any]:
    """Start(params) → the HTTP node → End({body, statusCode, headers} of the HTTP node)."""
    node_id = http_node["id"]
    return canvas([start(*start_params), http_node,
                   end_return(body=ref(node_id, "body"), statusCode=ref(node_id, "statusCode", "integer"),
                              headers=ref(node_id, "headers"))],
                  [edge("100001", node_id), edge(node_id, "900001")])


CODE_NODE_ID = "150000"


def code_node(source: str, language: int = 3, *, outputs: list[dict[str, Any]] | None = None,
              node_id: str = CODE_NODE_ID, params: dict[str, dict[str, Any]] | None = None,
              **inputs: Any) -> dict[str, Any]:
    """A Code node (5) as Coze Studio's editor saves it (language 3 Python, 5 JavaScript); `inputs` adds e.g.
    settingOnError. Outputs default to one string `out`."""
    return node(node_id, "5", "Code", outputs=outputs if outputs is not None else [{"name": "out", "type": "string"}],
                inputs={"code": source, "language": language,
                        "inputParameters": [param(name, value) for name, value in (params or {}).items()],
                        **inputs})


def code_workflow(code: dict[str, Any], *start_params: tuple[str, str] | dict[str, Any]) -> dict[str, Any]:
    """Start(params) → the Code node → End returning each of its declared outputs."""
    node_id = code["id"]
    returned = {info["name"]: ref(node_id, info["name"], info["type"]) for info in code["data"]["outputs"]}
    return canvas([start(*start_params), code, end_return(**returned)],
                  [edge("100001", node_id), edge(node_id, "900001")])


# Code that doubles its text input `input` into the output `out`, as Coze Studio's editors write Python and TypeScript.
PY_DOUBLE = """
async def main(args: Args) -> Output:
    params = args.params
    ret: Output = {"out": params['input'] + params['input']}
    return ret
"""
JS_DOUBLE = """
async function main({ params }: Args): Promise<Output> {
  const ret = { out: params.input + params.input };
  return ret;
}
"""


def code_on_input(source: str, language: int = 3, outputs: list[dict[str, Any]] | None = None,
                  **inputs: Any) -> dict[str, Any]:
    """Start(input: string) → a Code node given `input` → End returning the Code node's outputs."""
    code = code_node(source, language, outputs=outputs, params={"input": ref("100001", "input")}, **inputs)
    return code_workflow(code, ("input", "string"))


def variable(source: str, name: str, type_: str = "string", **schema: Any) -> dict[str, Any]:
    """A reference to a global variable: `source` "app", "user" or "system" (global_variable_<source>)."""
    return {"type": type_, **schema, "value": {"type": "ref", "content": {
        "source": f"global_variable_{source}", "path": name.split("."), "blockID": "", "name": ""}}}


def assign(node_id: str, *pairs: tuple[dict[str, Any], dict[str, Any]], **inputs: Any) -> dict[str, Any]:
    """A Variable assign node (40): each pair is (the variable's reference, the value); `inputs` adds e.g.
    settingOnError."""
    parameters = [{"name": left["value"]["content"]["path"][0], "left": left, "input": value}
                  for left, value in pairs]
    return node(node_id, "40", "Assign", outputs=[{"name": "isSuccess", "type": "boolean"}],
                inputs={"inputParameters": parameters, **inputs})
