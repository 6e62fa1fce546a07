"""The HTTP request node (45) through the real engine, the real guarded HTTP client and URL fetcher, against a
real loopback HTTP target (allowed through KNOTFLOW_URL_FETCH_ALLOW): how requests are built from the canvas,
how responses become outputs, retries, timeouts and limits. The SSRF battery is tests/outbound/test_ssrf.py;
the conformance cases (tests/conformance) run Coze Studio's own httprequester canvases."""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from knotflow.contract import RunServices
from knotflow.engine.events import NodeFinished
from knotflow.engine.runner import Execution
from knotflow.errors import CanvasError, KnotflowError
from knotflow.nodes import http_request
from tests.canvases import HTTP_NODE_ID, http_workflow, literal, param, ref
from tests.canvases import http_request as http_node
from tests.fakes.http_target import HttpTarget, Recorded, Reply, http_target, outbound_services
from tests.node_types import compile_canvas
from tests.nodes.helpers import conformance_canvas, run_outbound

__all__ = ["http_target"]


async def ok(canvas: dict[str, Any], params: dict[str, Any] | None, tmp_path: Path, **options: Any) -> dict[str, Any]:
    result, error, _ = await run_outbound(canvas, params, tmp_path, **options)
    assert error is None, error.message
    assert result is not None
    return result.output


async def failure(canvas: dict[str, Any], params: dict[str, Any] | None, tmp_path: Path, **options: Any) -> str:
    result, error, _ = await run_outbound(canvas, params, tmp_path, **options)
    assert error is not None, f"the run succeeded: {result}"
    return error.message


def start_ref(name: str, type_: str = "string") -> dict[str, Any]:
    return ref("100001", name, type_)


def file_input(name: str) -> dict[str, Any]:
    return {**start_ref(name), "assistType": 1}


# --- Coze Studio's TestHttpRequester, for the canvases cases.jsonl has no case for ----------------------
COZE_INPUTS = {"v1": "v1", "v2": "v2", "h_v1": "h_v1", "h_v2": "h_v2", "auth_key": "authKey",
               "auth_value": "authValue"}


def coze_canvas(name: str, target: HttpTarget) -> dict[str, Any]:
    text = json.dumps(conformance_canvas(f"httprequester/{name}.json"))
    return dict(json.loads(text.replace("http://127.0.0.1:8080", target.base_url)))


async def test_coze_json_body(http_target: HttpTarget, tmp_path: Path) -> None:
    http_target.route("/custom_auth_json_body", Reply(body={"message": "custom_auth_json_body"}))
    output = await ok(coze_canvas("custom_auth_json_body", http_target), {**COZE_INPUTS, "json_key": "json_body"},
                      tmp_path)
    assert output == {"body": '{"message":"custom_auth_json_body"}', "h2_v2": "h_v2"}
    sent = http_target.requests[-1]
    assert json.loads(sent.body) == {"v1": "1", "v2": "json_body"}
    assert sent.header("content-type") == "application/json"
    assert sent.query["authKey"] == ["authValue"]


async def test_coze_form_url_body(http_target: HttpTarget, tmp_path: Path) -> None:
    http_target.route("/custom_auth_form_url_body", Reply(body={"message": "custom_auth_form_url_body"}))
    output = await ok(coze_canvas("custom_auth_form_url_body", http_target),
                      {**COZE_INPUTS, "form_url_v1": "formUrlV1", "form_url_v2": "formUrlV2"}, tmp_path)
    assert output["body"] == '{"message":"custom_auth_form_url_body"}'
    sent = http_target.requests[-1]
    assert sent.body == b"v1=formUrlV1&v2=formUrlV2"
    assert sent.header("content-type") == "application/x-www-form-urlencoded"


async def test_coze_http_error_returns_the_default_output(http_target: HttpTarget, tmp_path: Path) -> None:
    # settingOnError switch on with dataOnErr: the 500 is turned into the default output.
    http_target.route("/http_error", Reply(500))
    output = await ok(coze_canvas("http_error", http_target), COZE_INPUTS, tmp_path)
    assert output == {"body": "v1", "h2_v2": "h_v2"}
    assert len(http_target.requests) == 1  # an HTTP error status is an answer: setting.retryTimes does not apply


