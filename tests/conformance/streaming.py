"""Stream-mode conformance cases (`openapi_stream_run`, `+ openapi_stream_resume`) through the real HTTP API.

The case's canvas is published on a live knotflow server (its own data folder, its models.yaml routing each LLM
mock's model type to a fake model server), streamed with httpx, and the SSE frames are parsed exactly as
tests/api/test_wire.py does (no stray bytes, ids counting from 0). Then they are compared with `expect.stream` /
`expect.resume_stream`, frame by frame: same events in the same order, same ids, same `data`, with these
differences that follow the spec (`../shared/spec/coze-openapi-reference.md`, which wins over Coze Studio's tests):

- Message: knotflow also sends `node_execute_uuid` (the cloud's key, §1.4/§1.6) and `usage` on the End message
  (§1.4); those keys are not in Studio's expectations and are ignored.
- Interrupt: the cloud sends `node_title` (cozepy needs it) and no `debug_url`; Studio the reverse (§1.4). knotflow
  follows the cloud: `node_title` must be the asking node's title and `debug_url` is not required.
- Done / debug_url: the host and `space_id` are the server's own (Studio's test fixture had `coze.cn`, space 123);
  the path, `execute_id`, `workflow_id` (the published id) and `execute_mode=2` are compared. The cloud adds
  `node_execute_uuid` (§1.3), ignored.
- `<...>` / `{...}` placeholders stand for ids produced at run time and match any id.
- An End's returned variables (`content` holding a JSON object) are compared as JSON: Studio's test expects the
  keys sorted, but key order is not part of the wire format ("Key order in the cloud's JSON varies", §1.3);
  knotflow keeps the End's declaration order.

One known difference is folded before comparing, not hidden: knotflow sends a streamed LLM token the moment it
arrives, so it learns that the previous token was the node's last only when the provider's stream ends, and then
sends an extra `""` Message with `node_is_finish: true`. Coze marks the last token itself. The spec only says that a
node's last chunk has `node_is_finish: true`, which holds either way; `fold_finish_chunks` merges that empty chunk
into the one before it (and renumbers the ids), and `check_stream` asserts that every folded chunk was empty.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import yaml

from knotflow.config import Settings
from knotflow.dsl import jsonutil
from tests.api.conftest import LiveServer, free_port, serving
from tests.api.test_wire import parse_frames
from tests.conformance.harness import ModelMocks, matches, node_titles

Frame = tuple[int, str, dict[str, Any]]

# Message keys the spec documents and Studio's expectations do not have.
SPEC_MESSAGE_KEYS = frozenset({"node_execute_uuid", "usage"})
_PLACEHOLDER = re.compile(r"<[^<>]+>|\{[A-Za-z]+\}")


@dataclass(slots=True)
class StreamOutcome:
    workflow_id: str
    streams: list[list[Frame]]  # the stream_run response, then each stream_resume response


def _models_file(mocks: ModelMocks) -> str:
    entries = [entry.model_dump(exclude_none=True, exclude_defaults=True) | {"base_url": entry.base_url,
                                                                           "model": entry.model}
               for entry in mocks.entries]
    return yaml.safe_dump({"models": entries, "default": mocks.default})


def _stream(http: httpx.Client, path: str, body: dict[str, Any]) -> list[Frame]:
    with http.stream("POST", path, json=body) as response:
        text = response.read().decode()
    assert response.status_code == 200 and "text/event-stream" in response.headers.get("content-type", ""), text
    frames = parse_frames(text)
    assert [frame[0] for frame in frames] == list(range(len(frames))), "event ids must count from 0 per response"
    return frames


def _resume_data(resume: dict[str, Any]) -> str:
    if "resume_data_json" in resume:
        return jsonutil.dumps(resume["resume_data_json"])
    return str(resume.get("resume_data") or "")


def run_stream_case(case: dict[str, Any], canvas: dict[str, Any], mocks: ModelMocks) -> StreamOutcome:
    """Publishes the canvas on a fresh live server and streams it, resuming each interrupt with `expect.resume`.
    Blocking (the server runs in its own thread): call it from a worker thread in async tests."""
    from knotflow.models.registry import load_registry
    from knotflow.service import catalog
    from knotflow.store.repository import Store

    with tempfile.TemporaryDirectory(prefix="knotflow-conformance-") as folder:
        data_dir = Path(folder)
        if mocks.entries:
            (data_dir / "models.yaml").write_text(_models_file(mocks), encoding="utf-8")
        with serving(Settings(data_dir=data_dir, port=free_port())) as live:
            async def publish(store: Store) -> str:
                models = load_registry(live.settings.resolved_models_file())
                workflow, _ = await catalog.import_workflow(store, canvas, publish=True, models=models)
                return workflow.id

            workflow_id = str(live.call(publish))
            return StreamOutcome(workflow_id, _streams(case, live, workflow_id))


def _streams(case: dict[str, Any], live: LiveServer, workflow_id: str) -> list[list[Frame]]:
    headers = {"Authorization": f"Bearer {live.token()}"}
    with httpx.Client(base_url=live.base_url, headers=headers, timeout=30) as http:
        streams = [_stream(http, "/v1/workflow/stream_run",
                           {"workflow_id": workflow_id, "parameters": case.get("input") or {}})]
        for resume in case["expect"].get("resume") or []:
            interrupts = [data for _, event, data in streams[-1] if event == "Interrupt"]
            assert interrupts, f"the case resumes, but the stream ended without an Interrupt: {streams[-1]}"
            asked = interrupts[-1]["interrupt_data"]
            streams.append(_stream(http, "/v1/workflow/stream_resume", {
                "workflow_id": workflow_id, "event_id": asked["event_id"], "interrupt_type": asked["type"],
                "resume_data": _resume_data(resume)}))
    return streams


def fold_finish_chunks(frames: list[Frame]) -> tuple[list[Frame], list[dict[str, Any]]]:
    """Merges each finishing Message that follows a Message of the same node into that one (see the module
    docstring); returns the frames renumbered and the merged-away finishing data."""
    kept: list[Frame] = []
    folded: list[dict[str, Any]] = []
    for frame in frames:
        _, event, data = frame
        previous = kept[-1] if kept else None
        if (event == "Message" and data.get("node_is_finish") and previous is not None and previous[1] == "Message"
                and previous[2]["node_id"] == data["node_id"] and not previous[2]["node_is_finish"]):
            folded.append(data)
            # The spec's keys on the finishing chunk (the End's usage) stay with the chunk that now finishes.
            merged = previous[2] | {key: value for key, value in data.items() if key in SPEC_MESSAGE_KEYS}
            kept[-1] = (previous[0], previous[1], merged | {"node_is_finish": True})
        else:
            kept.append(frame)
    return [(index, event, data) for index, (_, event, data) in enumerate(kept)], folded


def _pattern(expected: str) -> re.Pattern[str]:
    parts = _PLACEHOLDER.split(re.sub(r"\s*\(opaque\)", "", expected))
    return re.compile("[^&/]+".join(re.escape(part) for part in parts))


def _json_document(content: Any) -> dict[str, Any] | list[Any] | None:
    """An End's returned variables (a JSON object or list in `content`), parsed; None for text."""
    if not isinstance(content, str) or not content.startswith(("{", "[")):
        return None
    try:
        document = jsonutil.loads(content)
    except ValueError:
        return None
    return document if isinstance(document, dict | list) else None


