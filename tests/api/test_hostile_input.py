"""Inputs that once crashed a handler: each is answered with a clear 4000-class error in Coze's envelope, and the
keep-alive connection stays usable for the client's next request."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests import canvases as c
from tests.api.conftest import LiveServer
from tests.api.test_resume import two_questions


def nested(depth: int) -> str:
    return '{"a":' * depth + '"x"' + "}" * depth


@pytest.fixture()
def connection(live: LiveServer) -> Iterator[http.client.HTTPConnection]:
    conn = http.client.HTTPConnection("127.0.0.1", int(live.base_url.rsplit(":", 1)[1]), timeout=30)
    try:
        yield conn
    finally:
        conn.close()


def exchange(conn: http.client.HTTPConnection, token: str, method: str, path: str, body: str | bytes | None = None,
             content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
    """One request on the kept-alive connection; asserts the connection is still usable after it."""
    conn.request(method, path, body=body, headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
    sock = conn.sock
    response = conn.getresponse()
    answer = json.loads(response.read())
    assert response.getheader("connection") != "close"
    conn.request("GET", "/health")
    health = conn.getresponse()
    assert health.status == 200 and json.loads(health.read())["code"] == 0
    assert conn.sock is sock, "the server dropped the keep-alive connection"
    return response.status, answer


@pytest.fixture(scope="module")
def greeting_id(live: LiveServer) -> str:
    return live.publish(c.greeting(), name="hostile-greeting")


def test_a_non_ascii_signature_on_a_file_link(connection: http.client.HTTPConnection, token: str) -> None:
    status, answer = exchange(connection, token, "GET", "/v1/files/123/content?expires=999&signature=%D9%A3")
    assert status == 403 and answer["code"] == 4101 and "signature is invalid" in answer["msg"]


@pytest.mark.parametrize("depth", [260, 1000])
def test_parameters_nested_hundreds_of_levels(connection: http.client.HTTPConnection, token: str, greeting_id: str,
                                              depth: int) -> None:
    body = f'{{"workflow_id": "{greeting_id}", "parameters": {{"name": {nested(depth)}}}}}'
    _, answer = exchange(connection, token, "POST", "/v1/workflow/run", body)
    assert answer["code"] == 4000 and "nests deeper than 128 levels" in answer["msg"]
    as_text = json.dumps({"workflow_id": greeting_id, "parameters": f'{{"name": {nested(depth)}}}'})
    _, answer = exchange(connection, token, "POST", "/v1/workflow/run", as_text)
    assert answer["code"] == 4000 and "nests deeper than 128 levels" in answer["msg"]


def test_a_resume_nested_a_thousand_levels(connection: http.client.HTTPConnection, token: str, live: LiveServer,
                                           http: Any) -> None:
    workflow_id = live.publish(two_questions(), name="hostile-asking")
    stream = http.post("/v1/workflow/stream_run", json={"workflow_id": workflow_id}).text
    event_id = json.loads(stream.split("event: Interrupt\ndata: ")[1].split("\n")[0])["interrupt_data"]["event_id"]
    body = json.dumps({"workflow_id": workflow_id, "event_id": event_id, "interrupt_type": 5,
                       "resume_data": f'{{"city": {nested(1000)}}}'})
    _, answer = exchange(connection, token, "POST", "/v1/workflow/stream_resume", body)
    assert answer["code"] == 4000 and "nests deeper than 128 levels" in answer["msg"]
    # The run still waits for a proper answer.
    body = json.dumps({"workflow_id": workflow_id, "event_id": event_id, "interrupt_type": 5,
                       "resume_data": json.dumps({"city": "Oslo"})})
    assert "event: Interrupt" in http.post("/v1/workflow/stream_resume", content=body).text


def test_an_upload_with_a_5000_character_boundary(connection: http.client.HTTPConnection, token: str) -> None:
    boundary = "b" * 5000
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nxx\r\n"
            f"--{boundary}--\r\n")
    _, answer = exchange(connection, token, "POST", "/v1/files/upload", body,
                         f"multipart/form-data; boundary={boundary}")
    assert answer["code"] == 4304 and "boundary is longer than 70" in answer["msg"]


@pytest.mark.parametrize("page_token", ["18446744073709551616", "%C2%B2", "-1", "1e3"])
def test_a_page_token_that_is_no_small_number(connection: http.client.HTTPConnection, token: str, greeting_id: str,
                                              page_token: str) -> None:
    _, answer = exchange(connection, token, "GET", f"/v1/workflows/{greeting_id}/versions?page_token={page_token}")
    assert answer["code"] == 4000 and "page_token is invalid" in answer["msg"]


def test_a_trailing_slash_is_an_unknown_endpoint_in_cozes_envelope(connection: http.client.HTTPConnection,
                                                                   token: str) -> None:
    status, answer = exchange(connection, token, "GET", "/v1/workflows/")
    assert status == 200 and answer["code"] == 4000 and "does not exist" in answer["msg"]
