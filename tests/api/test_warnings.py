"""A run's trace (`GET /work_flow`, the debug_url) shows each node's warnings and Coze's error level."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests import canvases as c
from tests.api.conftest import LiveServer


def warning_canvas() -> dict[str, Any]:
    """Start → FromJSON (its `int` declared a boolean) → If (`n` declared an integer is empty) → End."""
    from_json = c.node("500", "59", "FromJSON", inputs={"inputParameters": [c.param("input", c.ref("100001", "s"))]},
                       outputs=[{"name": "output", "type": "object",
                                 "schema": [{"name": "int", "type": "boolean"}, {"name": "text", "type": "string"}]}])
    is_empty = {"operator": 9, "left": {"input": c.ref("100001", "n", "integer")}}
    selector = c.node("600", "8", "If", inputs={"branches": [{"condition": {"logic": 2, "conditions": [is_empty]}}]})
    end = c.end_return(output=c.ref("500", "output"))
    return c.canvas(
        [c.start(("s", "string"), ("n", "string")), from_json, selector, end],
        [c.edge("100001", "500"), c.edge("500", "600"), c.edge("600", "900001", "true"),
         c.edge("600", "900001", "false")],
    )


def test_the_trace_shows_node_warnings(live: LiveServer, http: httpx.Client) -> None:
    workflow_id = live.publish(warning_canvas(), name="warnings")
    ran = http.post("/v1/workflow/run", json={"workflow_id": workflow_id,
                                              "parameters": {"s": '{"int": 123, "text": "hi"}', "n": "many"}}).json()
    assert ran["code"] == 0, ran
    assert json.loads(ran["data"]) == {"output": '{"int":null,"text":"hi"}'}  # End declares a string

    trace = http.get("/work_flow", params={"execute_id": ran["execute_id"]}).json()
    assert trace["code"] == 0, trace
    nodes = {node["node_id"]: node for node in trace["data"]["nodes"]}
    assert (nodes["500"]["status"], nodes["500"]["error_level"], nodes["500"]["warnings"]) == (
        "Success", "Warn", ["field output.int is not boolean"])
    assert (nodes["600"]["error_level"], nodes["600"]["warnings"]) == ("Warn", ["field left is not integer"])
    assert json.loads(nodes["600"]["outputs"]) == {"result": "pass to condition 1 branch"}
    assert (nodes["900001"]["error_level"], nodes["900001"]["warnings"]) == ("", [])
