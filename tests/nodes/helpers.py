"""Running small canvases through the real engine (with the real outbound services, for HTTP nodes), and reading
Coze's conformance canvases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from knotflow.contract import RunServices
from knotflow.engine.events import Event, NodeFinished, RunResult
from knotflow.engine.runner import Execution
from knotflow.errors import KnotflowError
from knotflow.nodes.start import StartNode
from tests.fakes.http_target import outbound_services
from tests.node_types import compile_canvas

CONFORMANCE = Path("/work/shared/conformance")


async def run(canvas: dict[str, Any], params: dict[str, Any] | None = None) -> tuple[RunResult, list[Event]]:
    plan = compile_canvas(canvas)
    assert isinstance(plan.entry, StartNode)
    events: list[Event] = []
    result = await Execution(plan, sink=events.append).run(plan.entry.prepare(params or {}))
    return result, events


async def output(canvas: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
    result, _ = await run(canvas, params)
    return result.output


def finished(events: list[Event]) -> dict[str, NodeFinished]:
    return {e.node_id: e for e in events if isinstance(e, NodeFinished)}


async def run_outbound(canvas: dict[str, Any], params: dict[str, Any] | None, tmp_path: Path, *,
                       allow: str = "127.0.0.1", variables: dict[tuple[str, str], Any] | None = None,
                       **settings: Any) -> tuple[RunResult | None, KnotflowError | None, list[Event]]:
    """Run a canvas with the real guarded HTTP client and URL fetcher (`allow`: KNOTFLOW_URL_FETCH_ALLOW); the
    result or the error, and the events."""
    plan = compile_canvas(canvas)
    assert isinstance(plan.entry, StartNode)
    events: list[Event] = []
    async with outbound_services(tmp_path, allow, **settings) as (http, files):
        services = RunServices(http=http, files=files, global_variables=variables or {})
        try:
            result = await Execution(plan, sink=events.append, services=services).run(
                plan.entry.prepare(params or {}))
        except KnotflowError as exc:
            return None, exc, events
    return result, None, events


def conformance_canvas(relative: str) -> dict[str, Any]:
    path = CONFORMANCE / "canvases" / relative
    if not path.exists():
        pytest.skip(f"conformance canvas {relative} is not available")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def conformance_case(case_id: str) -> dict[str, Any]:
    path = CONFORMANCE / "cases.jsonl"
    if not path.exists():
        pytest.skip("conformance cases are not available")
    for line in path.read_text(encoding="utf-8").splitlines():
        case: dict[str, Any] = json.loads(line)
        if case["id"] == case_id:
            return case
    pytest.skip(f"conformance case {case_id} is not available")
