"""The run's data limit (KNOTFLOW_MAX_RUN_BYTES): named with its real size, inputs that alone pass it refused
before the run, the node that passed it shown in the trace, and the trace readable however large the data."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from cozepy import Coze, CozeAPIError, TokenAuth, WorkflowEventType

from knotflow.config import Settings
from knotflow.service.trace_values import readable
from tests import canvases as c
from tests.api.conftest import LiveServer, free_port, serving

LIMIT = 200 * 1024


@pytest.fixture(scope="module")
def small_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("limits"), port=free_port(), max_run_bytes=LIMIT)
    with serving(settings) as server:
        yield server


def test_inputs_that_alone_pass_the_limit_are_refused_before_the_run(small_live: LiveServer) -> None:
    token = small_live.token()
    coze = Coze(auth=TokenAuth(token), base_url=small_live.base_url)
    workflow_id = small_live.publish(c.echo())
    with pytest.raises(CozeAPIError) as caught:
        list(coze.workflows.runs.stream(workflow_id=workflow_id, parameters={"input": "x" * (LIMIT + 10)}))
    assert caught.value.code == 4000
    assert "over the run's data limit of 200.0 KB (204800 bytes)" in caught.value.msg
    assert "KNOTFLOW_MAX_RUN_BYTES" in caught.value.msg
    with pytest.raises(CozeAPIError) as sync:
        coze.workflows.runs.create(workflow_id=workflow_id, parameters={"input": "x" * (LIMIT + 10)})
    assert sync.value.code == 4000


def test_the_node_that_passes_the_limit_is_named_and_the_trace_stays_readable(small_live: LiveServer) -> None:
    token = small_live.token()
    coze = Coze(auth=TokenAuth(token), base_url=small_live.base_url)
    workflow_id = small_live.publish(c.echo())
    big = "y" * (150 * 1024)  # alone under the limit; echoed by the End node, over it
    events = list(coze.workflows.runs.stream(workflow_id=workflow_id, parameters={"input": big}))
    error = next(e.error for e in events if e.event == WorkflowEventType.ERROR)
    assert error is not None and error.error_code == 5000
    assert error.error_message.startswith("[720701005] the message of node 'End' (900001), 150.0 KB")
    assert "brought the run's data to 300.0 KB" in error.error_message
    assert "over the limit of 200.0 KB (204800 bytes) (KNOTFLOW_MAX_RUN_BYTES" in error.error_message
    with httpx.Client(base_url=small_live.base_url, headers={"Authorization": f"Bearer {token}"}) as http:
        body = http.post("/v1/workflow/run", json={"workflow_id": workflow_id, "parameters": {"input": big}}).json()
        assert body["code"] == 5000 and "node 'End' (900001)" in body["msg"]
        trace = http.get("/work_flow", params={"execute_id": body["execute_id"]}).json()["data"]
    assert trace["status"] == "Fail"
    nodes = {node["node_id"]: node for node in trace["nodes"]}
    assert nodes["100001"]["status"] == "Success" and nodes["900001"]["status"] == "Fail"
    assert "node 'End' (900001)" in nodes["900001"]["error"]
    cut = "… [cut: 150.0 KB (153600 bytes) in all]"
    assert json.loads(trace["inputs"])["input"].endswith(cut)
    assert json.loads(nodes["100001"]["outputs"])["input"].endswith(cut)
    assert json.loads(nodes["900001"]["inputs"])["output"].endswith(cut)
    assert len(json.dumps(trace, ensure_ascii=False)) < 16 * 1024


def test_readable_keeps_small_values_and_cuts_large_ones() -> None:
    small = '{"a":"b"}'
    assert readable(small) == small
    assert readable(small.encode()) == small
    many = json.loads(readable(json.dumps({"list": list(range(20000))})))
    assert many["list"][:3] == [0, 1, 2] and len(many["list"]) == 101
    assert many["list"][-1] == "… [cut: 19900 more items]"