# --- building the request -----------------------------------------------------------------------------
async def test_url_template_query_and_headers(http_target: HttpTarget, tmp_path: Path) -> None:
    http_target.route("/items/42", Reply())
    node = http_node(
        f"{http_target.base_url}/items/{{{{block_output_100001.id}}}}?b=2&a=1&q=old&m={{{{block_output_100001.obj.k}}}}"
        "&raw={{input}}\n",
        headers={"X-One": start_ref("h"), "x-one": literal("later"), "X-Lit": literal("abc")},
        params={"q": start_ref("q"), "z": literal("a b&c")},
    )
    canvas = http_workflow(node, ("id", "string"), ("obj", "object"), ("h", "string"), ("q", "string"))
    await ok(canvas, {"id": "42", "obj": {"k": "v"}, "h": "first", "q": "new"}, tmp_path)
    sent = http_target.requests[-1]
    # Go's url.Values: the URL's own query and the params, the params replacing, written back sorted by name.
    assert sent.target == "/items/42?a=1&b=2&m=v&q=new&raw=%7B%7Binput%7D%7D&z=a+b%26c"
    assert sent.header("x-one") == "later"  # one name set twice (in any case): the last value
    assert sent.header("x-lit") == "abc"


async def test_templates_render_values_as_studio(http_target: HttpTarget, tmp_path: Path) -> None:
    http_target.route("/json", Reply(body="{}"))
    template = ('{"s": "{{block_output_100001.s}}", "n": {{block_output_100001.n}}, "i": {{block_output_100001.i}}, '
                '"o": {{block_output_100001.o}}, "l1": {{block_output_100001.l[1]}}, "b": {{block_output_100001.b}}, '
                '"none": "{{block_output_100001.none}}", "other": "{{input}}"}')
    node = http_node(f"{http_target.base_url}/json", "POST",
                     body={"bodyType": "JSON", "bodyData": {"json": template}})
    canvas = http_workflow(node, ("s", "string"), ("n", "float"), ("i", "integer"), ("o", "object"),
                           ("l", "list"), ("b", "boolean"), ("none", "string"))
    await ok(canvas, {"s": 'say "hi"', "n": 1.5, "i": 7, "o": {"z": 1, "a": [2]}, "l": ["x", {"k": 1}],
                      "b": True}, tmp_path)
    # Text as it is (a JSON body template is not escaped), objects with sorted keys, null as nothing, a
    # placeholder naming no upstream value as written.
    assert http_target.requests[-1].body.decode() == (
        '{"s": "say "hi"", "n": 1.5, "i": 7, "o": {"a":[2],"z":1}, "l1": {"k":1}, "b": true, '
        '"none": "", "other": "{{input}}"}')


async def test_global_variable_in_the_url(http_target: HttpTarget, tmp_path: Path) -> None:
    node = http_node(f'{http_target.base_url}/anything?aa={{{{global_variable_app["app"]}}}}&cc=1')
    output = await ok(http_workflow(node), {}, tmp_path, variables={("global_variable_app", "app"): "1.0"})
    assert json.loads(output["body"])["url"].endswith("/anything?aa=1.0&cc=1")


@pytest.mark.parametrize(("auth", "header", "query"), [
    ({"authType": "BEARER_AUTH", "authData": {"bearerTokenData": [param("token", literal("t0k"))]}},
     ("authorization", "Bearer t0k"), None),
    ({"authType": "BASIC_AUTH", "authData": {"basicAuthData": [param("username", literal("ann")),
                                                               param("password", literal("s3:cret"))]}},
     ("authorization", "Basic YW5uOnMzOmNyZXQ="), None),
    ({"authType": "CUSTOM_AUTH", "authData": {"customData": {"addTo": "header", "data": [
        param("Key", literal("X-Api-Key")), param("Value", literal("k1"))]}}}, ("x-api-key", "k1"), None),
    ({"authType": "CUSTOM_AUTH", "authData": {"customData": {"addTo": "query", "data": [
        param("Key", literal("api_key")), param("Value", literal("k 2"))]}}}, None, "/anything?a=1&api_key=k+2"),
])
async def test_authentication(auth: dict[str, Any], header: tuple[str, str] | None, query: str | None,
                              http_target: HttpTarget, tmp_path: Path) -> None:
    node = http_node(f"{http_target.base_url}/anything?api_key=theirs&a=1",
                     headers={"Authorization": literal("Bearer overridden")},
                     auth={"authOpen": True, **auth})
    await ok(http_workflow(node), {}, tmp_path)
    sent = http_target.requests[-1]
    if header is not None:
        assert sent.header(header[0]) == header[1]
    if query is not None:
        assert sent.target == query


