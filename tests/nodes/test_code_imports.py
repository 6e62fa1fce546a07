"""Coze Studio's check of a Python Code node's imports (validatePythonImports), applied when a canvas is compiled
(published): Studio's blacklist of standard-library modules and its allowed third-party packages (here numpy)."""

from __future__ import annotations

from typing import Any

import pytest

from knotflow.engine.compiler import compile_canvas as compile_with
from knotflow.errors import CanvasError
from knotflow.nodes import NODE_TYPES
from knotflow.nodes.code import import_problem, imported_modules, with_egress
from tests import canvases as c
from tests.node_types import compile_canvas

CODE = c.CODE_NODE_ID


def workflow(source: str, language: Any = 3) -> dict[str, Any]:
    return c.code_workflow(c.code_node(source, language))


def test_imports_are_read_as_studio_reads_them() -> None:
    source = (
        "import json, os.path as p\n"
        "from collections.abc import Mapping\n"
        "# import socket\n"
        "    import numpy as np  # indented\n"
        "x = \"\"\"\nimport re\n\"\"\"\n"
    )
    # Studio reads lines, not Python: an import line inside a string counts.
    assert imported_modules(source) == ["json", "os", "collections", "numpy", "re"]


@pytest.mark.parametrize(("source", "problem"), [
    ("import socket\nimport threading", "ModuleNotFoundError: The module(s) 'socket', 'threading' are removed from "
                                        "the Python standard library for security reasons"),
    ("import httpx", "ModuleNotFoundError: No module named 'httpx' ('httpx' is offered only with network egress, "
                     "which is off on this server: KNOTFLOW_CODE_EGRESS=true turns it on)"),
    ("from requests import get\nimport pty", "ModuleNotFoundError: The module(s) 'pty' are removed from the Python "
                                             "standard library for security reasons,ModuleNotFoundError: No module "
                                             "named 'requests'"),
    ("import tomllib", "ModuleNotFoundError: No module named 'tomllib'"),  # not in Studio's 3.9 list
])
def test_studio_refuses_these_imports_at_publish(source: str, problem: str) -> None:
    assert import_problem(source) == problem
    with pytest.raises(CanvasError) as refused:
        compile_canvas(workflow(source + "\ndef main(args):\n    return {}"))
    assert refused.value.message == f"node 'Code' ({CODE}): {problem}"


@pytest.mark.parametrize("source", ["import numpy", "import os, sys, ctypes, subprocess", "from json import dumps",
                                    "# import socket"])
def test_other_imports_pass_the_check(source: str) -> None:
    assert import_problem(source) is None
    compile_canvas(workflow(source))


def test_javascript_imports_are_not_checked() -> None:
    compile_canvas(workflow("import x from 'socket';\nfunction main() { return {} }", 5))


@pytest.mark.parametrize("language", [1, "3", None, True])
def test_a_language_other_than_3_or_5_is_refused(language: Any) -> None:
    with pytest.raises(CanvasError, match="invalid language"):
        compile_canvas(workflow("def main(args):\n    return {}", language))


def test_with_egress_python_code_may_import_httpx() -> None:
    source = "import httpx\nfrom httpx import AsyncClient\nimport numpy\ndef main(args):\n    return {}"
    compile_with(workflow(source), with_egress(NODE_TYPES))
    # Everything else is refused as before.
    with pytest.raises(CanvasError, match=r"No module named 'requests'$"):
        compile_with(workflow("import httpx, requests\ndef main(args):\n    return {}"), with_egress(NODE_TYPES))
    with pytest.raises(CanvasError, match="KNOTFLOW_CODE_EGRESS=true"):
        compile_with(workflow(source), NODE_TYPES)
