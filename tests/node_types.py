"""The node types tests compile canvases with: every real node type, plus the test-only node types that test
modules register (slow nodes, nodes that fail on purpose...). Live test servers get the same mapping, so a
canvas using a test node type runs there too."""

from __future__ import annotations

from typing import Any, TypeVar

from knotflow.contract import Node
from knotflow.engine.compiler import Plan
from knotflow.engine.compiler import compile_canvas as compile_with
from knotflow.nodes import NODE_TYPES

TEST_NODE_TYPES: dict[str, type[Node]] = dict(NODE_TYPES)
N = TypeVar("N", bound=type[Node])


def register(cls: N) -> N:
    if TEST_NODE_TYPES.get(cls.type_id, cls) is not cls:
        raise RuntimeError(f"node type {cls.type_id} registered twice")
    TEST_NODE_TYPES[cls.type_id] = cls
    return cls


def compile_canvas(canvas: Any) -> Plan:
    return compile_with(canvas, TEST_NODE_TYPES)
