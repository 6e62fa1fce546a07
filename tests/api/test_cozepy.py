"""cozepy, unchanged, pointed at a real knotflow server: the SDK's workflow calls work end to end."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from cozepy import AsyncCoze, AsyncTokenAuth, Coze, TokenAuth, WorkflowEventType

from tests import canvases
from tests.api.conftest import LiveServer


@pytest.fixture(scope="module")
def greeting_id(live: LiveServer) -> str:
    return live.publish(canvases.greeting(), name="greeting")


@pytest.fixture()
def coze(live: LiveServer, token: str) -> Coze:
    return Coze(auth=TokenAuth(token), base_url=live.base_url)


def test_stream_yields_output_then_end_message(coze: Coze, greeting_id: str) -> None:
    events = list(coze.workflows.runs.stream(workflow_id=greeting_id, parameters={"name": "George"}))
    messages = [e.message for e in events if e.event == WorkflowEventType.MESSAGE]
    assert [e.event for e in events] == [WorkflowEventType.MESSAGE, WorkflowEventType.MESSAGE]
    assert messages[0].content == "Hello, George!"
    assert messages[0].node_title == "Output" and messages[0].node_is_finish
    assert json.loads(messages[1].content) == {"output": "George"}
    assert messages[1].node_title == "End" and messages[1].node_seq_id == "0"
    assert messages[1].usage is not None and messages[1].usage.token_count == 0


def test_create_returns_data_and_history_records_the_run(coze: Coze, greeting_id: str) -> None:
    result = coze.workflows.runs.create(workflow_id=greeting_id, parameters={"name": "Ada"}, ext={"user_id": "u7"})
    assert json.loads(result.data or "") == {"output": "Ada"}
    assert result.execute_id and result.debug_url.endswith("execute_mode=2")
    history = coze.workflows.runs.run_histories.retrieve(workflow_id=greeting_id, execute_id=result.execute_id)
    assert history.execute_status == "Success"
    assert history.run_mode == 0 and history.connector_id == "1024" and history.connector_uid == "u7"
    output = json.loads(history.output)
    assert json.loads(output["Output"]) == {"output": "Ada"}
    assert output["Output"] == result.data


def test_async_run_completes_in_the_background(coze: Coze, greeting_id: str) -> None:
    started = coze.workflows.runs.create(workflow_id=greeting_id, parameters={"name": "Bo"}, is_async=True)
    assert started.execute_id and started.data is None
    deadline = time.monotonic() + 10
    while True:
        history = coze.workflows.runs.run_histories.retrieve(workflow_id=greeting_id, execute_id=started.execute_id)
        if history.execute_status != "Running" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert history.execute_status == "Success" and history.run_mode == 2
    assert json.loads(json.loads(history.output)["Output"]) == {"output": "Bo"}


def test_node_execution_history(coze: Coze, live: LiveServer, token: str, greeting_id: str) -> None:
    import httpx

    result = coze.workflows.runs.create(workflow_id=greeting_id, parameters={"name": "Cy"})
    raw = httpx.get(f"{live.base_url}/v1/workflows/{greeting_id}/run_histories/{result.execute_id}",
                    headers={"Authorization": f"Bearer {token}"}).json()
    statuses = raw["data"][0]["node_execute_status"]
    assert set(statuses) == {"Start", "Output", "End"}
    uuid = statuses["Output"]["node_execute_uuid"]
    node = coze.workflows.runs.run_histories.execute_nodes.retrieve(
        workflow_id=greeting_id, execute_id=result.execute_id, node_execute_uuid=uuid
    )
    assert node.is_finish and json.loads(node.node_output) == {"output": "Hello, Cy!"}


def test_workflows_list_retrieve_and_versions(coze: Coze, live: LiveServer, greeting_id: str) -> None:
    listed = {w.workflow_id: w for w in coze.workflows.list(page_size=100).items}
    assert listed[greeting_id].workflow_name == "greeting"
    assert coze.workflows.retrieve(workflow_id=greeting_id).workflow_detail.workflow_id == greeting_id
    versions = list(coze.workflows.versions.list(workflow_id=greeting_id))
    assert [v.version for v in versions] == ["v0.0.1"]


def test_an_unknown_publish_status_is_a_clear_error(http: httpx.Client) -> None:
    answer = http.get("/v1/workflows", params={"publish_status": "bogus"}).json()
    assert answer["code"] == 4000 and "publish_status must be one of" in answer["msg"]
    assert http.get("/v1/workflows", params={"publish_status": "published_online"}).json()["code"] == 0


async def test_async_client_stream_and_create(live: LiveServer, token: str, greeting_id: str) -> None:
    coze = AsyncCoze(auth=AsyncTokenAuth(token), base_url=live.base_url)
    stream = coze.workflows.runs.stream(workflow_id=greeting_id, parameters={"name": "Dee"})
    contents = [event.message.content async for event in stream if event.event == WorkflowEventType.MESSAGE]
    assert contents == ["Hello, Dee!", '{"output":"Dee"}']
    result = await coze.workflows.runs.create(workflow_id=greeting_id, parameters={"name": "Eve"})
    assert json.loads(result.data or "") == {"output": "Eve"}
    history = await coze.workflows.runs.run_histories.retrieve(workflow_id=greeting_id,
                                                               execute_id=result.execute_id)
    assert history.execute_status == "Success"
