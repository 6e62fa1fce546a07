"""Loading, selecting and checking Coze Studio conformance cases (see test_conformance.py for the rules).

Everything that decides whether a case runs is computed from the data and from knotflow itself (the node-type
registry), so a case starts running on its own the day the node types it needs land.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from knotflow.contract import ChildPlan, Node, RunServices
from knotflow.dsl import jsonutil
from knotflow.engine.checkpoint import Checkpoint
from knotflow.engine.compiler import Plan, PlanNode
from knotflow.engine.events import Event, RunInterrupted, RunResult
from knotflow.engine.runner import Execution
from knotflow.errors import CanvasError, KnotflowError, UnknownNodeType
from knotflow.models.registry import ModelEntry, ModelRegistry
from knotflow.nodes import NODE_TYPES
from knotflow.nodes.llm import LLMNode, tool_kinds
from knotflow.nodes.start import StartNode
from tests.conformance import code_nodes, platform, variables
from tests.fakes.http_target import HttpTarget, Recorded, outbound_services
from tests.fakes.http_target import Reply as HttpReply
from tests.fakes.model_server import FakeModelServer, Reply
from tests.node_types import compile_canvas

ENV_DIR = "KNOTFLOW_CONFORMANCE_DIR"

# Display names for skip reasons only; which types are missing is always computed from the registry.
TYPE_NAMES = {
    "1": "Start", "2": "End", "3": "LLM", "4": "Plugin", "5": "Code", "6": "KnowledgeRetriever",
    "8": "Selector", "9": "SubWorkflow", "12": "DatabaseCustomSQL", "13": "Output", "15": "TextProcessor",
    "18": "QuestionAnswer", "19": "Break", "20": "VariableAssignerWithinLoop", "21": "Loop",
    "22": "IntentDetector", "27": "KnowledgeIndexer", "28": "Batch", "29": "Continue", "30": "InputReceiver",
    "31": "Comment", "32": "VariableAggregator", "37": "MessageList", "38": "ClearConversationHistory",
    "39": "CreateConversation", "40": "VariableAssigner", "42": "DatabaseUpdate", "43": "DatabaseQuery",
    "44": "DatabaseDelete", "45": "HTTPRequester", "46": "DatabaseInsert", "51": "ConversationUpdate",
    "52": "ConversationDelete", "53": "ConversationList", "54": "ConversationHistory", "55": "CreateMessage",
    "56": "EditMessage", "57": "DeleteMessage", "58": "JsonSerialization", "59": "JsonDeserialization",
    "60": "KnowledgeDeleter",
}

# Modes executed by running the compiled plan once. The draft test run, the async OpenAPI run and the sync
# OpenAPI run differ only in how the API hands back the result; compose_* are Coze's domain-level
# compile+invoke.
RUN_MODES = frozenset(
    {"test_run", "openapi_sync_run", "openapi_async_run", "compose_invoke", "compose_sync_run"}
)
VALIDATE_MODE = "validate_tree"
DEBUG_MODE = "node_debug:"
TRANSFORM_MODE = "canvas_transform"

# `needs` the harness can satisfy: variables and app-variable metadata are served by knotflow's real variables
# service (tests/conformance/variables.py).
# LLM mocks are served by fake OpenAI-compatible servers (tests/fakes/model_server.py), one per mock. HTTP
# targets (Coze's test server on 127.0.0.1:8080, the public echo service) by a local HTTP target on a free port,
# the case rewritten to point there (see `retarget`), reached through the real guarded HTTP client.
# Code nodes run in knotflow's real code runner (tests/conformance/code_nodes.py).
AVAILABLE_NEEDS = (frozenset({"variables", "app_variable_meta", "llm", "http", "network"}) | platform.PLATFORM_NEEDS
                   | code_nodes.CODE_NEEDS)
SERVED_MOCKS = (frozenset({"variables", "app_variable_meta", "llm", "http", "network"}) | platform.PLATFORM_MOCKS
                | code_nodes.CODE_MOCKS)
SERVED_HTTP_MOCK_KEYS = frozenset({"server", "route", "asserts", "body", "file_route"})
SERVED_HTTP_ASSERTS = ("headers", "query", "raw_body", "multipart_file ")
# Where the cases' HTTP targets live. Every mention in a case (canvas, input, expectation) is rewritten to the
# local target's address: the fixed port 8080 could be taken on a test machine, and the echo service is not on
# loopback.
HTTP_ORIGINS = ("http://127.0.0.1:8080", "http://echo.apifox.com")
SERVED_LLM_CALL_KEYS = frozenset({"index", "every", "content", "chunks", "usage", "error", "delay_ms"})
SERVED_LLM_CHUNK_KEYS = frozenset({"content"})


RUN_EXPECTATIONS = frozenset({
    "status", "reason_contains", "output", "output_fields", "output_raw", "output_text", "output_text_json",
    "output_json_fields", "body_json_field",
    "openapi_sync_output", "end_node_response_extra", "tokens", "interrupt_count", "answers", "ordering_rules",
    "output_contains_unordered", "output_list_len", "output_elements_in", "interrupt", "resume",
})
VALIDATE_EXPECTATIONS = frozenset({
    "validation_errors", "validation_error_groups", "group0_first", "group1", "validation_errors_count",
    "messages_contain",
})
TRANSFORM_EXPECTATIONS = frozenset({"pruned_node_ids"})
# Stream modes run through the real HTTP API of a live server (tests/conformance/streaming.py).
STREAM_MODES = (["openapi_stream_run"], ["openapi_stream_run", "openapi_stream_resume"])
STREAM_EXPECTATIONS = frozenset({"stream", "resume", "resume_stream"})

# Coze's `terminal_plan` in the End node's response: 1 = return variables, 2 = answer content.
TERMINAL_PLAN_ANSWER = 2


def _rejection(case_id: str, canvas: str, expect: dict[str, Any]) -> dict[str, Any]:
    return {"id": case_id, "canvas": canvas, "sub_canvases": {}, "mode": VALIDATE_MODE, "input": {},
            "mocks": {}, "expect": expect, "nodes": [], "needs": [],
            "source_test": "backend/api/handler/coze/workflow_service_test.go::TestValidateTree"}


# Canvases Coze Studio's TestValidateTree rejects but cases.jsonl has no case for (restated from that test):
# without these, test_canvas_compiles would demand that knotflow accept canvases Coze calls invalid.
UNCASED_REJECTIONS = {
    "canvases/validate/workflow_ref_variable.json": _rejection(
        "validate_ref_variable (no case in cases.jsonl)", "canvases/validate/workflow_ref_variable.json",
        {"validation_errors": {
            "node 118685": 'the node id "118685" on which node id "165568" depends does not exist',
            "node 128176": 'the node id "128176" on which node id "11384000" depends does not exist',
        }},
    ),
    "canvases/validate/workflow_nested_has_loop_or_batch.json": _rejection(
        "validate_nested_has_loop_or_batch (no case in cases.jsonl)",
        "canvases/validate/workflow_nested_has_loop_or_batch.json",
        {"validation_errors": {"first": "composite nodes such as batch/loop cannot be nested"}},
    ),
}

_ANNOTATION = re.compile(r"\s*\([^)]*\)")
_PLACEHOLDER = re.compile(r"<[A-Za-z][^<>]*>")
_NODE_ID = re.compile(r"\b\d{6}\b")


def conformance_dir() -> Path:
    override = os.environ.get(ENV_DIR)
    if override:
        return Path(override)
    return Path(__file__).parents[2].parent / "shared" / "conformance"


@dataclass(slots=True)
class Suite:
    root: Path
    cases: list[dict[str, Any]]
    canvas_paths: list[str]  # relative to canvases/
    _canvases: dict[str, dict[str, Any]] = field(default_factory=dict)

    def canvas(self, path: str) -> dict[str, Any]:
        """A canvas by path relative to the conformance folder (`canvases/x.json`), parsed once."""
        if path not in self._canvases:
            self._canvases[path] = jsonutil.loads((self.root / path).read_bytes())
        return self._canvases[path]

    def validation_cases_for(self, canvas_path: str) -> list[dict[str, Any]]:
        """The validate_tree cases for a canvas; failing those, a rejection Coze's tests assert without a case
        in cases.jsonl (UNCASED_REJECTIONS)."""
        cases = [c for c in self.cases if mode_kind(c) == "validate" and c["canvas"] == canvas_path]
        if not cases and canvas_path in UNCASED_REJECTIONS:
            cases = [UNCASED_REJECTIONS[canvas_path]]
        return cases


def load_suite(root: Path) -> Suite | None:
    cases_file, canvases = root / "cases.jsonl", root / "canvases"
    if not cases_file.is_file() or not canvases.is_dir():
        return None
    lines = cases_file.read_text(encoding="utf-8").splitlines()
    cases = [jsonutil.loads(line) for line in lines if line.strip()]
    paths = sorted(p.relative_to(canvases).as_posix() for p in canvases.rglob("*.json"))
    return Suite(root, cases, paths)


# --- selection ------------------------------------------------------------------------------------------
def node_types(nodes: list[Any]) -> set[str]:
    """Every node type in a canvas node list, including nested `blocks` (loop, batch bodies)."""
    types: set[str] = set()
    for node in nodes:
        if isinstance(node, dict) and "type" in node:
            types.add(str(node["type"]))
            types |= node_types(node.get("blocks") or [])
    return types


def llm_nodes_with_tools(nodes: list[Any]) -> list[str]:
    """The ids of LLM nodes (nested ones included) that give the model tools, which knotflow refuses."""
    return [str(node.get("id")) for node in _all_nodes(nodes) if str(node.get("type")) == LLMNode.type_id
            and tool_kinds(((node.get("data") or {}).get("inputs") or {}).get("fcParam"))]


def missing_types(types: set[str]) -> list[str]:
    known = NODE_TYPES
    return sorted((t for t in types if t not in known), key=lambda t: (len(t), t))


def describe_types(types: list[str]) -> str:
    return ", ".join(f"{t} ({TYPE_NAMES[t]})" if t in TYPE_NAMES else t for t in types)


def modes(case: dict[str, Any]) -> list[str]:
    """`"test_run + openapi_sync_run (published)"` → `["test_run", "openapi_sync_run"]`."""
    return [part.strip() for part in _ANNOTATION.sub("", case["mode"]).split("+") if part.strip()]


def debugged_node(case: dict[str, Any]) -> str | None:
    """The node a `node_debug:<id>` case runs alone (Coze's single-node debug), else None."""
    parts = modes(case)
    if len(parts) == 1 and parts[0].startswith(DEBUG_MODE):
        return parts[0][len(DEBUG_MODE):].strip() or None
    return None


def mode_kind(case: dict[str, Any]) -> str | None:
    parts = modes(case)
    if parts and all(part in RUN_MODES for part in parts):
        return "run"
    if debugged_node(case) is not None:
        return "debug"
    if parts == [VALIDATE_MODE]:
        return "validate"
    if parts == [TRANSFORM_MODE]:
        return "transform"
    if parts in STREAM_MODES:
        return "stream"
    return None


def case_types(suite: Suite, case: dict[str, Any]) -> set[str]:
    # A node-debug case only runs the debugged node's subtree (its `nodes` list); everything else needs the
    # whole canvas. Sub-workflows (tool workflows, batch bodies...) are needed either way.
    types = {str(t) for t in case.get("nodes") or []}
    if not modes(case)[0].startswith("node_debug"):
        types |= node_types(suite.canvas(case["canvas"])["nodes"])
    for path in (case.get("sub_canvases") or {}).values():
        types |= node_types(suite.canvas(path)["nodes"])
    return types


def _strings(value: Any) -> Iterator[str]:
    """Every string in an expectation, dict keys included (Coze's validation expectations use keys too)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def skip_reasons(suite: Suite, case: dict[str, Any]) -> list[str]:
    """Why `case` cannot run yet; empty when it runs. All reasons are listed, not only the first."""
    reasons = []
    kind = mode_kind(case)
    missing = missing_types(case_types(suite, case))
    if missing and kind != "validate":  # the canvas checks run before unknown node types are reported
        reasons.append(f"unimplemented node types: {describe_types(missing)}")
    elif kind == "debug":
        elsewhere = missing_types(node_types(suite.canvas(case["canvas"])["nodes"]))
        if elsewhere:
            reasons.append("debugging one node compiles the whole canvas, which has unimplemented node types: "
                           f"{describe_types(elsewhere)}")
    tooled = llm_nodes_with_tools(suite.canvas(case["canvas"])["nodes"]) if kind != "validate" else []
    if tooled:
        reasons.append(f"LLM tools (fcParam) are not supported: knotflow refuses the canvas (nodes "
                       f"{', '.join(tooled)})")
    if kind is None:
        reasons.append(f"unsupported mode {case['mode']!r} (harness supports "
                       f"{', '.join(sorted(RUN_MODES))}, {DEBUG_MODE}<id>, {VALIDATE_MODE}, {TRANSFORM_MODE}, "
                       f"{', '.join(' + '.join(m) for m in STREAM_MODES)})")
    needs = sorted(set(case.get("needs") or []) - AVAILABLE_NEEDS)
    if needs:
        reasons.append(f"needs external dependencies not yet available: {', '.join(needs)}")
    mocks = sorted(k for k in case.get("mocks") or {} if not k.startswith("_") and k not in SERVED_MOCKS)
    if mocks and not needs:  # mocks usually mirror `needs`; report them only when they add information
        reasons.append(f"mocks the harness cannot serve yet: {', '.join(mocks)}")
    reasons += variables.skip_reasons(case)
    reasons += _llm_mock_skip_reasons(case)
    reasons += _http_mock_skip_reasons(case)
    reasons += code_nodes.skip_reasons(case, suite.canvas(case["canvas"]))
    unreadable = [rule for rule in case["expect"].get("ordering_rules") or [] if _ordering_rule(rule) is None]
    if unreadable:
        reasons.append(f"ordering rules the harness cannot read: {unreadable}")
    if case.get("steps"):
        reasons.append("multi-step scenario (`steps`) not supported by the harness")
    elif case.get("sub_canvases") and kind not in ("run", "debug"):
        reasons.append("the harness supplies sub-workflows to runs only (sub_canvases: "
                       f"{', '.join(case['sub_canvases'])})")
    allowed = {"run": RUN_EXPECTATIONS, "debug": RUN_EXPECTATIONS, "validate": VALIDATE_EXPECTATIONS,
               "transform": TRANSFORM_EXPECTATIONS, "stream": STREAM_EXPECTATIONS}
    if kind is not None:
        unknown = sorted(set(case["expect"]) - allowed[kind])
        if unknown:
            reasons.append(f"expectations the harness cannot check yet: {', '.join(unknown)}")
        placeholders = sorted({p for text in _strings(case["expect"]) for p in _PLACEHOLDER.findall(text)})
        if kind in ("run", "debug") and placeholders and not platform.is_platform(case):
            reasons.append(f"expectation uses mock-generated ids: {', '.join(placeholders)}")
    if kind in ("run", "debug") and "resume" in case["expect"] and not _interrupt_node(case):
        reasons.append("a resume whose interrupt names no node: the harness answers interrupts by node id")
    if case["id"] in platform.MOCK_ONLY:
        reasons.append(f"mock-only case: {platform.MOCK_ONLY[case['id']]}")
    return reasons


# --- validation and canvas transforms ---------------------------------------------------------------------
def node_titles(nodes: list[Any]) -> dict[str, str]:
    titles: dict[str, str] = {}
    for node in nodes:
        if isinstance(node, dict):
            title = ((node.get("data") or {}).get("nodeMeta") or {}).get("title")
            if title:
                titles[str(node["id"])] = str(title)
            titles |= node_titles(node.get("blocks") or [])
    return titles


_PROBLEM_WORDS = ("cycle", "not connected", "type mismatch", "parameter name", "blockID", "nested")


def problem_subjects(expect: dict[str, Any], canvas: dict[str, Any]) -> set[str]:
    """What an expected validation problem is about: quoted names, [params], node ids and their titles, and
    the kind of problem. knotflow stops at the first problem while Coze lists them all, so the error message
    must mention at least one of these; error counts and groups cannot be compared."""
    titles = node_titles(canvas["nodes"])
    subjects: set[str] = set()
    for text in _strings(expect):
        subjects.update(re.findall(r'"([^"]+)"', text))
        subjects.update(re.findall(r"\[([^\]]+)\]", text))
        for node_id in _NODE_ID.findall(text):
            subjects.add(node_id)
            if node_id in titles:
                subjects.add(titles[node_id])
        subjects.update(word for word in _PROBLEM_WORDS if word in text)
    return subjects


def check_validation_failure(case: dict[str, Any], canvas: dict[str, Any]) -> None:
    try:
        plan = compile_canvas(canvas)
        variables.check_declared_types(case, canvas)
    except UnknownNodeType as exc:
        # The canvas-wide checks passed; the expected problem (e.g. a reference check) is one knotflow finds
        # only once every node type is known.
        pytest.skip(f"the expected problem is checked after node types are known: {exc.message}")
    except CanvasError as exc:
        subjects = problem_subjects(case["expect"], canvas)
        message = exc.message.lower()
        assert any(subject.lower() in message for subject in subjects), (
            f"CanvasError {exc.message!r} does not mention the expected problem (any of {sorted(subjects)}); "
            f"expected: {case['expect']}"
        )
        return
    pytest.fail(f"compile_canvas accepted the canvas ({len(plan.nodes)} nodes) but Coze Studio rejects it: "
                f"{case['expect']}")


def _inner_ids(value: Any, seen: set[int]) -> set[str]:
    """Node ids inside a compiled node (a composite node's inner Plan / nodes). Only compiled objects are
    walked, never NodeDef: a node's definition still holds the pruned blocks."""
    if id(value) in seen:
        return set()
    seen.add(id(value))
    if isinstance(value, Plan):
        ids = set(value.by_id)
        for plan_node in value.nodes:
            ids |= _inner_ids(plan_node, seen)
        return ids
    if isinstance(value, PlanNode):
        return _inner_ids(value.node, seen)
    if isinstance(value, Node):
        ids = {value.id}
        attributes = [v for k, v in _attributes(value) if k != "definition"]
        for attribute in attributes:
            ids |= _inner_ids(attribute, seen)
        return ids
    if isinstance(value, Mapping):
        return set().union(*(_inner_ids(v, seen) for v in value.values())) if value else set()
    if isinstance(value, list | tuple):
        return set().union(*(_inner_ids(v, seen) for v in value)) if value else set()
    return set()


def _attributes(obj: object) -> list[tuple[str, Any]]:
    names = list(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        names += [n for n in getattr(cls, "__slots__", ()) if isinstance(n, str)]
    return [(n, getattr(obj, n)) for n in dict.fromkeys(names) if hasattr(obj, n)]


def _block_parents(nodes: list[Any], parent: str | None = None) -> dict[str, str | None]:
    parents: dict[str, str | None] = {}
    for node in nodes:
        if isinstance(node, dict):
            parents[str(node["id"])] = parent
            parents |= _block_parents(node.get("blocks") or [], str(node["id"]))
    return parents


def check_pruning(case: dict[str, Any], canvas: dict[str, Any]) -> None:
    pruned = {str(item).split()[0] for item in case["expect"]["pruned_node_ids"]}
    plan = compile_canvas(canvas)
    compiled = _inner_ids(plan, set())
    parents = _block_parents(canvas["nodes"])
    executable = {str(n["id"]) for n in _all_nodes(canvas["nodes"])
                  if NODE_TYPES[str(n["type"])].executable}
    kept = executable - pruned
    assert not pruned & compiled, f"isolated nodes {sorted(pruned & compiled)} were not pruned"
    unseen = kept - compiled
    # A composite node none of whose body nodes is visible keeps its body in a form the harness cannot walk:
    # then only the top level (checked above and below) can be verified.
    opaque = {p for p in {parents[i] for i in unseen} if p is not None and
              not any(parents.get(child) == p for child in compiled)}
    dropped = {i for i in unseen if parents[i] not in opaque}
    assert not dropped, f"connected nodes {sorted(dropped)} were dropped from the plan"
    if opaque:
        pytest.skip(f"cannot inspect the inner plan of composite nodes {sorted(opaque)} to check pruning "
                    "there")


def _all_nodes(nodes: list[Any]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        if isinstance(node, dict):
            yield node
            yield from _all_nodes(node.get("blocks") or [])


# --- running --------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Outcome:
    result: RunResult | None
    error: KnotflowError | None
    events: list[Event]
    interrupts: list[str] = field(default_factory=list)  # the node ids that asked, in order
    unanswered: dict[str, list[str]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)  # what reached the case's HTTP target


# --- LLM mocks and interrupts ---------------------------------------------------------------------------
_MODEL_TYPES = re.compile(r"\((\d+)\)")


def _mock_model_type(select: Any) -> int | None:
    """The model type a mock serves: `{"model_type": N}`, or "... (N)"; None for "any" / "model_type != N",
    which the registry's default entry serves (explicit entries are matched first)."""
    if isinstance(select, dict):
        return int(select["model_type"])
    found = _MODEL_TYPES.findall(str(select))
    return int(found[0]) if len(found) == 1 and "!=" not in str(select) else None


def _llm_mock_skip_reasons(case: dict[str, Any]) -> list[str]:
    mocks = (case.get("mocks") or {}).get("llm") or []
    keys = sorted({key for mock in mocks for call in mock.get("calls") or [] for key in call
                   if not key.startswith("_") and key not in SERVED_LLM_CALL_KEYS})
    keys += sorted({f"chunks.{key}" for mock in mocks for call in mock.get("calls") or []
                    for chunk in call.get("chunks") or [] for key in chunk if key not in SERVED_LLM_CHUNK_KEYS})
    defaults = [mock for mock in mocks if _mock_model_type(mock.get("select")) is None]
    reasons = [f"llm mock features the fake model server cannot serve: {', '.join(keys)}"] if keys else []
    if len(defaults) > 1:
        reasons.append("more than one llm mock without a model type to route by")
    return reasons


def _reply(call: dict[str, Any]) -> Reply:
    usage = call.get("usage")
    tokens = (int(usage["prompt_tokens"]), int(usage["completion_tokens"])) if usage else None
    delay = float(call.get("delay_ms") or 0) / 1000
    if call.get("error"):
        return Reply(status=500, error=str(call["error"]), delay=delay)
    if call.get("chunks"):  # a streamed answer: one provider chunk per mock chunk
        return Reply(content=[str(chunk.get("content") or "") for chunk in call["chunks"]], usage=tokens, delay=delay)
    return Reply(content=str(call.get("content") or ""), usage=tokens, delay=delay)


@dataclass(slots=True)
class ModelMocks:
    """One fake model server per LLM mock, and the registry entries routing each mock's model type to it."""

    entries: list[ModelEntry]
    default: int | None
    servers: list[FakeModelServer]

    def registry(self) -> ModelRegistry | None:
        return ModelRegistry(self.entries, self.default) if self.entries else None

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def start_model_mocks(case: dict[str, Any]) -> ModelMocks:
    mocks = (case.get("mocks") or {}).get("llm") or []
    servers: list[FakeModelServer] = []
    entries: list[ModelEntry] = []
    default = None
    for mock in mocks:
        server = FakeModelServer().start()
        servers.append(server)
        # A call answers every request with `"every": …` or `"index": "every"`, else the request at its index.
        every = [call for call in mock.get("calls") or [] if "every" in call or call.get("index") == "every"]
        calls = sorted((call for call in mock.get("calls") or [] if call not in every),
                       key=lambda call: int(call.get("index", 0)))
        server.script(*[_reply(call) for call in calls])
        server.default = _reply(every[0]) if every else None
        model_type = _mock_model_type(mock.get("select"))
        # The default entry needs a model type of its own that no canvas names.
        entries.append(ModelEntry(model_type=model_type if model_type is not None else -len(servers),
                                  base_url=server.base_url, model="fake-model", timeout=10))
        if model_type is None:
            default = -len(servers)
    return ModelMocks(entries, default, servers)


# --- HTTP targets -----------------------------------------------------------------------------------------
_SPELLED = re.compile(r"(\d+) x '(.)'")


def _spelled(text: str) -> bytes:
    """A body an expectation spells out: "2048 x 'A' (note)" is 2048 A's; anything else is the text itself."""
    text = _ANNOTATION.sub("", text).strip()
    match = _SPELLED.fullmatch(text)
    return (match[2] * int(match[1])).encode() if match else text.encode()


def _http_mock(case: dict[str, Any]) -> dict[str, Any]:
    mock = (case.get("mocks") or {}).get("http")
    return mock if isinstance(mock, dict) else {}


def _http_mock_skip_reasons(case: dict[str, Any]) -> list[str]:
    mock = _http_mock(case)
    keys = sorted(set(mock) - SERVED_HTTP_MOCK_KEYS)
    keys += sorted(key for key in mock.get("asserts") or {} if not key.startswith(SERVED_HTTP_ASSERTS))
    return [f"http mock features the harness cannot serve or check: {', '.join(keys)}"] if keys else []


def uses_http(case: dict[str, Any]) -> bool:
    mocks = case.get("mocks") or {}
    return "http" in mocks or "network" in mocks


def start_http_target(case: dict[str, Any]) -> HttpTarget:
    """The case's HTTP target: its mocked route (and the file route its form or binary body downloads), and the
    echo route `/anything`."""
    target = HttpTarget().start()
    mock = _http_mock(case)
    if "route" in mock:
        target.route(mock["route"], HttpReply(body=mock.get("body") or b""))
    if isinstance(mock.get("file_route"), dict):
        target.route("/file", HttpReply(body=_spelled(str(mock["file_route"].get("body_text") or ""))))
    return target


def retarget(value: Any, base_url: str) -> Any:
    """`value` (a case, a canvas) with every HTTP target origin replaced by `base_url`."""
    text = jsonutil.dumps(value)
    for origin in HTTP_ORIGINS:
        text = text.replace(origin, base_url)
    return jsonutil.loads(text)


def check_http_asserts(case: dict[str, Any], requests: list[Recorded]) -> list[str]:
    """The server-side assertions of Coze's test server (`mocks.http.asserts`) on the requests to its route."""
    mock = _http_mock(case)
    route = mock.get("route")
    asserts = mock.get("asserts") or {}
    if route is None or not asserts:
        return []
    reached = [request for request in requests if request.path == route]
    if not reached:
        return [f"no request reached {route}; requests: {[r.target for r in requests]}"]
    request, problems = reached[-1], []
    for name, value in (asserts.get("headers") or {}).items():
        if request.header(name) != value:
            problems.append(f"header {name}: expected {value!r}, got {request.header(name)!r}")
    for name, value in (asserts.get("query") or {}).items():
        if request.query.get(name) != [value]:
            problems.append(f"query {name}: expected {value!r}, got {request.query.get(name)!r}")
    if "raw_body" in asserts and request.body != _spelled(asserts["raw_body"]):
        problems.append(f"body: expected {asserts['raw_body']!r}, got {request.body[:80]!r}")
    for key, value in asserts.items():
        if key.startswith("multipart_file "):
            field_name = key.removeprefix("multipart_file ")
            part = request.form_parts().get(field_name)
            if part is None or part[0] is None or part[2] != _spelled(value):
                problems.append(f"multipart file {field_name}: expected {value!r}, got {part!r:.120}")
    return problems


def _interrupt_node(case: dict[str, Any]) -> str | None:
    """The node `expect.interrupt` says asks first, if it names one."""
    interrupt = case["expect"].get("interrupt")
    return str(interrupt["node_id"]) if isinstance(interrupt, dict) and interrupt.get("node_id") else None


def _answers(case: dict[str, Any]) -> dict[str, list[str]]:
    """`expect.answers` by node id (keys may carry a note), and `expect.resume` for the node `expect.interrupt`
    names: a QA answer is text, an Input answer JSON."""
    expect = case["expect"]
    given = dict(expect.get("answers") or {})
    if "resume" in expect and (asking := _interrupt_node(case)) is not None:
        given[asking] = expect["resume"]
    answers: dict[str, list[str]] = {}
    for key, value in given.items():
        items = value if isinstance(value, list) else [value]
        answers[str(key).split()[0]] = [jsonutil.dumps(item["data_json"]) if isinstance(item, dict) else str(item)
                                        for item in items]
    return answers


_SAME = re.compile(r"interrupts (\d+) and (\d+) are the same \w+ node")
_DIFFERENT = re.compile(r"interrupt (\d+) is a \w+ node different from interrupt (\d+)")
_POSITIONS = re.compile(r"the \w+ (\d+) .*may appear at position ((?:\d+)(?: or \d+)*)")


def _ordering_rule(rule: str) -> Any:
    """A check `interrupts -> problem or None` for one of `expect.ordering_rules`, or None if not understood."""
    if match := _SAME.fullmatch(rule):
        a, b = int(match[1]) - 1, int(match[2]) - 1
        return lambda seq: None if max(a, b) < len(seq) and seq[a] == seq[b] else f"{rule}: {seq}"
    if match := _DIFFERENT.fullmatch(rule):
        a, b = int(match[1]) - 1, int(match[2]) - 1
        return lambda seq: None if max(a, b) < len(seq) and seq[a] != seq[b] else f"{rule}: {seq}"
    if match := _POSITIONS.fullmatch(rule):
        node, positions = match[1], {int(p) - 1 for p in match[2].split(" or ")}
        return lambda seq: None if {i for i, n in enumerate(seq) if n == node} <= positions and node in seq \
            else f"{rule}: {seq}"
    return None


@contextlib.contextmanager
def http_target_for(case: dict[str, Any]) -> Iterator[HttpTarget | None]:
    """The case's HTTP target while the case runs; None for a case that reaches no HTTP target."""
    if not uses_http(case):
        yield None
        return
    target = start_http_target(case)
    try:
        yield target
    finally:
        target.stop()


async def run_case(case: dict[str, Any], canvas: dict[str, Any], target: HttpTarget | None = None) -> Outcome:
    """Run a case (already retargeted at `target`, if it reaches one) and record what reached the target."""
    async with contextlib.AsyncExitStack() as stack:
        services = RunServices()
        if code_nodes.uses_code(case):
            services.code = await stack.enter_async_context(code_nodes.code_runner())
        if target is not None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            services.http, services.files = await stack.enter_async_context(
                outbound_services(data_dir, allow="127.0.0.1"))
        outcome = await _run(case, canvas, services)
    outcome.requests = list(target.requests) if target is not None else []
    return outcome


async def _run(case: dict[str, Any], canvas: dict[str, Any], services: RunServices) -> Outcome:
    plan = compile_canvas(canvas)
    mocks = start_model_mocks(case)
    registry = mocks.registry()
    services.models = registry
    services.workflows = CaseWorkflows(case)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(variables.variable_services(case, canvas, services))
        if platform.is_platform(case):
            await stack.enter_async_context(platform.platform_services(case, services))
        return await _run_plan(case, plan, services, mocks, registry)


class CaseWorkflows:
    """The case's sub-workflows (`sub_canvases`), by the id the parent names, whatever version it asks for."""

    def __init__(self, case: dict[str, Any]) -> None:
        self.paths: dict[str, str] = dict(case.get("sub_canvases") or {})

    async def load(self, workflow_id: str, version: str | None) -> ChildPlan:
        path = self.paths.get(workflow_id)
        if path is None:
            raise KnotflowError(f"the case supplies no sub-workflow {workflow_id}")
        return ChildPlan(compile_canvas(jsonutil.loads((conformance_dir() / path).read_bytes())), version or "draft")


async def _run_plan(case: dict[str, Any], plan: Plan, services: RunServices, mocks: ModelMocks,
                    registry: ModelRegistry | None) -> Outcome:
    events: list[Event] = []
    entry = plan.entry
    assert isinstance(entry, StartNode)
    answers = _answers(case)
    asked: list[str] = []
    debugged = debugged_node(case)
    try:
        if debugged is not None:
            execution = Execution(plan, sink=events.append, services=services)
            given = dict(case.get("input") or {})
            given.update(given.pop("batch", None) or {})  # a node in batch mode is debugged with its item lists
            output = await execution.run_node(debugged, given)
            return Outcome(RunResult(output, None, execution.usage), None, events)
        # Bad input is a failed run for the cases' purposes (Coze reports it through the run's status).
        params = entry.prepare(case.get("input") or {})
        try:
            result = await Execution(plan, sink=events.append, services=services).run(params)
        except RunInterrupted as first:
            paused: RunInterrupted | None = first
            # Answer each interrupt from a checkpoint that went through JSON, as a resume in another process.
            while paused is not None:
                asked.append(paused.node_id)
                waiting = answers.get(paused.node_id) or []
                if not waiting:
                    pytest.fail(f"node {paused.node_id} asks (interrupt {len(asked)}) but the case has no answer "
                                f"left for it; asked so far: {asked}")
                checkpoint = Checkpoint.loads(paused.checkpoint.dumps())
                execution = Execution.restore(plan, checkpoint, sink=events.append, services=services)
                try:
                    result, paused = await execution.resume(waiting.pop(0)), None
                except RunInterrupted as again:
                    paused = again
    except KnotflowError as exc:
        return Outcome(None, exc, events, asked, answers)
    finally:
        if registry is not None:
            await registry.aclose()
        mocks.stop()
    return Outcome(result, None, events, asked, answers)


def matches(actual: Any, expected: Any, *, subset: bool = False, path: str = "$") -> list[str]:
    """Differences between a result and an expectation, JSON-typed: an expected integer must not come back as
    a float (it would serialize as `100.0`), a boolean is not a number. With `subset`, objects may hold more
    keys."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{path}: expected an object, got {actual!r}"]
        problems = []
        for key, value in expected.items():
            if key not in actual:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += matches(actual[key], value, subset=subset, path=f"{path}.{key}")
        if not subset:
            problems += [f"{path}.{key}: unexpected" for key in actual if key not in expected]
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {expected!r}, got {actual!r}"]
        return [p for i, (a, e) in enumerate(zip(actual, expected, strict=True))
                for p in matches(a, e, subset=subset, path=f"{path}[{i}]")]
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        ok = type(actual) is type(expected) and actual == expected
    elif isinstance(expected, int):
        ok = type(actual) is int and actual == expected
    elif isinstance(expected, float):
        ok = type(actual) in (int, float) and actual == expected
    else:
        ok = actual == expected
    return [] if ok else [f"{path}: expected {expected!r}, got {actual!r}"]


def documented_sync_data(result: RunResult) -> str:
    """`data` of `/v1/workflow/run` as the OpenAPI reference (§3.2) documents it: the End output as JSON, or
    in answer mode `{"content_type":1,"data":<answer>,"type_for_model":2}`."""
    try:
        # Prefer the API layer's own encoder when it exists, so this also checks what knotflow sends.
        from knotflow.service.runs import result_data
    except ImportError:
        if result.answer is not None:
            return jsonutil.dumps({"content_type": 1, "data": result.answer, "type_for_model": 2})
        return jsonutil.dumps(result.output)
    return result_data(result)


def check_run(case: dict[str, Any], outcome: Outcome) -> None:
    expect = platform.adjust_expectation(case, case["expect"])
    status = expect.get("status")
    if status == "fail" or "reason_contains" in expect:
        assert outcome.error is not None, f"the run succeeded with {outcome.result}, Coze Studio fails it"
        if "reason_contains" in expect:
            assert expect["reason_contains"] in outcome.error.message
        return
    if outcome.error is not None:
        pytest.fail(f"the run failed: {outcome.error.message}")
    assert status in (None, "success"), f"unknown status expectation {status!r}"
    result = outcome.result
    assert result is not None
    problems: list[str] = []
    # Every mode hands the End output over as JSON (get_process, the sync run's `data`, the End message), so
    # compare what survives the encoding: a value that does not serialize, or serializes differently, fails.
    output = jsonutil.loads(jsonutil.dumps(result.output))
    if platform.is_platform(case):  # ids knotflow gave stand in for those Studio's mocks made up
        answer_json = jsonutil.loads(result.answer) if "output_text_json" in expect and result.answer else None
        expect = {**expect, **{key: platform.fill_ids(expect[key], output) for key in ("output", "output_fields")
                               if key in expect}}
        if "output_text_json" in expect:
            expect["output_text_json"] = platform.fill_ids(expect["output_text_json"], answer_json)
    if "output" in expect:
        problems += matches(output, expect["output"], path="output")
    if "output_fields" in expect:
        problems += matches(output, expect["output_fields"], subset=True, path="output")
    for name, items in (expect.get("output_contains_unordered") or {}).items():
        # Batch items finish in any order; Coze's test accepts each expected item anywhere in the list.
        problems += [f"output.{name} lacks {item!r}" for item in items if item not in (output.get(name) or [])]
    for name, allowed in (expect.get("output_elements_in") or {}).items():
        # Coze's test asserts each element of the output list is one of these (assert.Contains per element).
        found = output.get(name)
        if not isinstance(found, list) or not found:
            problems.append(f"output.{name}: expected a non-empty list, got {found!r}")
        else:
            problems += [f"output.{name} holds {item!r}, not one of {allowed!r}"
                         for item in found if item not in allowed]
    if "output_list_len" in expect:
        lists = [value for value in output.values() if isinstance(value, list)]
        problems += matches([len(value) for value in lists], [expect["output_list_len"]] * len(lists),
                            path="output list lengths")
    if "output_raw" in expect:
        problems += matches(output, jsonutil.loads(expect["output_raw"]), path="output")
    if "output_text" in expect:
        # test_run / async run: get_process reports an answer-mode End's rendered answer as the output text.
        problems += matches(result.answer, expect["output_text"], path="answer")
    if "output_json_fields" in expect:
        # The End node's one field holds a response body (an echo of the request): its JSON holds these fields.
        assert len(output) == 1, f"output_json_fields expects an output of one field, got {sorted(output)}"
        problems += matches(jsonutil.loads(next(iter(output.values()))), expect["output_json_fields"],
                            subset=True, path="output.*")
    if "body_json_field" in expect:
        problems += matches(jsonutil.loads(output["body"]), expect["body_json_field"], subset=True,
                            path="output.body")
    problems += check_http_asserts(case, outcome.requests)
    if "output_text_json" in expect:
        answer = jsonutil.loads(result.answer) if result.answer is not None else None
        problems += matches(answer, expect["output_text_json"], path="answer")
    if "openapi_sync_output" in expect:
        # Coze Studio's test parses the sync run's `data` and asserts `{"data": <answer>}` against it; the
        # documented wire format (which wins, README) is `{"content_type":1,"data":...,"type_for_model":2}` in
        # answer mode, so the expectation is compared as a subset of the parsed documented `data`.
        problems += matches(jsonutil.loads(documented_sync_data(result)), expect["openapi_sync_output"],
                            subset=True, path="sync_data")
    extra = expect.get("end_node_response_extra") or {}
    if "terminal_plan" in extra:
        answer_mode = extra["terminal_plan"] == TERMINAL_PLAN_ANSWER
        if result.answer_mode != answer_mode:
            problems.append(f"terminal_plan {extra['terminal_plan']}: answer mode is {result.answer_mode}")
    if "tokens" in expect:
        tokens = {"input": result.usage.input_count, "output": result.usage.output_count}
        problems += matches(tokens, expect["tokens"], path="tokens")
    if (asking := _interrupt_node(case)) is not None:
        first = outcome.interrupts[0] if outcome.interrupts else None
        if first != asking:
            problems.append(f"interrupt: expected node {asking} to ask first, got {outcome.interrupts}")
    if "interrupt_count" in expect:
        problems += matches(len(outcome.interrupts), expect["interrupt_count"], path="interrupt_count")
    if "answers" in expect:
        problems += [f"answers: node {node} was not asked for {left}" for node, left in outcome.unanswered.items()
                     if left]
    for rule in expect.get("ordering_rules") or []:
        problem = _ordering_rule(rule)(outcome.interrupts)
        problems += [problem] if problem else []
    assert not problems, "\n".join(problems)
