"""The HTTP request node end to end: cozepy, unchanged, runs published workflows on a real server (built by the
composition root, its allow-list naming 127.0.0.1 only) whose HTTP node calls a real loopback target."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cozepy import Coze, TokenAuth, WorkflowEventType

from knotflow.config import Settings
from tests.api.conftest import LiveServer, free_port, serving
from tests.canvases import http_request, http_workflow, literal, param, ref
from tests.fakes.http_target import HttpTarget, Reply


@pytest.fixture(scope="module")
def target() -> Iterator[HttpTarget]:
    target = HttpTarget().start()
    yield target
    target.stop()


@pytest.fixture(scope="module")
def refused_target() -> Iterator[HttpTarget]:
    """A loopback listener the allow-list does not cover."""
    target = HttpTarget("127.0.0.2").start()
    yield target
    target.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("knotflow-http"), port=free_port(),
                        url_fetch_allow="127.0.0.1")
    with serving(settings) as live:
        yield live


@pytest.fixture(scope="module")
def coze(server: LiveServer) -> Coze:
    return Coze(auth=TokenAuth(server.token()), base_url=server.base_url)


def bearer(token: dict[str, Any]) -> dict[str, Any]:
    return {"authOpen": True, "authType": "BEARER_AUTH", "authData": {"bearerTokenData": [param("token", token)]}}


def test_a_sync_run_returns_the_response(coze: Coze, server: LiveServer, target: HttpTarget) -> None:
    node = http_request(f"{target.base_url}/anything?city={{{{block_output_100001.city}}}}",
                        headers={"X-Trace": literal("t-1")}, auth=bearer(ref("100001", "token")))
    workflow_id = server.publish(http_workflow(node, ("city", "string"), ("token", "string")))
    result = coze.workflows.runs.create(workflow_id=workflow_id, parameters={"city": "São Paulo", "token": "tk"})
    data = json.loads(result.data or "")
    assert data["statusCode"] == 200
    echoed = json.loads(data["body"])
    assert echoed["args"] == {"city": "São Paulo"}
    assert echoed["headers"]["authorization"] == "Bearer tk" and echoed["headers"]["x-trace"] == "t-1"
    assert json.loads(data["headers"])["Content-Type"] == "application/json"


def test_a_stream_shows_the_response_and_an_error_status_fails_the_run(coze: Coze, server: LiveServer,
                                                                       target: HttpTarget) -> None:
    target.route("/teapot", Reply(418, b"short and stout"))
    workflow_id = server.publish(http_workflow(http_request("{{block_output_100001.url}}"), ("url", "string")))
    events = list(coze.workflows.runs.stream(workflow_id=workflow_id,
                                             parameters={"url": f"{target.base_url}/anything"}))
    assert [e.event for e in events] == [WorkflowEventType.MESSAGE]
    assert json.loads(events[0].message.content)["statusCode"] == 200

    events = list(coze.workflows.runs.stream(workflow_id=workflow_id, parameters={"url": f"{target.base_url}/teapot"}))
    errors = [e.error for e in events if e.event == WorkflowEventType.ERROR]
    assert len(errors) == 1 and errors[0].error_code == 5000
    assert errors[0].error_message.startswith(f"[720701013] request {target.base_url}/teapot failed, response "
                                              "status code=418")
    assert errors[0].error_message.endswith("body=short and stout")


def test_an_uploaded_file_is_sent_as_form_data(coze: Coze, server: LiveServer, target: HttpTarget,
                                               tmp_path: Path) -> None:
    target.route("/upload", Reply(body={"stored": True}))
    path = tmp_path / "notes 2024.txt"
    path.write_bytes(b"line one\nline two\n")
    file_id = coze.files.upload(file=path).id
    form = {"bodyType": "FORM_DATA", "bodyData": {"formData": {"data": [
        param("kind", literal("notes")), param("file", {**ref("100001", "doc"), "assistType": 1})]}}}
    start = {"name": "doc", "type": "string", "assistType": 1, "required": True}
    workflow_id = server.publish(http_workflow(http_request(f"{target.base_url}/upload", "POST", body=form), start))
    result = coze.workflows.runs.create(workflow_id=workflow_id, parameters={"doc": {"file_id": file_id}})
    assert json.loads(json.loads(result.data or "")["body"]) == {"stored": True}
    # The signed link of the uploaded file was read straight from the file storage and sent with its name.
    parts = target.requests[-1].form_parts()
    assert parts["kind"] == (None, "text/plain", b"notes")
    assert parts["file"] == ("notes 2024.txt", "text/plain", b"line one\nline two\n")


def test_an_address_outside_the_allow_list_is_refused(coze: Coze, server: LiveServer, target: HttpTarget,
                                                      refused_target: HttpTarget) -> None:
    target.route("/away", Reply(302, headers=[("Location", f"{refused_target.base_url}/x")]))
    workflow_id = server.publish(http_workflow(http_request("{{block_output_100001.url}}"), ("url", "string")))
    for url in (f"{refused_target.base_url}/x", f"http://[::1]:{target.port}/anything", f"{target.base_url}/away"):
        events = list(coze.workflows.runs.stream(workflow_id=workflow_id, parameters={"url": url}))
        errors = [e.error for e in events if e.event == WorkflowEventType.ERROR]
        assert len(errors) == 1 and "non-public address" in errors[0].error_message, url
        assert "KNOTFLOW_URL_FETCH_ALLOW" in errors[0].error_message
    assert refused_target.connections == 0
