"""Code egress end to end (KNOTFLOW_CODE_EGRESS): cozepy, unchanged, runs a published workflow whose Python Code
node fetches JSON with httpx from a server on loopback, allowed with KNOTFLOW_URL_FETCH_ALLOW, on a real server
built by the composition root; a server with egress off (the default) refuses such a canvas at publish, naming the
setting."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cozepy import Coze, TokenAuth

from knotflow.config import Settings
from knotflow.nodes.code import with_egress
from knotflow.service import catalog
from knotflow.store.repository import Store
from tests import canvases as c
from tests.api.conftest import LiveServer, free_port, serving
from tests.fakes.http_target import HttpTarget, Reply
from tests.node_types import TEST_NODE_TYPES

FETCH = """
import httpx

async def main(args: Args) -> Output:
    async with httpx.AsyncClient(timeout=20) as client:
        response = await client.get(args.params["url"], params={"city": "Hangzhou"})
    response.raise_for_status()
    return {"out": response.json()["weather"], "status": response.status_code}
"""


def fetch_workflow() -> dict[str, object]:
    code = c.code_node(FETCH, outputs=[{"name": "out", "type": "string"}, {"name": "status", "type": "integer"}],
                       params={"url": c.ref("100001", "url")})
    return c.code_workflow(code, ("url", "string"))


@pytest.fixture(scope="module")
def target() -> Iterator[HttpTarget]:
    server = HttpTarget().start()
    server.route("/weather", lambda request: Reply(body={"weather": f"sunny in {request.query['city'][0]}"}))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def egress_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("knotflow-egress"), port=free_port(), code_egress=True,
                        url_fetch_allow="127.0.0.1", code_python_workers=1, code_js_workers=0)
    with serving(settings) as live:
        yield live


def test_cozepy_runs_a_code_node_that_fetches_from_an_allowed_server(egress_server: LiveServer,
                                                                      target: HttpTarget) -> None:
    async def publish(store: Store) -> str:
        # As the server's own publish does: its Code node, with egress on, lets Python import httpx.
        workflow, _ = await catalog.import_workflow(store, fetch_workflow(), publish=True,
                                                    node_types=with_egress(TEST_NODE_TYPES))
        return workflow.id

    workflow_id = egress_server.call(publish)
    coze = Coze(auth=TokenAuth(egress_server.token()), base_url=egress_server.base_url)
    result = coze.workflows.runs.create(workflow_id=workflow_id, parameters={"url": f"{target.base_url}/weather"})
    assert json.loads(result.data or "") == {"out": "sunny in Hangzhou", "status": 200}
    arrived = [request for request in target.requests if request.path == "/weather"]
    assert [request.query for request in arrived] == [{"city": ["Hangzhou"]}]


def test_without_egress_publishing_httpx_code_names_the_setting(live: LiveServer) -> None:
    with pytest.raises(Exception, match="'httpx' is offered only with network egress, which is off on this server: "
                                        "KNOTFLOW_CODE_EGRESS=true turns it on"):
        live.publish(fetch_workflow())
