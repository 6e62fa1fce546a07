"""The Code node (5) through the real engine and the server's real code runner (real sandboxes, nothing faked):
Coze's wrappers, conversion of what `main` returns (Coze Studio's code_test.go cases), zero-filled inputs and
null-filled outputs, Studio's import check at compile time, and each failure as Studio's 305000002 under the
node's settingOnError."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from knotflow.config import Settings
from knotflow.contract import CodeFailed, CodeRequest, CodeResult, RunServices
from knotflow.engine.events import Event, NodeFinished, RunResult
from knotflow.engine.runner import Execution
from knotflow.errors import KnotflowError, NodeError
from knotflow.nodes.start import StartNode
from knotflow.service.code import CodeService
from tests import canvases as c
from tests.node_types import compile_canvas

pytestmark = pytest.mark.asyncio(loop_scope="module")
CODE = c.CODE_NODE_ID
FAILED = "Function execution failed, please check the code of the function. Detail: "


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def runner() -> AsyncIterator[CodeService]:
    service = CodeService(Settings(code_python_workers=1, code_js_workers=1, code_timeout=3.0))
    try:
        yield service
    finally:
        await service.close()


async def run(runner: Any, canvas: dict[str, Any], params: dict[str, Any] | None = None
              ) -> tuple[RunResult | None, KnotflowError | None, dict[str, NodeFinished]]:
    plan = compile_canvas(canvas)
    assert isinstance(plan.entry, StartNode)
    events: list[Event] = []
    try:
        result = await Execution(plan, sink=events.append, services=RunServices(code=runner)).run(
            plan.entry.prepare(params or {}))
    except KnotflowError as exc:
        return None, exc, _finished(events)
    return result, None, _finished(events)


def _finished(events: list[Event]) -> dict[str, NodeFinished]:
    return {e.node_id: e for e in events if isinstance(e, NodeFinished)}




@pytest.mark.parametrize(("source", "language"), [(c.PY_DOUBLE, 3), (c.JS_DOUBLE, 5)])
async def test_python_and_javascript_run_as_coze_writes_them(runner: CodeService, source: str,
                                                            language: int) -> None:
    result, error, nodes = await run(runner, c.code_on_input(source, language), {"input": "ab"})
    assert error is None and result is not None
    assert result.output == {"out": "abab"}
    assert json.loads(nodes[CODE].inputs) == {"input": "ab"}


# Coze Studio's code_test.go: what `main` returned, the declared outputs, what the node outputs.
COZE_OUTPUTS = [
    {"name": "key0", "type": "integer"},
    {"name": "key1", "type": "list", "schema": {"type": "string"}},
    {"name": "key2", "type": "list", "schema": {"type": "float"}},
    {"name": "key3", "type": "object", "schema": [
        {"name": "key31", "type": "string"}, {"name": "key32", "type": "string"},
        {"name": "key33", "type": "list", "schema": {"type": "float"}},
        {"name": "key34", "type": "object", "schema": [{"name": "key341", "type": "string"},
                                                       {"name": "key342", "type": "string"}]}]},
    {"name": "key4", "type": "list", "schema": {"type": "object", "schema": []}},
]


async def test_the_output_is_converted_as_coze_converts_it(runner: CodeService) -> None:
    source = """
async def main(args: Args) -> Output:
    params = args.params
    return {
        "key0": int(params['input'] + params['input']),
        "key1": ["hello", "world"],
        "key2": [123, "345"],
        "key3": {"key31": "hi", "key32": "hello", "key33": ["123", "456"],
                 "key34": {"key341": "123", "key342": 456}},
        "key4": [{"key41": "41"}, {"key42": "42"}],
        "extra": {"kept": True},
    }
