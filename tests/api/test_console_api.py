"""The console's JSON API over HTTP: sign-in and its cookie, CSRF on every change, what another space's token
gets (nothing), the edit permission, run listing and paging, a run's page data, the live stream, and the
debug_url sending a browser to the console."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
import pytest
from starlette.responses import Response

from knotflow.api.console_auth import ConsoleAuth
from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.service.sessions import ConsoleSessions
from tests import canvases as c
from tests.api.conftest import LiveServer
from tests.api.test_wire import parse_frames
from tests.node_types import register

CONSOLE = "10000010"


@register
class HeldNode(Node):
    """Test-only node: runs until the test lets it finish, so a run can be watched while it runs."""

    type_id = "test-console-held"
    display_key = "Code"
    release: ClassVar[threading.Event] = threading.Event()

    async def run(self, ctx: NodeContext) -> NodeResult:
        if not await asyncio.to_thread(self.release.wait, 20):
            raise TimeoutError("the test never released the node")
        return NodeResult({"output": "released"})


class ConsoleClient:
    """A browser's view of the console: cookies kept, the CSRF token sent on changes."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.csrf = ""

    def sign_in(self, token: str) -> dict[str, Any]:
        self.csrf = self.get("/session")["csrf"]
        data = self.change("POST", "/session", {"token": token})
        assert data["code"] == 0, data
        self.csrf = data["data"]["csrf"]
        return dict(data["data"])

    def get(self, path: str, **params: Any) -> Any:
        body = self.http.get(f"/console/api{path}", params=params).json()
        assert body["code"] == 0, body
        return body["data"]

    def get_error(self, path: str, **params: Any) -> tuple[int, str]:
        body = self.http.get(f"/console/api{path}", params=params).json()
        return body["code"], body["msg"]

    def change(self, method: str, path: str, body: Any = None, *, csrf: str | None = None,
               headers: dict[str, str] | None = None) -> Any:
        sent = {"x-csrf-token": self.csrf if csrf is None else csrf, **(headers or {})}
        return self.http.request(method, f"/console/api{path}", json=body, headers=sent).json()


@pytest.fixture()
def browser_of(live: LiveServer) -> Iterator[Any]:
    clients: list[ConsoleClient] = []

    def make(token: str | None = None) -> ConsoleClient:
        client = ConsoleClient(live.base_url)
        clients.append(client)
        if token is not None:
            client.sign_in(token)
        return client

    yield make
    for client in clients:
        client.http.close()


@pytest.fixture(scope="module")
def greeting_id(live: LiveServer) -> str:
    return live.publish(c.greeting(), name="console-greeting")


