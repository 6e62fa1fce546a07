"""The bytes on the wire, and every open-API error code, checked with raw httpx."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import canvases
from tests.api.conftest import LiveServer

LOGID = re.compile(r"^\d{14}[0-9A-F]{20}$")
FRAME = re.compile(r"id: (\d+)\nevent: (\w+)\ndata: (.*)\n\n")


@pytest.fixture(scope="module")
def greeting_id(live: LiveServer) -> str:
    return live.publish(canvases.greeting(), name="greeting-wire")


@pytest.fixture(scope="module")
def echo_id(live: LiveServer) -> str:
    return live.publish(canvases.echo(), name="echo")


def parse_frames(body: str) -> list[tuple[int, str, dict[str, Any]]]:
    frames = FRAME.findall(body)
    assert "".join(f"id: {i}\nevent: {e}\ndata: {d}\n\n" for i, e, d in frames) == body, "stray bytes in stream"
    return [(int(i), e, json.loads(d)) for i, e, d in frames]


def stream(http: httpx.Client, body: dict[str, Any]) -> tuple[httpx.Response, str]:
    with http.stream("POST", "/v1/workflow/stream_run", json=body) as response:
        text = response.read().decode()
    return response, text


def test_stream_framing_is_exactly_cozes(http: httpx.Client, greeting_id: str) -> None:
    response, body = stream(http, {"workflow_id": greeting_id, "parameters": {"name": "张三 & co"}})
    assert response.status_code == 200
    assert "text/event-stream" in response.headers["content-type"]
    assert LOGID.match(response.headers["x-tt-logid"])
    frames = parse_frames(body)
    assert [f[0] for f in frames] == [0, 1, 2]
    assert [f[1] for f in frames] == ["Message", "Message", "Done"]
    output = frames[0][2]
    assert output == {
        "content": "Hello, 张三 & co!", "content_type": "text", "node_title": "Output", "node_seq_id": "0",
        "node_is_finish": True, "node_type": "Message", "node_id": "135000", "node_execute_uuid": "",
    }
    assert "张三" in body  # raw UTF-8, not \u-escaped
    end = frames[1][2]
    assert end["node_id"] == "900001" and end["node_type"] == "End" and end["node_seq_id"] == "0"
    assert end["usage"] == {"token_count": 0, "output_count": 0, "input_count": 0}
    done = frames[2][2]
    assert set(done) == {"node_execute_uuid", "debug_url"} and "execute_id=" in done["debug_url"]
    for line in body.split("\n"):
        if line.startswith("data: "):
            assert ", " not in line.replace("& co", "") or '": ' not in line  # compact JSON


def test_parameters_as_json_string(http: httpx.Client, echo_id: str) -> None:
    _, body = stream(http, {"workflow_id": echo_id, "parameters": json.dumps({"input": "as string"})})
    frames = parse_frames(body)
    assert json.loads(frames[0][2]["content"]) == {"output": "as string"}


def test_error_envelope_has_logid_everywhere(http: httpx.Client) -> None:
    response = http.post("/v1/workflow/stream_run", json={"workflow_id": "1"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == 4200 and body["msg"]
    assert body["detail"]["logid"] == response.headers["x-tt-logid"]
    missing = http.get("/v1/nowhere")
    assert missing.json()["code"] == 4000 and LOGID.match(missing.headers["x-tt-logid"])


def error_code(http: httpx.Client, path: str, body: dict[str, Any], **kwargs: Any) -> int:
    response = http.post(path, json=body, **kwargs)
    assert response.headers["content-type"].startswith("application/json"), response.text[:200]
    payload = response.json()
    assert payload["msg"] and "logid" in payload["detail"]
    return int(payload["code"])


@pytest.mark.parametrize("path", ["/v1/workflow/stream_run", "/v1/workflow/run"])
def test_request_errors(live: LiveServer, http: httpx.Client, path: str, echo_id: str) -> None:
    assert error_code(http, path, {"workflow_id": "424242"}) == 4200
    assert error_code(http, path, {"workflow_id": echo_id, "bot_id": "1", "app_id": "2"}) == 4000
    assert error_code(http, path, {"workflow_id": echo_id, "ext": {"city": "x"}}) == 4000
    assert error_code(http, path, {"workflow_id": echo_id, "parameters": "[not json"}) == 4000
    assert error_code(http, path, {"workflow_id": echo_id, "parameters": [1]}) == 4000
    assert error_code(http, path, {"workflow_id": echo_id, "workflow_version": "v9.9.9"}) == 4200
    assert error_code(http, path, {"parameters": {}}) == 4000
    assert error_code(http, path, {"workflow_id": echo_id}, headers={"Authorization": ""}) == 4100
    assert error_code(http, path, {"workflow_id": echo_id}, headers={"Authorization": "Bearer pat_nope"}) == 4100
    no_run = live.token(permissions=("read",))
    assert error_code(http, path, {"workflow_id": echo_id}, headers={"Authorization": f"Bearer {no_run}"}) == 4101
    # A workflow of a space the token cannot use is reported like an unknown one (no existence oracle).
    other_space = live.token(spaces=[live.space("7000000000000000001")])
    assert error_code(http, path, {"workflow_id": echo_id},
                      headers={"Authorization": f"Bearer {other_space}"}) == 4200


def test_unpublished_workflow_is_4200(live: LiveServer, http: httpx.Client) -> None:
    from knotflow.service import catalog

    async def draft_only(store: Any) -> str:
        workflow, _ = await catalog.import_workflow(store, canvases.echo(), name="draft")
        return workflow.id

    workflow_id = live.call(draft_only)
    assert error_code(http, "/v1/workflow/stream_run", {"workflow_id": workflow_id}) == 4200


def test_app_and_bot_requirements(live: LiveServer, http: httpx.Client) -> None:
    app_workflow = live.publish(canvases.echo(), name="in-app", app_id="7100000000000000001")
    assert error_code(http, "/v1/workflow/run", {"workflow_id": app_workflow}) == 4000
    assert error_code(http, "/v1/workflow/run", {"workflow_id": app_workflow, "app_id": "7100000000000000002"}) == 4000
    ok = http.post("/v1/workflow/run", json={"workflow_id": app_workflow, "app_id": "7100000000000000001",
                                              "parameters": {"input": "x"}}).json()
    assert ok["code"] == 0 and json.loads(ok["data"]) == {"output": "x"}
    bot_workflow = live.publish(canvases.echo(), name="needs-bot", requires_bot=True)
    assert error_code(http, "/v1/workflow/run", {"workflow_id": bot_workflow}) == 4000
    assert error_code(http, "/v1/workflow/run", {"workflow_id": bot_workflow, "bot_id": "7200000000000000001"}) == 4000
    live.bot("7200000000000000001")
    ok = http.post("/v1/workflow/run", json={"workflow_id": bot_workflow, "bot_id": "7200000000000000001"}).json()
    assert ok["code"] == 0
    # An app's bot-scoped data is the app's: its id serves as well.
    ok = http.post("/v1/workflow/run", json={"workflow_id": bot_workflow, "app_id": live.app()}).json()
    assert ok["code"] == 0


def test_bot_and_app_of_a_run_must_exist_in_a_space_of_the_token(live: LiveServer, http: httpx.Client,
                                                                  echo_id: str) -> None:
    for field in ("bot_id", "app_id"):
        body = http.post("/v1/workflow/run", json={"workflow_id": echo_id, field: "7200000000000000404"}).json()
        kind = field.removesuffix("_id")
        assert body["code"] == 4000 and f"{kind} 7200000000000000404 does not exist" in body["msg"]
    elsewhere = live.bot(space=live.space("7200000000000000009"))
    body = http.post("/v1/workflow/run", json={"workflow_id": echo_id, "bot_id": elsewhere,
                                               "parameters": {"input": "x"}}).json()
    assert body["code"] == 0  # the default token may use every space
    limited = live.token(spaces=[live.call(_first_space)])  # the workflow's space, not the bot's
    body = http.post("/v1/workflow/run", json={"workflow_id": echo_id, "bot_id": elsewhere},
                     headers={"Authorization": f"Bearer {limited}"}).json()
    assert body["code"] == 4000 and f"bot {elsewhere} does not exist" in body["msg"]


async def _first_space(store: Any) -> str:
    return str((await store.ensure_space()).id)


def test_workflow_version_selects_a_published_version(live: LiveServer, http: httpx.Client) -> None:
    from knotflow.service import catalog

    workflow_id = live.publish(canvases.echo(), name="versioned")
    changed = canvases.canvas(
        [canvases.start(("input", "string")),
         canvases.end_return(output=canvases.literal("second version"))],
        [canvases.edge("100001", "900001")],
    )

    async def republish(store: Any) -> str:
        await catalog.import_workflow(store, changed, workflow_id=workflow_id)
        return (await catalog.publish(store, workflow_id)).version

    assert live.call(republish) == "v0.0.2"
    latest = http.post("/v1/workflow/run", json={"workflow_id": workflow_id, "parameters": {"input": "a"}}).json()
    assert json.loads(latest["data"]) == {"output": "second version"}
    first = http.post("/v1/workflow/run", json={"workflow_id": workflow_id, "parameters": {"input": "a"},
                                                 "workflow_version": "v0.0.1"}).json()
    assert json.loads(first["data"]) == {"output": "a"}


def test_run_history_is_isolated_by_connector(http: httpx.Client, echo_id: str) -> None:
    run = http.post("/v1/workflow/run", json={"workflow_id": echo_id, "connector_id": "999"}).json()
    path = f"/v1/workflows/{echo_id}/run_histories/{run['execute_id']}"
    assert http.get(path).json()["code"] == 4200
    seen = http.get(path, params={"connector_id": "999"}).json()
    assert seen["code"] == 0 and seen["data"][0]["connector_id"] == "999"


def _chunks(size: int) -> Iterator[bytes]:
    block = b"x" * (1024 * 1024)
    sent = 0
    yield b'{"workflow_id":"1","parameters":{"input":"'
    while sent < size:
        yield block
        sent += len(block)
    yield b'"}}'


def test_oversized_body_is_refused(http: httpx.Client, echo_id: str) -> None:
    declared = http.post("/v1/workflow/run", content=b"".join(_chunks(21 * 1024 * 1024)),
                         headers={"Content-Type": "application/json"})
    assert declared.json()["code"] == 4000 and "20 MB" in declared.json()["msg"]
    chunked = http.post("/v1/workflow/run", content=_chunks(21 * 1024 * 1024),
                        headers={"Content-Type": "application/json"})
    assert chunked.json()["code"] == 4000 and "20 MB" in chunked.json()["msg"]


def test_run_data_over_the_limit_fails_with_error_then_done(http: httpx.Client, live: LiveServer) -> None:
    workflow_id = live.publish(canvases.greeting(), name="big")
    _, body = stream(http, {"workflow_id": workflow_id, "parameters": {"name": "y" * (11 * 1024 * 1024)}})
    frames = parse_frames(body)
    assert [f[1] for f in frames][-2:] == ["Error", "Done"]
    error = frames[-2][2]
    assert error["error_code"] == 5000 and re.match(r"^\[\d+\] ", error["error_message"])
    execute_id = re.search(r"execute_id=(\d+)", frames[-1][2]["debug_url"]).group(1)  # type: ignore[union-attr]
    history = http.get(f"/v1/workflows/{workflow_id}/run_histories/{execute_id}").json()["data"][0]
    assert history["execute_status"] == "Fail" and "limit" in history["error_message"]


def test_a_whole_float_is_written_as_go_writes_it(live: LiveServer, http: httpx.Client) -> None:
    """A float output holding a whole number is an integer in the JSON, as Coze's Go encoder writes it."""
    number = canvases.ref("100001", "n", "float")
    canvas = canvases.canvas([canvases.start(("n", "float")), canvases.end_return(n=number, half=number)],
                             [canvases.edge("100001", "900001")])
    workflow_id = live.publish(canvas, name="whole-float")
    answer = http.post("/v1/workflow/run", json={"workflow_id": workflow_id, "parameters": {"n": 3}}).json()
    assert answer["data"] == '{"n":3,"half":3}'
    _, body = stream(http, {"workflow_id": workflow_id, "parameters": {"n": 2.5}})
    assert parse_frames(body)[0][2]["content"] == '{"n":2.5,"half":2.5}'
