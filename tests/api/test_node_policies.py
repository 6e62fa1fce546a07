"""Node error policies (settingOnError) end to end: the real server, cozepy, the fake model server."""

from __future__ import annotations

import json
from typing import Any

from cozepy import Coze, TokenAuth, WorkflowEventType

from knotflow.store.repository import Store
from tests import canvases as c
from tests.api.conftest import LiveServer
from tests.api.test_llm_stream import llm_live
from tests.fakes.model_server import FakeModelServer, Reply
from tests.nodes.test_llm import LLM_ID, llm_node

__all__ = ["llm_live"]  # the fixture, imported so pytest finds it here


def publish(live: LiveServer, canvas: dict[str, Any]) -> tuple[Coze, str]:
    from knotflow.models.registry import load_registry
    from knotflow.service import catalog

    async def work(store: Store) -> str:
        models = load_registry(live.settings.resolved_models_file())
        workflow, _ = await catalog.import_workflow(store, canvas, publish=True, models=models)
        return workflow.id

    return Coze(auth=TokenAuth(live.token()), base_url=live.base_url), str(live.call(work))


def test_provider_timeout_with_node_retry(llm_live: LiveServer, fake_model: FakeModelServer) -> None:
    """The first provider call outlasts the node's timeout and is cut; the retry answers and streams."""
    node = llm_node()
    node["data"]["inputs"]["settingOnError"] = {"timeoutMs": 400, "retryTimes": 1, "processType": 1}
    canvas = c.canvas(
        [c.start(("input", "string")), node,
         c.output("198540", "answer: {{output}}", streaming=True, output=c.ref(LLM_ID, "output")),
         c.end_return(output=c.ref(LLM_ID, "output"))],
        [c.edge("100001", LLM_ID), c.edge(LLM_ID, "198540"), c.edge("198540", "900001")],
    )
    coze, workflow_id = publish(llm_live, canvas)
    asked = len(fake_model.requests)
    fake_model.script(Reply(content=["too ", "late"], delay=2.0), Reply(content=["on ", "time"], usage=(7, 2)))
    events = list(coze.workflows.runs.stream(workflow_id=workflow_id, parameters={"input": "why?"}))
    assert not [e for e in events if e.event == WorkflowEventType.ERROR]
    messages = [e.message for e in events if e.event == WorkflowEventType.MESSAGE]
    shown = [m.content for m in messages if m.node_title == "Output"]
    assert shown == ["answer: ", "on ", "time", ""]
    assert json.loads(messages[-1].content) == {"output": "on time"}
    assert len(fake_model.requests) == asked + 2