async def test_auth_off_sends_nothing(http_target: HttpTarget, tmp_path: Path) -> None:
    auth = {"authOpen": False, "authType": "BEARER_AUTH",
            "authData": {"bearerTokenData": [param("token", literal("t0k"))]}}
    await ok(http_workflow(http_node(f"{http_target.base_url}/anything", auth=auth)), {}, tmp_path)
    assert http_target.requests[-1].header("authorization") is None


async def test_form_urlencoded_and_raw_text(http_target: HttpTarget, tmp_path: Path) -> None:
    form = {"bodyType": "FORM_URLENCODED", "bodyData": {"formURLEncoded": [
        param("z", literal("last")), param("a", start_ref("a")), param("m", literal("x y&z=é"))]}}
    await ok(http_workflow(http_node(f"{http_target.base_url}/anything", "POST", body=form), ("a", "integer")),
             {"a": 3}, tmp_path)
    assert http_target.requests[-1].body == b"a=3&m=x+y%26z%3D%C3%A9&z=last"

    raw = {"bodyType": "RAW_TEXT", "bodyData": {"rawText": "hello {{block_output_100001.who}}"}}
    node = http_node(f"{http_target.base_url}/anything", "PUT", body=raw, headers={"content-type": literal("text/x")})
    await ok(http_workflow(node, ("who", "string")), {"who": "wörld"}, tmp_path)
    sent = http_target.requests[-1]
    assert (sent.method, sent.body, sent.header("content-type")) == ("PUT", "hello wörld".encode(), "text/x")


async def test_form_data_with_files(http_target: HttpTarget, tmp_path: Path) -> None:
    http_target.route("/report.pdf", Reply(body=b"%PDF-1.7 bytes", headers=[("Content-Type", "application/pdf")]))
    http_target.route("/raw", Reply(body=b"\x00\x01"))
    form = {"bodyType": "FORM_DATA", "bodyData": {"formData": {"data": [
        param("title", literal("Q3")), param("doc", file_input("doc")), param("blob", file_input("blob")),
        param("count", start_ref("count", "integer"))]}}}
    node = http_node(f"{http_target.base_url}/anything", "POST", body=form,
                     headers={"Content-Type": literal("application/json")})
    canvas = http_workflow(node, ("doc", "string"), ("blob", "string"), ("count", "integer"))
    await ok(canvas, {"doc": f"{http_target.base_url}/report.pdf?x-wf-file_name=Q3%20report.pdf",
                      "blob": f"{http_target.base_url}/raw", "count": 2}, tmp_path)
    sent = http_target.requests[-1]
    # The canvas's Content-Type gives way to the one naming the boundary.
    assert str(sent.header("content-type")).startswith("multipart/form-data; boundary=")
    parts = sent.form_parts()
    assert list(parts) == ["title", "doc", "blob", "count"]  # the canvas's order
    assert parts["title"] == (None, "text/plain", b"Q3")
    assert parts["doc"] == ("report.pdf", "application/pdf", b"%PDF-1.7 bytes")
    assert parts["blob"] == ("raw", "application/octet-stream", b"\x00\x01")
    assert parts["count"][2] == b"2"


async def test_form_data_files_are_limited(http_target: HttpTarget, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_request, "MAX_FORM_FILE_BYTES", 10)
    http_target.route("/big", Reply(body=b"x" * 11))
    form = {"bodyType": "FORM_DATA", "bodyData": {"formData": {"data": [param("f", file_input("f"))]}}}
    message = await failure(http_workflow(http_node(f"{http_target.base_url}/anything", "POST", body=form),
                                          ("f", "string")), {"f": f"{http_target.base_url}/big"}, tmp_path)
    assert "too large body: the form-data files exceed 10 bytes" in message
    assert [r.path for r in http_target.requests] == ["/big"]  # the request itself was not sent


