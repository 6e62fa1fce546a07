"""A run's parameters are converted at the API as Coze Studio converts them (`ConvertInputs` with FailFast: Go's
strconv and JSON rules; a value that does not fit is 4000 naming the parameter). Every conversion the README
states, through the real server and cozepy."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cozepy import Coze, CozeAPIError, TokenAuth

from tests import canvases as c
from tests.api.conftest import LiveServer

PARAMETERS = [("n", "integer"), ("f", "float"), ("b", "boolean"), ("s", "string"), ("o", "object")]


@pytest.fixture(scope="module")
def workflow_id(live: LiveServer) -> str:
    start = c.start(*PARAMETERS, {"name": "l", "type": "list", "schema": {"type": "integer"}, "required": False})
    end = c.end_return(**{name: c.ref("100001", name, type_) for name, type_ in PARAMETERS},
                       l=c.ref("100001", "l", "list"))
    return live.publish(c.canvas([start, end], [c.edge("100001", "900001")]))


@pytest.fixture(scope="module")
def coze(live: LiveServer, token: str) -> Coze:
    return Coze(auth=TokenAuth(token), base_url=live.base_url)


@pytest.mark.parametrize(("name", "given", "expected"), [
    ("n", 3.0, 3), ("n", 3.9, 3), ("n", "12", 12), ("n", -7, -7),  # a JSON float truncates (Go's int64(f))
    ("f", "1e2", 100), ("f", 2, 2), ("f", "3.0", 3),
    ("b", "true", True), ("b", "T", True), ("b", "1", True), ("b", "0", False), ("b", False, False),
    ("s", 1e-07, "0.0000001"), ("s", 3.0, "3"), ("s", True, "true"), ("s", {"a": 1.0}, '{"a":1}'),
    ("o", '{"k": [1]}', {"k": [1]}),
    ("l", ["1", 2.5], [1, 2]), ("l", "[3, \"4\"]", [3, 4]),
])
def test_parameters_that_convert(coze: Coze, workflow_id: str, name: str, given: Any, expected: Any) -> None:
    result = coze.workflows.runs.create(workflow_id=workflow_id, parameters={name: given})
    assert json.loads(result.data or "{}")[name] == expected


@pytest.mark.parametrize(("name", "given", "problem"), [
    ("n", "3.0", "field n is not integer (got '3.0')"),  # strconv.ParseInt: no decimal point, no exponent
    ("n", "1e2", "field n is not integer (got '1e2')"),
    ("n", True, "field n is not integer"),
    ("f", "abc", "field f is not number"),
    ("b", 1, "field b is not boolean"),  # a number is no boolean; "1" is
    ("b", "yes", "field b is not boolean"),
    ("o", "[1]", "field o is not object"),
    ("l", ["x"], "field l.0 is not integer"),
])
def test_parameters_that_do_not_fit_are_4000(coze: Coze, workflow_id: str, name: str, given: Any,
                                             problem: str) -> None:
    with pytest.raises(CozeAPIError) as caught:
        coze.workflows.runs.create(workflow_id=workflow_id, parameters={name: given})
    assert caught.value.code == 4000
    assert caught.value.msg.startswith(f"parameter '{name}': {problem}")


def test_a_misspelt_parameter_is_ignored_with_a_warning_on_the_trace(coze: Coze, workflow_id: str,
                                                                      live: LiveServer, token: str) -> None:
    import httpx

    result = coze.workflows.runs.create(workflow_id=workflow_id, parameters={"nn": 3, "s": "ok"})
    assert json.loads(result.data or "{}")["s"] == "ok"  # the run goes on, as in Coze
    with httpx.Client(base_url=live.base_url, headers={"Authorization": f"Bearer {token}"}) as http:
        trace = http.get("/work_flow", params={"execute_id": result.execute_id}).json()["data"]
    start = next(node for node in trace["nodes"] if node["node_id"] == "100001")
    assert start["warnings"] == ["parameter 'nn' is not declared by the Start node: ignored"]
    assert start["error_level"] == "Warn"
