"""Two servers sharing one database and one Redis (in this test process, on loopback ports; the database SQLite,
and PostgreSQL too when configured): whichever serves a request, the run is the same — re-attach, cancel,
idempotency keys, limits and a publish reach across. Real processes, kills and the worker: test_processes.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from knotflow.config import Settings
from knotflow.models.registry import load_registry
from knotflow.service import catalog
from knotflow.service.container import Container
from knotflow.service.signals import PUBLISHED, REVOKED
from knotflow.service.tokens import revoke_token
from knotflow.store.repository import Store
from tests import canvases as c
from tests.api.conftest import LiveServer, free_port, serving
from tests.api.test_crash_recovery import llm_canvas
from tests.api.test_run_control import Reader, model, parse, real
from tests.fakes.model_server import FakeModelServer, write_models_file
from tests.nodes.test_llm import MODEL_TYPE

__all__ = ["model"]  # the fake model server fixture


@pytest.fixture()
def pair(tmp_path: Path, database_url: str, redis_url: str, model: FakeModelServer,
         ) -> Iterator[tuple[LiveServer, LiveServer]]:
    data_dir = tmp_path / "shared"
    data_dir.mkdir()
    write_models_file(data_dir, {MODEL_TYPE: model})
    common = {"data_dir": data_dir, "database_url": database_url, "redis_url": redis_url,
              "max_concurrent_runs": 2, "workflow_cache_seconds": 3600.0, "token_cache_seconds": 3600.0,
              "public_url": "http://knotflow.example"}  # as behind a load balancer
    with serving(Settings(port=free_port(), **common)) as a, serving(Settings(port=free_port(), **common)) as b:
        yield a, b


def client(server: LiveServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_a_run_is_the_same_on_both_servers(pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = pair
    models = load_registry(a.settings.resolved_models_file())
    llm = a.publish(llm_canvas(), name="llm", models=models)
    token = a.token()
    body = {"workflow_id": llm, "parameters": {"input": "x"}}
    with client(a, token) as on_a, client(b, token) as on_b:
        # Re-attach on B to a run streaming on A, after the last event seen.
        with on_a.stream("POST", "/v1/workflow/stream_run", json=body) as first:
            execute_id = first.headers["X-Knotflow-Execute-Id"]
            reader = Reader(first)
            seen = reader.take(4)
            attached = on_b.get("/v1/workflow/stream_attach", params={"workflow_id": llm, "execute_id": execute_id},
                                headers={"Last-Event-ID": str(seen[-1][0])})
            rest = reader.rest()
        assert real(parse(attached.text)) == real(rest) and rest[-1][1] == "Done"

        # Cancel from B a run streaming on A: A's client gets Error + Done.
        with on_a.stream("POST", "/v1/workflow/stream_run", json=body) as streaming:
            execute_id = streaming.headers["X-Knotflow-Execute-Id"]
            reader = Reader(streaming)
            reader.take(2)
            answer = on_b.post("/v1/workflow/cancel", json={"workflow_id": llm, "execute_id": execute_id}).json()
            tail = reader.rest()
        assert answer["code"] == 0 and answer["data"]["execute_status"] == "Fail", answer
        assert [e[1] for e in tail[-2:]] == ["Error", "Done"] and "cancelled" in tail[-2][2]["error_message"]

        # A repeated idempotency key on B names A's run: B re-attaches to it.
        key = {"Idempotency-Key": f"k-{time.time()}"}
        first_answer = on_a.post("/v1/workflow/stream_run", json=body, headers=key)
        repeated = on_b.post("/v1/workflow/stream_run", json=body, headers=key)
        assert repeated.headers["X-Knotflow-Execute-Id"] == first_answer.headers["X-Knotflow-Execute-Id"]
        assert real(parse(repeated.text)) == real(parse(first_answer.text))

        # Two runs at once on A fill the token's two slots: B refuses a third with 4013.
        with on_a.stream("POST", "/v1/workflow/stream_run", json=body) as one, \
                on_a.stream("POST", "/v1/workflow/stream_run", json=body) as two:
            readers = [Reader(one), Reader(two)]  # kept: a dropped reader closes its stream, cancelling its run
            for reader in readers:
                reader.take(1)
            third = on_b.post("/v1/workflow/run", json=body).json()
            assert third["code"] == 4013, third
            for stream in (one, two):
                on_b.post("/v1/workflow/cancel", json={"workflow_id": llm,
                                                       "execute_id": stream.headers["X-Knotflow-Execute-Id"]})


def echo_workflow(server: LiveServer, name: str) -> tuple[str, dict[str, Any]]:
    canvas = c.canvas([c.start(("name", "string")), c.end_return(v=c.ref("100001", "name"))],
                      [c.edge("100001", "900001")])
    return server.publish(canvas, name=name), canvas


def answer_within(seconds: float, call: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool]
                  ) -> dict[str, Any]:
    """`call`'s answer once `done` holds of it, or its last answer after `seconds`."""
    deadline = time.monotonic() + seconds
    while not done(answer := call()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return answer


def test_a_publish_reaches_every_server_at_once(pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = pair
    workflow_id, canvas = echo_workflow(a, "versions")
    body = {"workflow_id": workflow_id, "parameters": {"name": "x"}}
    with client(b, a.token()) as on_b:
        assert on_b.post("/v1/workflow/run", json=body).json()["data"] == '{"v":"x"}'
        canvas["nodes"][-1]["data"]["inputs"]["inputParameters"][0]["name"] = "w"

        async def republish(store: Store) -> None:
            await catalog.import_workflow(store, canvas, workflow_id=workflow_id, publish=True)
            async with Container(a.settings, background=False) as app:  # as `knotflow workflow publish` does
                await app.scale.signals.announce(PUBLISHED, workflow_id)

        a.call(republish)
        # B caches workflow rows for an hour here: only the signal can do it.
        answer = answer_within(2, lambda: on_b.post("/v1/workflow/run", json=body).json(),
                               lambda found: found["data"] == '{"w":"x"}')
        assert answer["data"] == '{"w":"x"}'


def test_a_revocation_reaches_every_server_at_once(pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = pair
    workflow_id, _ = echo_workflow(a, "revoked")
    body = {"workflow_id": workflow_id, "parameters": {"name": "x"}}
    token = a.token()
    with client(a, token) as on_a, client(b, token) as on_b:
        for on in (on_a, on_b):  # both servers have looked the token up, and cache it for an hour here
            assert on.post("/v1/workflow/run", json=body).json()["code"] == 0

        async def revoke(store: Store) -> None:
            token_id = (await store.list_tokens())[0].id
            async with Container(a.settings, background=False) as app:  # as `knotflow token revoke` does
                await revoke_token(app.store, token_id)
                await app.scale.signals.announce(REVOKED, token_id)

        a.call(revoke)
        for on in (on_a, on_b):  # only the signal can do it within the hour
            answer = answer_within(2, lambda on=on: on.post("/v1/workflow/run", json=body).json(),
                                   lambda found: found["code"] != 0)
            assert answer["code"] == 4100 and "was revoked" in answer["msg"], answer
