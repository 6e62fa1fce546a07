"""Coze Studio conformance: Coze's own example canvases and the results its Go tests assert for them.

The data lives outside the repository, in `../shared/conformance` beside the project root (override with the
environment variable KNOTFLOW_CONFORMANCE_DIR); see its README for the case schema. Without it the module is
skipped. Nothing is copied into the repository.

Two parametrized tests:

- `test_canvas_compiles[<path under canvases/>]` — every canvas whose node types (nested `blocks` included)
  are all in `knotflow.nodes.NODE_TYPES` must compile. A canvas that a `validate_tree` case
  says Coze rejects must instead raise `CanvasError` naming the expected problem, whatever its node types (the
  canvas-wide checks run before unknown types are reported; a problem found only later is a skip). Two canvases
  that Coze's TestValidateTree rejects have no case in cases.jsonl; harness.UNCASED_REJECTIONS restates them.
- `test_case[<case id>]` — every line of `cases.jsonl`. A case runs when all of these hold, otherwise it is
  skipped with every reason that applies (never dropped silently):
  * the node types of its canvas and sub-canvases (for `node_debug` only the debugged subtree) are
    implemented;
  * its mode is supported: `test_run`, `openapi_sync_run`, `openapi_async_run` and `+`-combinations of them
    (run once through the engine, every expectation checked against that run; a run that asks is resumed
    with `expect.answers` by node id from a JSON checkpoint, until it ends), `compose_invoke` /
    `compose_sync_run` (End output map), `validate_tree` (compile must raise `CanvasError`) and
    `canvas_transform` (pruning of isolated nodes, checked on the compiled plan), `node_debug:<id>` (the one
    node run alone by `Execution.run_node` with the case's input, its outputs checked as the output),
    `openapi_stream_run` and `openapi_stream_run + openapi_stream_resume` (the canvas published on a live server and
    streamed over HTTP, SSE frames compared with `expect.stream` / `resume_stream`; the differences the spec
    decides are listed in tests/conformance/streaming.py). Chat-flow runs and multi-step scenarios are not
    supported yet;
  * its `needs` / `mocks` are available: app and user variables and app-variable metadata (the case runs as an
    app declaring what the mocks answer, on knotflow's real variables service: tests/conformance/variables.py;
    a validation case's metadata is checked as an app's publish checks it), LLM replies (content, streamed
    chunks, usage, error, delay; one fake OpenAI-compatible server per mock, routed by model type) and HTTP
    targets (Coze's test server on
    127.0.0.1:8080 and the echo service: one local HTTP target on a free port — the case's canvas, input and
    expectations are rewritten to its address — reached through the real guarded HTTP client; the test
    server's own assertions on the request are checked) are; Code nodes run in knotflow's real code runner
    (`code_runner`, and a `code` mock whose behaviour the canvas code really has: tests/conformance/code_nodes.py);
    tool-call LLM mocks, plugin, knowledge and agent mocks are not served yet; the conversation/message/agent-run
    mocks are replaced by knotflow's real conversation services, and the database mock of custom SQL is served
    (tests/conformance/platform.py, which also lists the mock-only cases and the placeholder ids);
  * it has no sub-workflows to supply, and every expectation key is one the harness knows how to check.

Skip reasons are computed from the data and the node registry, so cases start running as node modules land.
A case or canvas that fails because of a knotflow bug is listed in KNOWN_BUGS / KNOWN_CANVAS_BUGS (strict
xfail with the root cause): when the bug is fixed it XPASSes, fails the suite, and the entry must be removed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from knotflow.errors import CanvasError
from tests.conformance import harness, streaming
from tests.node_types import compile_canvas

SUITE = harness.load_suite(harness.conformance_dir())
if SUITE is None:
    pytest.skip(f"Coze Studio conformance data not found at {harness.conformance_dir()} (needs cases.jsonl "
                f"and canvases/; set {harness.ENV_DIR} to its folder)", allow_module_level=True)
assert SUITE is not None  # for type checkers: the skip above raises

# case id / canvas path → root cause of a knotflow bug that makes it fail (see the module docstring).
KNOWN_BUGS: dict[str, str] = {}
KNOWN_CANVAS_BUGS: dict[str, str] = {}


def _params(values: list[Any], ids: list[str], bugs: dict[str, str]) -> list[Any]:
    return [pytest.param(value, id=key, marks=[pytest.mark.xfail(strict=True, reason=bugs[key])]
                         if key in bugs else [])
            for value, key in zip(values, ids, strict=True)]


@pytest.mark.parametrize("relpath", _params(SUITE.canvas_paths, SUITE.canvas_paths, KNOWN_CANVAS_BUGS))
def test_canvas_compiles(relpath: str) -> None:
    path = f"canvases/{relpath}"
    canvas = SUITE.canvas(path)
    rejecting = SUITE.validation_cases_for(path)
    if not rejecting:
        missing = harness.missing_types(harness.node_types(canvas["nodes"]))
        if missing:
            pytest.skip(f"unimplemented node types: {harness.describe_types(missing)}")
        if harness.llm_nodes_with_tools(canvas["nodes"]):
            # Not supported yet: refused with a clear error rather than run without the tools.
            with pytest.raises(CanvasError, match=r"gives the model tools .* which knotflow does not support yet"):
                compile_canvas(canvas)
            return
        compile_canvas(canvas)
        return
    for case in rejecting:
        reasons = harness.skip_reasons(SUITE, case)
        if reasons:
            pytest.skip(f"Coze rejects this canvas (case {case['id']}), not checkable: {'; '.join(reasons)}")
        harness.check_validation_failure(case, canvas)


@pytest.mark.parametrize("case", _params(SUITE.cases, [c["id"] for c in SUITE.cases], KNOWN_BUGS))
async def test_case(case: dict[str, Any]) -> None:
    reasons = harness.skip_reasons(SUITE, case)
    if reasons:
        pytest.skip("; ".join(reasons))
    canvas = SUITE.canvas(case["canvas"])
    kind = harness.mode_kind(case)
    if kind == "validate":
        harness.check_validation_failure(case, canvas)
    elif kind == "transform":
        harness.check_pruning(case, canvas)
    elif kind == "stream":
        mocks = harness.start_model_mocks(case)
        try:
            outcome = await asyncio.to_thread(streaming.run_stream_case, case, canvas, mocks)
        finally:
            mocks.stop()
        streaming.check_stream(case, canvas, outcome)
    else:
        with harness.http_target_for(case) as target:
            if target is not None:
                case, canvas = harness.retarget(case, target.base_url), harness.retarget(canvas, target.base_url)
            outcome = await harness.run_case(case, canvas, target)
        harness.check_run(case, outcome)