async def test_binary_body(http_target: HttpTarget, tmp_path: Path) -> None:
    http_target.route("/file", Reply(body=b"A" * 2048, headers=[("Content-Type", "text/plain")]))
    body = {"bodyType": "BINARY", "bodyData": {"binary": {"fileURL": file_input("file")}}}
    await ok(http_workflow(http_node(f"{http_target.base_url}/anything", "PATCH", body=body), ("file", "string")),
             {"file": f"{http_target.base_url}/file"}, tmp_path)
    sent = http_target.requests[-1]
    assert (sent.method, sent.body, sent.header("content-type")) == ("PATCH", b"A" * 2048,
                                                                      "application/octet-stream")
    message = await failure(http_workflow(http_node(f"{http_target.base_url}/anything", "POST", body=body),
                                          ("file", "string")), {"file": f"{http_target.base_url}/gone"}, tmp_path)
    assert "the binary body" in message and "HTTP 404" in message


# --- the response -------------------------------------------------------------------------------------
async def test_outputs_as_studio_shapes_them(http_target: HttpTarget, tmp_path: Path) -> None:
    # A chunked body (the target sends the body as given when the reply names a Transfer-Encoding).
    http_target.route("/h", Reply(201, b'b\r\n{"ok":true}\r\n0\r\n\r\n', headers=[
        ("Content-Type", "application/json"), ("x-multi", "1"), ("X-MULTI", "2"), ("x-html", "<a&b>"),
        ("Transfer-Encoding", "chunked")]))
    output = await ok(http_workflow(http_node(f"{http_target.base_url}/h")), {}, tmp_path)
    assert output["body"] == '{"ok":true}'
    assert output["statusCode"] == 201
    headers = json.loads(output["headers"])
    assert list(headers) == sorted(headers) and "Transfer-Encoding" not in headers
    assert headers["X-Multi"] == "2"  # canonical name, last value
    assert headers["Content-Type"] == "application/json"
    assert '"X-Html":"\\u003ca\\u0026b\\u003e"' in output["headers"]  # Go's encoding/json escapes


@pytest.mark.parametrize(("content_type", "data", "text"), [
    ("text/plain; charset=GBK", "中文".encode("gbk"), "中文"),
    ('text/html; charset="iso-8859-1"', "café".encode("latin-1"), "café"),
    ("text/plain", b"ok \xff", "ok \ufffd"),  # no charset: UTF-8, what does not decode replaced
    ("text/plain; charset=no-such", "é".encode(), "é"),
])
async def test_charsets(content_type: str, data: bytes, text: str, http_target: HttpTarget, tmp_path: Path) -> None:
    http_target.route("/t", Reply(body=data, headers=[("Content-Type", content_type)]))
    assert (await ok(http_workflow(http_node(f"{http_target.base_url}/t")), {}, tmp_path))["body"] == text


async def test_the_trace(http_target: HttpTarget, tmp_path: Path) -> None:
    # Inputs by Studio's names; the body with its \uXXXX escapes decoded, as Studio's trace shows it.
    http_target.route("/u", Reply(body=b'{"name":"\\u4e2d\\u6587"}'))
    node = http_node(f"{http_target.base_url}/u", headers={"X-Who": literal("me")})
    result, _, events = await run_outbound(http_workflow(node), {}, tmp_path)
    assert result is not None and result.output["body"] == '{"name":"\\u4e2d\\u6587"}'
    trace = next(e for e in events if isinstance(e, NodeFinished) and e.node_id == HTTP_NODE_ID)
    assert json.loads(trace.outputs)["body"] == '{"name":"中文"}'
    assert json.loads(trace.inputs) == {f"__headers_{hashlib.md5(b'X-Who').hexdigest()}": "me"}


async def test_an_error_status_fails_the_node(http_target: HttpTarget, tmp_path: Path) -> None:
    http_target.route("/missing", Reply(404, b"nothing here", headers=[("X-Why", "gone")]))
    message = await failure(http_workflow(http_node(f"{http_target.base_url}/missing?token=secret")), {}, tmp_path)
    assert message.startswith(f"request {http_target.base_url}/missing?token=secret failed, response status "
                              "code=404, status=404 Not Found, headers={")
    assert '"X-Why":"gone"' in message and message.endswith(", body=nothing here")
    assert len(http_target.requests) == 1  # not retried


