"""PING events on silence, on a server whose ping interval is short, with a test-only slow node."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from knotflow.config import Settings
from knotflow.contract import Node, NodeContext, NodeResult
from tests import canvases as c
from tests.api.conftest import LiveServer, free_port, serving
from tests.api.test_wire import parse_frames
from tests.node_types import register


@register
class SleepNode(Node):
    type_id = "test-sleep"
    display_key = "Sleep"

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = ctx.inputs
        await asyncio.sleep(float(inputs["seconds"]))
        return NodeResult({"slept": inputs["seconds"]})


@pytest.fixture(scope="module")
def pinging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("ping"), port=free_port(), ping_interval=0.1)
    with serving(settings) as server:
        yield server


def test_ping_while_a_node_is_slow(pinging: LiveServer) -> None:
    canvas = c.canvas(
        [c.start(), c.output("300", "before"),
         c.node("301", "test-sleep", "Nap", inputs={"inputParameters": [c.param("seconds", c.literal("0.55"))]}),
         c.end_return(slept=c.ref("301", "slept"))],
        [c.edge("100001", "300"), c.edge("300", "301"), c.edge("301", "900001")],
    )
    workflow_id = pinging.publish(canvas, name="slow")
    token = pinging.token()
    response = httpx.post(f"{pinging.base_url}/v1/workflow/stream_run", json={"workflow_id": workflow_id},
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
    frames = parse_frames(response.text)
    names = [f[1] for f in frames]
    assert names[0] == "Message" and names[-2:] == ["Message", "Done"]
    pings = [f for f in frames if f[1] == "PING"]
    assert len(pings) >= 3
    assert all(f[2] == {"content": "{}", "node_execute_uuid": ""} for f in pings)
    assert [f[0] for f in frames] == list(range(len(frames)))
    assert json.loads(frames[-2][2]["content"]) == {"slept": "0.55"}


def test_client_disconnect_cancels_the_run(pinging: LiveServer) -> None:
    canvas = c.canvas(
        [c.start(), c.output("300", "started"),
         c.node("301", "test-sleep", "Nap", inputs={"inputParameters": [c.param("seconds", c.literal("30"))]}),
         c.end_return(slept=c.ref("301", "slept"))],
        [c.edge("100001", "300"), c.edge("300", "301"), c.edge("301", "900001")],
    )
    workflow_id = pinging.publish(canvas, name="abandoned")
    token = pinging.token()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=pinging.base_url, headers=headers, timeout=10) as client:
        with client.stream("POST", "/v1/workflow/stream_run", json={"workflow_id": workflow_id}) as response:
            first = next(response.iter_lines())
            assert first == "id: 0"
        # The connection is closed mid-run; the server notices and records the run as failed.
        runs = _runs_of(pinging, workflow_id)
        deadline = time.monotonic() + 10
        while (not runs or runs[0].status == "Running") and time.monotonic() < deadline:
            time.sleep(0.05)
            runs = _runs_of(pinging, workflow_id)
    assert runs[0].status == "Fail" and runs[0].error_message == "client disconnected"


def _runs_of(server: LiveServer, workflow_id: str) -> list[Any]:
    from sqlalchemy import select

    from knotflow.store.tables import runs as runs_table

    async def work(store: Any) -> list[Any]:
        async with store.engine.connect() as conn:
            rows = (await conn.execute(select(runs_table.c.execute_id).where(
                runs_table.c.workflow_id == workflow_id))).all()
        return [await store.get_run(row[0]) for row in rows]

    return list(server.call(work))


def test_streamed_tokens_arrive_as_separate_messages_with_cozepy(pinging: LiveServer) -> None:
    from cozepy import Coze, TokenAuth, WorkflowEventType

    from tests.engine.test_streaming import tokens

    canvas = c.canvas(
        [c.start(), tokens("300", "Hel|lo|!", wait=False, gap=0.02),
         c.output("400", "say: {{x}}", streaming=True, x=c.ref("300", "output")),
         c.end_return(output=c.ref("300", "output"))],
        [c.edge("100001", "300"), c.edge("300", "400"), c.edge("400", "900001")],
    )
    workflow_id = pinging.publish(canvas, name="tokens")
    coze = Coze(auth=TokenAuth(pinging.token()), base_url=pinging.base_url)
    messages = [e.message for e in coze.workflows.runs.stream(workflow_id=workflow_id)
                if e.event == WorkflowEventType.MESSAGE]
    shown = [(m.content, m.node_seq_id, m.node_is_finish) for m in messages if m.node_title == "Output"]
    assert shown == [("say: ", "0", False), ("Hel", "1", False), ("lo", "2", False), ("!", "3", False),
                     ("", "4", True)]
    assert json.loads(messages[-1].content) == {"output": "Hello!"}
