"""Conformance cases with Code nodes: served by knotflow's real code runner (the service the server uses, real
sandboxes), never by a mock.

Coze Studio's tests run some code for real (`code_runner`: its "direct" Python runner) and mock the runner in
others (`code`: a mock `runner` that echoes the params, parses a JSON input, or returns a fixed result). A mocked
case runs here only when the canvas's code really does what its mock does, so that real execution gives the
mocked result: the mock's behaviour is recognised in every Code node's code, or the case says so itself
(`code_mock_equivalent_to_canvas_code`). A fixed result the code does not compute is not served.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from knotflow.config import Settings
from knotflow.service.code import CodeService

CODE_NEEDS = frozenset({"code", "code_runner"})
CODE_MOCKS = frozenset({"code", "code_runner"})
CODE_TYPE = "5"

# A mock runner, and what the canvas code must contain to do the same.
MOCK_EQUIVALENTS = {
    "echo": "return params",  # returns the params unchanged
    "json_parse": "return json.loads(",  # returns params['input'] parsed as JSON
}


def uses_code(case: dict[str, Any]) -> bool:
    return bool(set(case.get("needs") or []) & CODE_NEEDS or set(case.get("mocks") or {}) & CODE_MOCKS)


def _code_nodes(nodes: list[Any]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        if isinstance(node, dict):
            if str(node.get("type")) == CODE_TYPE:
                yield node
            yield from _code_nodes(node.get("blocks") or [])


def skip_reasons(case: dict[str, Any], canvas: dict[str, Any]) -> list[str]:
    mock = (case.get("mocks") or {}).get("code")
    if not isinstance(mock, dict) or case.get("code_mock_equivalent_to_canvas_code") is True:
        return []
    runner = str(mock.get("runner"))
    telltale = MOCK_EQUIVALENTS.get(runner)
    differing = [str(node["id"]) for node in _code_nodes(canvas["nodes"])
                 if telltale is None or telltale not in str((node.get("data") or {}).get("inputs", {}).get("code"))]
    if differing:
        return [f"the code mock (runner {runner!r}) returns what the canvas code of nodes {', '.join(differing)} "
                "does not compute: real execution cannot stand in for it"]
    return []


@asynccontextmanager
async def code_runner() -> AsyncIterator[CodeService]:
    """The server's code runner with one warm sandbox per language, started on first use."""
    service = CodeService(Settings(code_python_workers=1, code_js_workers=1))
    try:
        yield service
    finally:
        await service.close()