async def test_gzip(http_target: HttpTarget, tmp_path: Path) -> None:
    packed = gzip.compress(b"unpacked text")
    http_target.route("/z", Reply(body=packed, headers=[("Content-Encoding", "gzip")]))
    output = await ok(http_workflow(http_node(f"{http_target.base_url}/z")), {}, tmp_path)
    assert output["body"] == "unpacked text"
    assert http_target.requests[-1].header("accept-encoding") == "gzip"
    assert {"Content-Encoding", "Content-Length"}.isdisjoint(json.loads(output["headers"]))  # as Go
    # Asking for an encoding oneself: the body as the server sent it (Go does not decode it either).
    node = http_node(f"{http_target.base_url}/z", headers={"Accept-Encoding": literal("gzip")})
    output = await ok(http_workflow(node), {}, tmp_path)
    assert output["body"] == packed.decode("utf-8", "replace")
    assert json.loads(output["headers"])["Content-Encoding"] == "gzip"


async def test_redirects(http_target: HttpTarget, tmp_path: Path) -> None:
    http_target.route("/moved", Reply(302, headers=[("Location", "/anything?from=moved")]))
    http_target.route("/see-other", Reply(303, headers=[("Location", "/anything")]))
    http_target.route("/loop", Reply(302, headers=[("Location", "/loop")]))
    output = await ok(http_workflow(http_node(f"{http_target.base_url}/moved")), {}, tmp_path)
    assert json.loads(output["body"])["args"] == {"from": "moved"}
    body = {"bodyType": "RAW_TEXT", "bodyData": {"rawText": "payload"}}
    output = await ok(http_workflow(http_node(f"{http_target.base_url}/see-other", "POST", body=body)), {}, tmp_path)
    assert json.loads(output["body"])["method"] == "GET"  # 303: the redirect is fetched with GET
    message = await failure(http_workflow(http_node(f"{http_target.base_url}/loop")), {}, tmp_path)
    assert "stopped after 10 redirects" in message


async def test_response_size_limit(http_target: HttpTarget, tmp_path: Path) -> None:
    http_target.route("/big", Reply(body=b"x" * 101))
    http_target.route("/bomb", Reply(body=gzip.compress(b"x" * 10_000), headers=[("Content-Encoding", "gzip")]))
    for path in ("/big", "/bomb"):  # counted after decompression
        message = await failure(http_workflow(http_node(f"{http_target.base_url}{path}")), {}, tmp_path,
                                http_max_response_bytes=100)
        assert "larger than the limit of 100 bytes (KNOTFLOW_HTTP_MAX_RESPONSE_BYTES)" in message
    assert len(http_target.requests) == 2  # not retried


# --- retries and timeouts -----------------------------------------------------------------------------
class FlakyServer:
    """Drops the first `drops` connections without answering, then answers 200 `ok`."""

    def __init__(self, drops: int) -> None:
        self.drops = drops
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                self.connections += 1
                connection.recv(65536)
                if self.connections > self.drops:
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


@pytest.fixture()
def flaky() -> Iterator[FlakyServer]:
    server = FlakyServer(drops=2)
    yield server
    server.listener.close()


async def test_setting_retries_a_request_that_got_no_answer(flaky: FlakyServer, tmp_path: Path) -> None:
    node = http_node(flaky.url, setting={"timeout": 5, "retryTimes": 2})
    assert (await ok(http_workflow(node), {}, tmp_path))["body"] == "ok"
    assert flaky.connections == 3


async def test_retries_give_up(flaky: FlakyServer, tmp_path: Path) -> None:
    node = http_node(flaky.url, setting={"timeout": 5, "retryTimes": 1})
    message = await failure(http_workflow(node), {}, tmp_path)
    assert "(after 2 attempts)" in message and "disconnected" in message
    assert flaky.connections == 2


@pytest.fixture()
def silent() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    listener.close()