def _debug_url_problems(actual: Any, expected: str, workflow_id: str, path: str) -> list[str]:
    if not isinstance(actual, str):
        return [f"{path}: expected a debug_url, got {actual!r}"]
    got, want = urlsplit(actual), urlsplit(expected)
    query = parse_qs(got.query)
    problems = [] if got.path == want.path else [f"{path}: path {got.path!r}, expected {want.path!r}"]
    if set(query) != set(parse_qs(want.query)):
        problems.append(f"{path}: query keys {sorted(query)}, expected those of {expected!r}")
    if query.get("workflow_id") != [workflow_id] or query.get("execute_mode") != ["2"] or not query.get("execute_id"):
        problems.append(f"{path}: {actual!r} must name execute_id, workflow_id {workflow_id} and execute_mode 2")
    return problems


def _data_problems(event: str, actual: dict[str, Any], expected: dict[str, Any], workflow_id: str,
                   titles: dict[str, str], path: str) -> list[str]:
    problems: list[str] = []
    expected = dict(expected)
    actual = dict(actual)
    if event == "Interrupt":
        expected.pop("debug_url", None)  # Studio's key; the cloud (and knotflow) send node_title instead
    if "debug_url" in expected:
        problems += _debug_url_problems(actual.pop("debug_url", None), expected.pop("debug_url"), workflow_id,
                                        f"{path}.debug_url")
    if event == "Message":
        actual = {key: value for key, value in actual.items() if key not in SPEC_MESSAGE_KEYS or key in expected}
        document = _json_document(expected.get("content"))
        if document is not None:  # key order is not part of the wire format (spec §1.3)
            expected["content"] = document
            actual["content"] = _json_document(actual.get("content")) or actual.get("content")
    elif event == "Done":
        actual.pop("node_execute_uuid", None)
    elif event == "Interrupt":
        title = actual.pop("node_title", None)
        if title not in titles.values():
            problems.append(f"{path}.node_title: {title!r} is not the title of a node of the canvas")
        asked = dict(actual.get("interrupt_data") or {})
        wanted = dict(expected.get("interrupt_data") or {})
        event_id, wanted_id = str(asked.pop("event_id", "")), str(wanted.pop("event_id", ""))
        if not _pattern(wanted_id).fullmatch(event_id):
            problems.append(f"{path}.interrupt_data.event_id: {event_id!r} does not have the form {wanted_id!r}")
        actual["interrupt_data"], expected["interrupt_data"] = asked, wanted
    return problems + matches(actual, expected, path=path)


def check_stream(case: dict[str, Any], canvas: dict[str, Any], outcome: StreamOutcome) -> None:
    expected_streams = [case["expect"]["stream"]] + ([case["expect"]["resume_stream"]]
                                                    if "resume_stream" in case["expect"] else [])
    assert len(outcome.streams) == len(expected_streams), f"{len(outcome.streams)} streams: {outcome.streams}"
    titles = node_titles(canvas["nodes"])
    problems: list[str] = []
    for number, (frames, expected) in enumerate(zip(outcome.streams, expected_streams, strict=True)):
        name = "stream" if number == 0 else "resume_stream"
        actual, folded = fold_finish_chunks(frames)
        problems += [f"{name}: a folded finishing chunk carried text: {data}" for data in folded if data["content"]]
        got = [(index, event) for index, event, _ in actual]
        want = [(int(frame["id"]), frame["event"]) for frame in expected]
        if got != want:
            problems.append(f"{name}: events {got}, expected {want}\n{frames}")
        for (index, event, data), frame in zip(actual, expected, strict=False):
            if (index, event) != (int(frame["id"]), frame["event"]):
                break
            problems += _data_problems(event, data, frame["data"], outcome.workflow_id, titles, f"{name}[{index}]")
    assert not problems, "\n".join(problems)