"""
    node = c.code_node(source, outputs=COZE_OUTPUTS, params={"input": c.ref("100001", "input")})
    result, error, nodes = await run(runner, c.code_workflow(node, ("input", "string")), {"input": "1123"})
    assert error is None and result is not None
    outputs = json.loads(nodes[CODE].outputs)
    assert outputs == {
        "key0": 11231123, "key1": ["hello", "world"], "key2": [123.0, 345.0],
        "key3": {"key31": "hi", "key32": "hello", "key33": [123.0, 456.0],
                 "key34": {"key341": "123", "key342": "456"}},
        "key4": [{"key41": "41"}, {"key42": "42"}],
        "extra": {"kept": True},  # a field the canvas does not declare passes through, as in Studio
    }
    assert nodes[CODE].warnings is None


async def test_fields_not_returned_are_null(runner: CodeService) -> None:
    source = "async def main(args: Args) -> Output:\n    return {'key0': 1, 'key3': {'key31': 'hi'}}"
    node = c.code_node(source, outputs=COZE_OUTPUTS)
    result, error, nodes = await run(runner, c.code_workflow(node))
    assert error is None and result is not None
    outputs = json.loads(nodes[CODE].outputs)
    assert outputs["key3"] == {"key31": "hi", "key32": None, "key33": None,
                               "key34": {"key341": None, "key342": None}}
    assert outputs["key1"] is None and outputs["key2"] is None and outputs["key4"] is None


async def test_fields_that_do_not_fit_are_warnings(runner: CodeService) -> None:
    source = """
def main(args):
    return {"key0": "11231123", "key1": ["hello", "world"], "key2": [123, "345"],
            "key3": {"key31": "hi", "key34": {"key341": "123", "key343": ["hello", "world"]}}}
