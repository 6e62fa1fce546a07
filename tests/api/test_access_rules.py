"""Who may see and do what, on the wire: each permission's routes, spaces and connectors reported as absent
(never an existence oracle), and fields longer than knotflow stores refused before anything is stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests import canvases as c
from tests.api.conftest import LiveServer
from tests.api.test_file_parameters import file_canvas
from tests.api.test_resume import two_questions

OTHER_SPACE = "7000000000000000009"


def call(live: LiveServer, token: str, method: str, path: str, **options: Any) -> dict[str, Any]:
    with httpx.Client(base_url=live.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        response = client.request(method, path, **options)
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return {"code": 0, "stream": response.text}
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture(scope="module")
def greeting_id(live: LiveServer) -> str:
    return live.publish(c.greeting(), name="access-greeting")


@pytest.fixture(scope="module")
def a_run(live: LiveServer, token: str, greeting_id: str) -> str:
    answer = call(live, token, "POST", "/v1/workflow/run", json={"workflow_id": greeting_id,
                                                                    "parameters": {"name": "Al"}})
    execute_id: str = answer["execute_id"]
    return execute_id


def test_read_permission_reads_but_runs_uploads_and_chats_nothing(live: LiveServer, greeting_id: str, a_run: str,
                                                                  tmp_path: Path) -> None:
    reader = live.token(permissions=("read",))
    assert call(live, reader, "GET", "/v1/workflows")["code"] == 0
    assert call(live, reader, "GET", f"/v1/workflows/{greeting_id}")["code"] == 0
    assert call(live, reader, "GET", f"/v1/workflows/{greeting_id}/run_histories/{a_run}")["code"] == 0
    assert call(live, reader, "GET", "/work_flow", params={"execute_id": a_run})["code"] == 0
    denied = [
        ("POST", "/v1/workflow/run", {"json": {"workflow_id": greeting_id}}),
        ("POST", "/v1/workflow/stream_run", {"json": {"workflow_id": greeting_id}}),
        ("POST", "/v1/files/upload", {"files": {"file": ("a.txt", b"x")}}),
        ("POST", "/v1/conversation/create", {"json": {}}),
        ("POST", "/v1/workflow/conversation/create", {"json": {"conversation_name": "x"}}),
    ]
    for method, path, options in denied:
        answer = call(live, reader, method, path, **options)
        assert answer["code"] == 4101 and "lacks the 'run' permission" in answer["msg"], path


def test_no_permission_reads_nothing_and_learns_nothing(live: LiveServer, greeting_id: str, a_run: str) -> None:
    nobody = live.token(permissions=())
    for path in ["/v1/workflows", f"/v1/workflows/{greeting_id}", "/v1/workflows/424242",
                 f"/v1/workflows/{greeting_id}/run_histories/{a_run}", "/v1/files/retrieve?file_id=1"]:
        answer = call(live, nobody, "GET", path)
        assert answer["code"] == 4101 and "lacks the 'read' permission" in answer["msg"], path


def test_another_spaces_ids_answer_like_unknown_ones(live: LiveServer, greeting_id: str, a_run: str) -> None:
    stranger = live.token(spaces=[live.space(OTHER_SPACE)])
    pairs = [
        (f"/v1/workflows/{greeting_id}", "/v1/workflows/4242424242"),
        (f"/v1/workflows/{greeting_id}/versions", "/v1/workflows/4242424242/versions"),
        (f"/v1/workflows/{greeting_id}/run_histories/{a_run}", f"/v1/workflows/{greeting_id}/run_histories/424242"),
        (f"/work_flow?execute_id={a_run}", "/work_flow?execute_id=424242"),
    ]
    for theirs, unknown in pairs:
        seen, never = call(live, stranger, "GET", theirs), call(live, stranger, "GET", unknown)
        assert seen["code"] == never["code"] == 4200, theirs
        assert "does not exist" in seen["msg"]
    workspace = call(live, stranger, "GET", "/v1/workflows", params={"workspace_id": "1"})
    assert workspace["code"] == 4200 and "space 1 does not exist" in workspace["msg"]


def test_a_run_made_through_another_connector_is_absent(live: LiveServer, token: str) -> None:
    workflow_id = live.publish(two_questions(), name="access-asking")
    stream = call(live, token, "POST", "/v1/workflow/stream_run",
                  json={"workflow_id": workflow_id, "connector_id": "999"})["stream"]
    interrupt = json.loads(stream.split("event: Interrupt\ndata: ")[1].split("\n")[0])
    event_id = interrupt["interrupt_data"]["event_id"]
    execute_id = event_id.split("/")[0]
    # The trace and the history show it only to its own channel.
    assert call(live, token, "GET", "/work_flow", params={"execute_id": execute_id})["code"] == 4200
    assert call(live, token, "GET", "/work_flow", params={"execute_id": execute_id,
                                                          "connector_id": "999"})["code"] == 0
    # A resume without connector_id is the API's (1024): it does not reach the web channel's run.
    resume = {"workflow_id": workflow_id, "event_id": event_id, "interrupt_type": 5,
              "resume_data": json.dumps({"city": "Rome"})}
    assert call(live, token, "POST", "/v1/workflow/stream_resume", json=resume)["code"] == 4200
    answered = call(live, token, "POST", "/v1/workflow/stream_resume", json={**resume, "connector_id": "999"})
    assert "event: Interrupt" in answered["stream"]
    # The trace link a run of that channel hands out names it.
    history = call(live, token, "GET", f"/v1/workflows/{workflow_id}/run_histories/{execute_id}",
                   params={"connector_id": "999"})["data"][0]
    assert history["debug_url"].endswith("&connector_id=999")
    trace = urlsplit(history["debug_url"])
    assert call(live, token, "GET", f"/work_flow?{trace.query}")["code"] == 0


def test_a_conversation_in_an_unknown_space_is_4200_not_a_conflict(live: LiveServer, token: str) -> None:
    answer = call(live, token, "POST", "/v1/workflow/conversation/create",
                  json={"conversation_name": "Default", "space_id": "8888888888", "get_or_create": True})
    assert answer["code"] == 4200 and "space 8888888888 does not exist" in answer["msg"]


@pytest.mark.parametrize("path, body, problem", [
    ("/v1/workflow/run", {"connector_id": "9" * 33}, "at most 32 characters"),
    ("/v1/workflow/run", {"bot_id": "1" * 40}, "at most 32 characters"),
    ("/v1/workflow/run", {"workflow_version": "v" * 65}, "at most 64 characters"),
    ("/v1/workflow/run", {"ext": {"user_id": "u" * 256}}, "at most 255 characters"),
    ("/v1/conversation/create", {"name": "n" * 256}, "name"),
    ("/v1/conversation/create", {"meta_data": {str(i): "v" for i in range(17)}}, "at most 16 pairs"),
    ("/v1/conversation/create", {"meta_data": {"k": "v" * 513}}, "1 to 512 characters"),
    ("/v1/workflow/conversation/create", {"conversation_name": "n" * 256}, "conversation_name"),
])
def test_fields_longer_than_knotflow_stores_are_refused(live: LiveServer, token: str, greeting_id: str, path: str,
                                                       body: dict[str, Any], problem: str) -> None:
    answer = call(live, token, "POST", path, json={"workflow_id": greeting_id, **body})
    # Coze's own code for meta_data over its limits is 4003 (the open API reference, §5.2).
    assert answer["code"] == (4003 if "meta_data" in body else 4000) and problem in answer["msg"]


def test_a_signed_link_passed_back_into_a_run_keeps_its_expiry(live: LiveServer, token: str,
                                                               tmp_path: Path) -> None:
    workflow_id = live.publish(file_canvas(), name="access-files")
    uploaded = call(live, token, "POST", "/v1/files/upload", files={"file": ("a.txt", b"abc")})["data"]["id"]
    first = call(live, token, "POST", "/v1/workflow/run",
                 json={"workflow_id": workflow_id, "parameters": {"doc": json.dumps({"file_id": uploaded})}})
    link = json.loads(first["data"])["doc"]
    again = call(live, token, "POST", "/v1/workflow/run", json={"workflow_id": workflow_id,
                                                                   "parameters": {"doc": link}})
    passed = json.loads(again["data"])["doc"]
    assert parse_qs(urlsplit(passed).query)["expires"] == parse_qs(urlsplit(link).query)["expires"]
    assert passed == link