async def test_timeouts(silent: str, tmp_path: Path) -> None:
    message = await failure(http_workflow(http_node(silent, setting={"timeout": 1, "retryTimes": 0})), {}, tmp_path)
    assert message.endswith("took longer than 1 seconds")
    # No timeout on the canvas: KNOTFLOW_HTTP_TIMEOUT.
    message = await failure(http_workflow(http_node(silent, setting={})), {}, tmp_path, http_timeout=0.2)
    assert message.endswith("took longer than 0.2 seconds")


async def test_setting_on_error_applies_on_top(http_target: HttpTarget, tmp_path: Path) -> None:
    http_target.route("/fail", Reply(503, b"busy"))
    node = http_node(f"{http_target.base_url}/fail", setting={"timeout": 5, "retryTimes": 3},
                     settingOnError={"processType": 2, "retryTimes": 1,
                                     "dataOnErr": '{"body": "fallback", "statusCode": 0, "headers": ""}'})
    output = await ok(http_workflow(node), {}, tmp_path)
    assert output == {"body": "fallback", "statusCode": 0, "headers": ""}
    assert len(http_target.requests) == 2  # settingOnError's retry; the node's own retries skip error statuses


# --- canvas and service problems ----------------------------------------------------------------------
@pytest.mark.parametrize(("change", "problem"), [
    ({"apiInfo": {"method": "", "url": "http://example.com"}}, "the HTTP method is required"),
    ({"apiInfo": {"method": "G T", "url": "http://example.com"}}, "is not an HTTP method"),
    ({"apiInfo": {"method": "GET", "url": " \n"}}, "the URL is required"),
    ({"apiInfo": {"method": "GET", "url": "http://x/{{block_output_100001}}"}}, "invalid block_output_ variable"),
    ({"body": {"bodyType": "XML", "bodyData": {}}}, "unknown body type 'XML'"),
    ({"auth": {"authOpen": True, "authType": "DIGEST", "authData": {}}}, "invalid auth type 'DIGEST'"),
    ({"auth": {"authOpen": True, "authType": "CUSTOM_AUTH", "authData": {"customData": {"addTo": "body", "data": [
        param("Key", literal("k")), param("Value", literal("v"))]}}}}, "'header' or 'query', not 'body'"),
    ({"auth": {"authOpen": True, "authType": "BEARER_AUTH", "authData": {}}}, "needs 1 values in authData"),
    ({"setting": {"timeout": "soon"}}, "setting.timeout must be a number"),
])
def test_canvas_problems(change: dict[str, Any], problem: str) -> None:
    node = http_node("http://example.com/")
    node["data"]["inputs"].update(change)
    with pytest.raises(CanvasError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        compile_canvas(http_workflow(node))


async def test_header_injection_is_refused(http_target: HttpTarget, tmp_path: Path) -> None:
    node = http_node(f"{http_target.base_url}/anything", headers={"X-A": start_ref("v")})
    message = await failure(http_workflow(node, ("v", "string")), {"v": "a\r\nX-Injected: 1"}, tmp_path)
    assert "contains a line break" in message
    assert http_target.requests == []


async def test_without_an_http_client(tmp_path: Path) -> None:
    plan = compile_canvas(http_workflow(http_node("http://example.com/")))
    with pytest.raises(KnotflowError, match="no outbound HTTP client"):
        await Execution(plan).run({})


async def test_single_node_debug_takes_studios_input_names(http_target: HttpTarget, tmp_path: Path) -> None:
    # Coze Studio's debug inputs name an implicit URL variable by the MD5 of its placeholder.
    node = http_node(f"{http_target.base_url}/anything?a={{{{block_output_100001.a}}}}",
                     headers={"h1": start_ref("h")})
    plan = compile_canvas(http_workflow(node, ("a", "string"), ("h", "string")))
    md5 = hashlib.md5(b"block_output_100001.a").hexdigest()
    async with outbound_services(tmp_path, "127.0.0.1") as (http, files):
        output = await Execution(plan, services=RunServices(http=http, files=files)).run_node(
            HTTP_NODE_ID, {f"__apiInfo_url_{md5}": "from-debug",
                           f"__headers_{hashlib.md5(b'h1').hexdigest()}": "hv"})
    sent: Recorded = http_target.requests[-1]
    assert sent.query == {"a": ["from-debug"]} and sent.header("h1") == "hv"
    assert output["statusCode"] == 200