def api_run(live: LiveServer, token: str, workflow_id: str, **parameters: Any) -> str:
    """Run through the open API (connector 1024); returns the execute_id."""
    with httpx.Client(base_url=live.base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        ran = http.post("/v1/workflow/run", json={"workflow_id": workflow_id, "parameters": parameters}).json()
    assert ran["code"] == 0, ran
    return str(ran["execute_id"])


# --- signing in ----------------------------------------------------------------------------------------------
def test_sign_in_sets_an_http_only_same_site_cookie_and_needs_the_sign_in_csrf_token(
        live: LiveServer, token: str, browser_of: Any) -> None:
    client = browser_of()
    first = client.http.get("/console/api/session")
    anonymous = first.json()["data"]
    assert anonymous["signed_in"] is False and anonymous["csrf"]
    sign_in_cookie = first.headers["set-cookie"].lower()
    assert sign_in_cookie.startswith(f"knotflow_sign_in={anonymous['csrf'].lower()};")
    assert "httponly" in sign_in_cookie and "samesite=strict" in sign_in_cookie
    assert "path=/console/api/session" in sign_in_cookie
    assert client.change("POST", "/session", {"token": token}, csrf="")["code"] == 4101
    assert client.change("POST", "/session", {"token": token}, csrf="forged")["code"] == 4101
    cross_site = client.change("POST", "/session", {"token": token}, csrf=anonymous["csrf"],
                               headers={"sec-fetch-site": "cross-site"})
    assert cross_site["code"] == 4101
    assert client.change("POST", "/session", {"token": "pat_unknown"}, csrf=anonymous["csrf"])["code"] == 4100

    response = client.http.post("/console/api/session", json={"token": token},
                                headers={"x-csrf-token": anonymous["csrf"]})
    assert response.json()["code"] == 0
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("knotflow_session="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes and "samesite=lax" in cookie.lower()
    assert token not in cookie and token not in response.text
    session = client.get("/session")
    assert session["signed_in"] and session["csrf"] != anonymous["csrf"] and session["token_name"] == "test"


def test_every_change_needs_the_session_csrf_token(live: LiveServer, token: str, browser_of: Any,
                                                   greeting_id: str) -> None:
    client = browser_of(token)
    for method, path in [("POST", f"/workflows/{greeting_id}/runs"), ("POST", f"/workflows/{greeting_id}/publish"),
                         ("POST", "/workflows"), ("DELETE", "/session")]:
        refused = client.change(method, path, {}, csrf="")
        assert (refused["code"], refused["msg"]) == (4101, "the request lacks the console's CSRF token"), path
    assert client.change("POST", "/workflows", {}, headers={"sec-fetch-site": "same-site"})["code"] == 4101
    assert client.get("/session")["signed_in"]  # nothing happened

    assert client.change("DELETE", "/session")["code"] == 0
    assert client.get_error("/runs")[0] == 4100
    assert client.get("/session")["signed_in"] is False


def test_the_session_cookie_is_secure_behind_https() -> None:
    response = Response()
    ConsoleAuth(ConsoleSessions(None, ttl=60), secure=True).start_session(response, "id")  # type: ignore[arg-type]
    cookie = next(h for h in response.headers.getlist("set-cookie") if h.startswith("knotflow_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie


# --- what a token may see ------------------------------------------------------------------------------------
def test_a_token_of_another_space_gets_nothing(live: LiveServer, token: str, browser_of: Any,
                                               greeting_id: str) -> None:
    execute_id = api_run(live, token, greeting_id, name="Ada")
    live.space("console-elsewhere")
    other = browser_of()
    assert [s["id"] for s in other.sign_in(live.token(spaces=["console-elsewhere"]))["spaces"]] == [
        "console-elsewhere"]
    assert other.get_error(f"/workflows/{greeting_id}") == (4200, f"workflow {greeting_id} does not exist")
    assert other.get_error(f"/workflows/{greeting_id}/canvas")[0] == 4200
    assert other.get_error(f"/runs/{execute_id}") == (4200, f"run {execute_id} does not exist")
    assert other.get_error(f"/runs/{execute_id}/live")[0] == 4200
    resume = other.change("POST", f"/runs/{execute_id}/resume", {"event_id": f"{execute_id}/1", "interrupt_type": 2})
    assert resume["code"] == 4200
    assert other.change("POST", f"/workflows/{greeting_id}/runs", {"parameters": {}})["code"] == 4200
    assert other.get("/runs")["items"] == [] and other.get("/workflows")["items"] == []
    assert other.get_error("/runs", space_id="1") == (4200, "space 1 does not exist")  # one it cannot use, named

    mine = browser_of(token)
    assert execute_id in [run["execute_id"] for run in mine.get("/runs")["items"]]


def test_importing_and_publishing_need_the_edit_permission(live: LiveServer, token: str, browser_of: Any) -> None:
    runner = browser_of(token)
    canvas_text = json.dumps(c.echo())
    refused = runner.change("POST", "/workflows", {"canvas": canvas_text, "file_name": "echo.json"})
    assert (refused["code"], refused["msg"]) == (4101, "the token lacks the 'edit' permission")

    editor = browser_of(live.token(("run", "edit")))
    imported = editor.change("POST", "/workflows", {"canvas": canvas_text, "file_name": "console-echo.json"})
    assert imported["code"] == 0, imported
    workflow = imported["data"]
    assert (workflow["name"], workflow["latest_version"]) == ("console-echo", None)
    workflow_id = workflow["workflow_id"]
    assert runner.change("POST", f"/workflows/{workflow_id}/publish", {})["code"] == 4101
    draft = editor.get("/workflows", q="CONSOLE-ECHO", status="unpublished_draft")["items"]
    assert [w["workflow_id"] for w in draft] == [workflow_id]

    published = editor.change("POST", f"/workflows/{workflow_id}/publish", {"version": "v1"})
    assert published["code"] == 0 and published["data"]["version"] == "v1"
    detail = editor.get(f"/workflows/{workflow_id}")
    assert detail["latest_version"] == "v1" and [v["version"] for v in detail["versions"]] == ["v1"]
    assert editor.get("/workflows", q="console-echo", status="unpublished_draft")["items"] == []
    assert editor.get(f"/workflows/{workflow_id}/canvas")["version"] == "v1"  # the latest by default
    assert editor.get(f"/workflows/{workflow_id}/canvas", version="draft")["version"] == "draft"
    assert editor.get_error(f"/workflows/{workflow_id}/canvas", version="v9")[0] == 4200
    bad = editor.change("POST", "/workflows", {"canvas": json.dumps({"nodes": [{"id": "1", "type": "999"}]})})
    assert bad["code"] == 4000 and "999" in bad["msg"]


# --- runs ----------------------------------------------------------------------------------------------------
def test_runs_are_listed_newest_first_with_filters_and_pages(live: LiveServer, token: str, browser_of: Any) -> None:
    workflow_id = live.publish(c.echo(), name="console-paging")
    client = browser_of(token)
    from_api = [api_run(live, token, workflow_id, input=str(i)) for i in range(3)]
    with client.http.stream("POST", f"/console/api/workflows/{workflow_id}/runs", json={"parameters": {"input": "x"}},
                            headers={"x-csrf-token": client.csrf}) as response:
        console_run = response.headers["x-knotflow-execute-id"]
        frames = parse_frames(response.read().decode())
    assert [f[1] for f in frames] == ["Message", "Done"]

    first = client.get("/runs", workflow_id=workflow_id, page_size=2)
    assert [r["execute_id"] for r in first["items"]] == [console_run, from_api[2]]
    second = client.get("/runs", workflow_id=workflow_id, page_size=2, after=first["next"])
    assert [r["execute_id"] for r in second["items"]] == [from_api[1], from_api[0]] and second["next"] is None
    item = first["items"][0]
    assert (item["workflow_name"], item["status"], item["connector_id"], item["connector"]) == (
        "console-paging", "Success", CONSOLE, "Console")

    by_api = client.get("/runs", workflow_id=workflow_id, connector_id="1024")["items"]
    assert [r["execute_id"] for r in by_api] == from_api[::-1]
    assert client.get("/runs", workflow_id=workflow_id, status="Fail")["items"] == []
    since = first["items"][1]["created_at"]
    assert [r["execute_id"] for r in client.get("/runs", workflow_id=workflow_id, since=since)["items"]] == [
        console_run, from_api[2]]
    assert [r["execute_id"] for r in client.get("/runs", workflow_id=workflow_id, until=since)["items"]] == [
        from_api[1], from_api[0]]
    assert client.get_error("/runs", status="Done")[0] == 4000
    assert client.get_error("/runs", after="not-a-cursor")[0] == 4000


def test_a_run_page_has_json_values_a_timeline_and_its_canvas(live: LiveServer, token: str, browser_of: Any,
                                                              greeting_id: str) -> None:
    execute_id = api_run(live, token, greeting_id, name="Ada")
    detail = browser_of(token).get(f"/runs/{execute_id}")
    run = detail["run"]
    assert run["inputs"] == {"name": "Ada"} and run["output"] == {"output": "Ada"}  # values, not JSON text
    assert (run["status"], run["connector"], run["workflow_name"]) == ("Success", "API", "console-greeting")
    assert [(n["node_id"], n["status"], n["depth"], n["parent"]) for n in detail["nodes"]] == [
        ("100001", "Success", 0, None), ("135000", "Success", 0, None), ("900001", "Success", 0, None)]
    output = detail["nodes"][1]
    assert output["outputs"] == {"output": "Hello, Ada!"} and isinstance(output["started_at"], float)
    assert [n["id"] for n in detail["canvas"]["nodes"]] == ["100001", "135000", "900001"]
    assert detail["canvas"]["parameters"][0]["name"] == "name" and detail["interrupt"] is None


def _live_events(client: ConsoleClient, execute_id: str, events: list[tuple[str, Any]]) -> None:
    with client.http.stream("GET", f"/console/api/runs/{execute_id}/live") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: "):])))


def test_the_live_stream_shows_a_run_while_it_runs(live: LiveServer, token: str, browser_of: Any) -> None:
    held = c.node("700", HeldNode.type_id, "Held")
    workflow_id = live.publish(c.canvas([c.start(), held, c.end_return(output=c.ref("700", "output"))],
                                        [c.edge("100001", "700"), c.edge("700", "900001")]), name="console-held")
    client = browser_of(token)
    HeldNode.release.clear()
    with httpx.Client(base_url=live.base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        started = http.post("/v1/workflow/run", json={"workflow_id": workflow_id, "is_async": True}).json()
    execute_id = started["execute_id"]
    events: list[tuple[str, Any]] = []
    watcher = threading.Thread(target=_live_events, args=(client, execute_id, events))
    watcher.start()
    try:
        for _ in range(200):
            if any(name == "node" for name, _ in events):
                break
            threading.Event().wait(0.05)
        assert [name for name, _ in events][:2] in (["node", "run"], ["run", "node"])
        assert next(data for name, data in events if name == "run")["status"] == "Running"
    finally:
        HeldNode.release.set()
        watcher.join(timeout=20)
    assert events[-1] == ("end", {"status": "Success"})
    nodes = [data["node_id"] for name, data in events if name == "node"]
    assert nodes == ["100001", "700", "900001"]
    assert [data["status"] for name, data in events if name == "run"][-1] == "Success"


# --- the debug_url -------------------------------------------------------------------------------------------
def test_the_debug_url_sends_a_browser_to_the_run_page(live: LiveServer, token: str, greeting_id: str) -> None:
    execute_id = api_run(live, token, greeting_id, name="Ada")
    with httpx.Client(base_url=live.base_url, timeout=30) as http:
        page = http.get("/work_flow", params={"execute_id": execute_id, "workflow_id": greeting_id},
                        headers={"accept": "text/html,application/xhtml+xml"})
        assert page.status_code == 303 and page.headers["location"] == f"/console/runs/{execute_id}"
        console_page = http.get(page.headers["location"])
        assert console_page.status_code == 200 and console_page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in console_page.headers["content-security-policy"]
        assert http.get("/work_flow", params={"execute_id": execute_id}).json()["code"] == 4100  # a program
        trace = http.get("/work_flow", params={"execute_id": execute_id},
                         headers={"authorization": f"Bearer {token}", "accept": "text/html"}).json()
        assert trace["code"] == 0 and trace["data"]["execute_id"] == execute_id
        assert http.get("/console/api/nowhere").json()["code"] == 4000  # not the page
        moved = http.get("/console")
        assert moved.status_code == 308 and moved.headers["location"] == "/console/"
        deep = http.get("/console/workflows/1/canvas")  # the app's own routes get the page too
        assert deep.status_code == 200 and deep.headers["content-type"].startswith("text/html")