"""
    outputs = [*COZE_OUTPUTS[:1], {"name": "key1", "type": "list", "schema": {"type": "float"}}, COZE_OUTPUTS[2],
               {"name": "key3", "type": "object", "schema": [
                   {"name": "key31", "type": "string"},
                   {"name": "key34", "type": "object", "schema": [
                       {"name": "key341", "type": "string"},
                       {"name": "key343", "type": "list", "schema": {"type": "float"}}]}]}]
    result, error, nodes = await run(runner, c.code_workflow(c.code_node(source, outputs=outputs)))
    assert error is None and result is not None
    assert result.output["key0"] == 11231123 and result.output["key2"] == [123.0, 345.0]
    assert result.output["key1"] == [] and result.output["key3"]["key34"]["key343"] == []
    assert nodes[CODE].warnings == ["field key1.0 is not number", "field key1.1 is not number",
                                    "field key3.key34.key343.0 is not number",
                                    "field key3.key34.key343.1 is not number"]


async def test_a_required_output_the_code_did_not_return_fails_the_node(runner: CodeService) -> None:
    outputs = [{"name": "must", "type": "string", "required": True}]
    _, error, _ = await run(runner, c.code_workflow(c.code_node("def main(args):\n    return {}", outputs=outputs)))
    assert isinstance(error, NodeError) and error.message == "missing required parameter: must"


async def test_inputs_without_a_value_are_zero_values(runner: CodeService) -> None:
    source = "def main(args):\n    return {'out': json.dumps(args.params, sort_keys=True)}"
    params = {name: c.ref("100001", name, kind) for name, kind in
              [("s", "string"), ("i", "integer"), ("f", "float"), ("b", "boolean"), ("o", "object"), ("l", "list")]}
    params["l"]["schema"] = {"type": "string"}
    node = c.code_node(source, params=params)
    result, error, _ = await run(runner, c.code_workflow(node, ("s", "string"), ("i", "integer")))
    assert error is None and result is not None
    assert json.loads(result.output["out"]) == {"b": False, "f": 0.0, "i": 0, "l": None, "o": None, "s": ""}


async def test_numpy_is_offered(runner: CodeService) -> None:
    source = ("import numpy as np\n\nasync def main(args: Args) -> Output:\n"
              "    return {'out': str(np.array([1, 2, 3]).sum())}")
    result, error, _ = await run(runner, c.code_on_input(source))
    assert error is None and result is not None and result.output == {"out": "6"}


# --- failures ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "language", "detail"), [
    ("def main(args):\n    return fn(1)", 3, "NameError: name 'fn' is not defined (line 2)"),
    ("def main(args):\n    return [1]", 3, "main must return a dict (a JSON object), not list"),
    ("function main() {\n  throw new Error('bad input');\n}", 5, "Error: bad input (line 2)"),
    ("function main() { return 3 }", 5, "main must return an object, not number"),
    ("def main(args):\n    return {'big': 'x' * 2_000_000}", 3,
     "the output is 2000011 bytes, over the limit of 1048576"),
    ("import time\ndef main(args):\n    time.sleep(30)", 3, "Execution timed out after 3 seconds"),
    ("function main() { while (true) {} }", 5, "Execution timed out after 3 seconds"),
])
async def test_a_failure_is_studios_305000002(runner: CodeService, source: str, language: int, detail: str) -> None:
    _, error, nodes = await run(runner, c.code_on_input(source, language))
    assert isinstance(error, NodeError) and error.internal_code == 305000002
    assert error.message == FAILED + detail
    assert nodes[CODE].status == "Fail" and nodes[CODE].error == error.message


async def test_the_nodes_own_timeout_ends_it_as_a_node_timeout(runner: CodeService) -> None:
    source = "import time\ndef main(args):\n    time.sleep(30)"
    _, error, _ = await run(runner, c.code_on_input(source, settingOnError={"timeoutMs": 500, "processType": 1}))
    assert isinstance(error, NodeError) and error.internal_code == 777777776
    in_time = c.code_on_input(c.PY_DOUBLE, settingOnError={"timeoutMs": 5000})
    result, error, _ = await run(runner, in_time, {"input": "x"})
    assert error is None and result is not None and result.output == {"out": "xx"}


async def test_settings_on_error_handle_a_failure(runner: CodeService) -> None:
    failing = "def main(args):\n    raise ValueError('no')"
    outputs = [{"name": "out", "type": "string"}, {"name": "isSuccess", "type": "boolean", "readonly": True},
               {"name": "errorBody", "type": "object", "readonly": True, "schema": [
                   {"name": "errorMessage", "type": "string"}, {"name": "errorCode", "type": "string"}]}]
    result, error, _ = await run(runner, c.code_on_input(failing, outputs=outputs, settingOnError={
        "processType": 2, "dataOnErr": '{"out": "fallback"}', "retryTimes": 1}))
    assert error is None and result is not None
    assert result.output == {"out": "fallback", "isSuccess": False, "errorBody": {
        "errorMessage": FAILED + "ValueError: no (line 2)", "errorCode": "305000002"}}


async def test_warnings_stay_on_the_trace_under_a_policy(runner: CodeService) -> None:
    source = "def main(args):\n    return {'n': 'many'}"
    outputs = [{"name": "n", "type": "integer"}, {"name": "isSuccess", "type": "boolean", "readonly": True}]
    result, error, nodes = await run(runner, c.code_on_input(source, outputs=outputs, settingOnError={
        "processType": 2, "dataOnErr": "{}"}))
    assert error is None and result is not None and result.output == {"n": None, "isSuccess": True}
    assert nodes[CODE].warnings == ["field n is not integer"]


class _Refusing:
    async def run(self, request: CodeRequest) -> CodeResult:
        raise CodeFailed("sandbox", "Python code cannot run on this server: bubblewrap is not installed")


async def test_without_a_runner_the_node_fails_clearly() -> None:
    _, error, _ = await run(None, c.code_on_input(c.PY_DOUBLE))
    assert isinstance(error, NodeError) and error.message == FAILED + "this server runs no code (it has no code runner)"
    _, error, _ = await run(_Refusing(), c.code_on_input(c.PY_DOUBLE))
    assert isinstance(error, NodeError) and error.internal_code == 305000002
    assert error.message.endswith("bubblewrap is not installed")
