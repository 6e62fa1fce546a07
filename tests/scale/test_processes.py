"""Real processes on one PostgreSQL and one Redis: two `knotflow serve` and `knotflow worker`. A run started on
one server is re-attached, resumed, cancelled and found by its idempotency key on the other; a server SIGKILLed
mid-run leaves its run `Fail` within the lease and the client attached elsewhere gets `Error` + `Done`; a worker
SIGKILLed mid-run leaves no run Running and none completes twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from knotflow.config import Settings
from knotflow.models.registry import load_registry
from knotflow.store.migrate import downgrade, upgrade
from tests.api.conftest import LiveServer, free_port
from tests.api.test_crash_recovery import event_of, llm_canvas, question_then_llm
from tests.api.test_resume import ServerProcess
from tests.api.test_run_control import Reader, parse, real, slow_reply
from tests.fakes.model_server import FakeModelServer, Reply, write_models_file
from tests.nodes.test_llm import MODEL_TYPE
from tests.store.backends import POSTGRES_ENV

LEASE = 1.0
pytestmark = pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason=f"{POSTGRES_ENV} is not set")


class WorkerProcess:
    """`knotflow worker` as a child process, ready once it says it takes runs."""

    def __init__(self, log: Path) -> None:
        self.log = log
        with log.open("ab") as sink:
            self.process = subprocess.Popen([sys.executable, "-m", "knotflow.cli", "worker", "--concurrency", "2"],
                                            env=dict(os.environ), stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while "takes async runs" not in log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"knotflow worker did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture()
def cluster(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    database = os.environ[POSTGRES_ENV]
    downgrade(database, "base")
    upgrade(database)
    model = FakeModelServer(default=slow_reply()).start()
    settings = Settings(data_dir=tmp_path / "data", database_url=database, redis_url=redis_url)
    settings.data_dir.mkdir()
    write_models_file(settings.data_dir, {MODEL_TYPE: model})
    for name, value in {"KNOTFLOW_REDIS_URL": redis_url, "KNOTFLOW_RUN_LEASE": str(LEASE),
                        "KNOTFLOW_QUEUE_REDELIVERY": "1", "KNOTFLOW_PUBLIC_URL": "http://knotflow.example",
                        "KNOTFLOW_DATA_DIR": str(settings.data_dir), "KNOTFLOW_DATABASE_URL": database}.items():
        monkeypatch.setenv(name, value)
    seeding = LiveServer(settings, "")
    models = load_registry(settings.resolved_models_file())
    started: list[ServerProcess | WorkerProcess] = []
    try:
        yield {"settings": settings, "model": model, "started": started, "token": seeding.token(),
               "llm": seeding.publish(llm_canvas(), name="llm", models=models),
               "ask": seeding.publish(question_then_llm(), name="ask", models=models)}
    finally:
        for process in started:
            process.kill()
        model.stop()


def serve(cluster: dict[str, Any], name: str) -> httpx.Client:
    port = free_port()
    cluster["started"].append(ServerProcess(cluster["settings"], port, cluster["settings"].data_dir / f"{name}.log"))
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                        headers={"Authorization": f"Bearer {cluster['token']}"})


def history(client: httpx.Client, workflow_id: str, execute_id: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get(f"/v1/workflows/{workflow_id}/run_histories/{execute_id}").json()["data"][0]
    return found


def test_two_servers_share_every_run(cluster: dict[str, Any]) -> None:
    a, b = serve(cluster, "a"), serve(cluster, "b")
    llm, ask = cluster["llm"], cluster["ask"]
    body = {"workflow_id": llm, "parameters": {"input": "x"}}

    # Start on A, re-attach on B mid-stream.
    with a.stream("POST", "/v1/workflow/stream_run", json=body) as first:
        execute_id = first.headers["X-Knotflow-Execute-Id"]
        reader = Reader(first)
        seen = reader.take(3)
        attached = b.get("/v1/workflow/stream_attach", params={"workflow_id": llm, "execute_id": execute_id},
                         headers={"Last-Event-ID": str(seen[-1][0])})
        rest = reader.rest()
    assert real(parse(attached.text)) == real(rest) and rest[-1][1] == "Done"

    # A question asked on A is answered on B.
    asked = a.post("/v1/workflow/stream_run", json={"workflow_id": ask, "parameters": {"input": "q"}}).text
    event_id = event_of(asked)
    assert event_id is not None, asked
    resumed = b.post("/v1/workflow/stream_resume", json={"workflow_id": ask, "event_id": event_id,
                                                         "interrupt_type": 2, "resume_data": "Oslo"}).text
    assert "event: Done" in resumed and "event: Error" not in resumed, resumed

    # Cancel from B a run streaming on A.
    with a.stream("POST", "/v1/workflow/stream_run", json=body) as streaming:
        execute_id = streaming.headers["X-Knotflow-Execute-Id"]
        reader = Reader(streaming)
        reader.take(2)
        assert b.post("/v1/workflow/cancel", json={"workflow_id": llm, "execute_id": execute_id}).json()["code"] == 0
        tail = reader.rest()
    assert [e[1] for e in tail[-2:]] == ["Error", "Done"]
    assert history(b, llm, execute_id)["error_message"] == "cancelled"

    # A repeated idempotency key on B.
    key = {"Idempotency-Key": "order-1"}
    once = a.post("/v1/workflow/run", json=body, headers=key).json()
    again = b.post("/v1/workflow/run", json=body, headers=key).json()
    assert once["code"] == again["code"] == 0 and once["execute_id"] == again["execute_id"]

    # SIGKILL A mid-run: the run ends Fail within the lease, and B's attached client gets Error + Done.
    with a.stream("POST", "/v1/workflow/stream_run", json=body) as doomed:
        execute_id = doomed.headers["X-Knotflow-Execute-Id"]
        lead = Reader(doomed)  # kept open: a closed stream would cancel the run before the kill
        lead.take(2)
        with b.stream("GET", "/v1/workflow/stream_attach", params={"workflow_id": llm, "execute_id": execute_id},
                      headers={"Last-Event-ID": "1"}) as watching:
            follower = Reader(watching)
            follower.take(1)
            cluster["started"][0].kill()
            killed = time.monotonic()
            ending = follower.rest()
    assert [e[1] for e in ending[-2:]] == ["Error", "Done"], ending[-3:]
    assert "its lease lapsed" in ending[-2][2]["error_message"]
    assert time.monotonic() - killed < 1.5 * LEASE + 3
    recorded = history(b, llm, execute_id)
    assert recorded["execute_status"] == "Fail" and "lease lapsed" in recorded["error_message"]


def started_mid_model(client: httpx.Client, body: dict[str, Any], model: FakeModelServer) -> str:
    """Start an async run and return its execute_id once its model call has begun (the run is mid-stream)."""
    before = len(model.requests)
    execute_id: str = client.post("/v1/workflow/run", json=body).json()["execute_id"]
    deadline = time.monotonic() + 10
    while len(model.requests) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    return execute_id


def stopped_by_signals(worker: WorkerProcess, *signals: signal.Signals) -> None:
    for number, sent in enumerate(signals):
        if number:
            time.sleep(0.5)
            assert worker.process.poll() is None  # still draining
        worker.process.send_signal(sent)
    assert worker.process.wait(timeout=20) == 0


def test_a_worker_killed_mid_run(cluster: dict[str, Any]) -> None:
    a = serve(cluster, "a")
    cluster["started"].append(WorkerProcess(cluster["settings"].data_dir / "worker-1.log"))
    llm, model = cluster["llm"], cluster["model"]
    body = {"workflow_id": llm, "parameters": {"input": "x"}, "is_async": True}

    quick = a.post("/v1/workflow/run", json=body).json()["execute_id"]
    assert wait_for_end(a, llm, quick)["execute_status"] == "Success"

    model.default = slow_reply(pieces=200, delay=0.05)  # 10 s: the worker dies long before
    doomed = started_mid_model(a, body, model)
    assert history(a, llm, doomed)["execute_status"] == "Running"
    cluster["started"][-1].kill()

    model.default = Reply(content=["done"], usage=(1, 1))
    cluster["started"].append(WorkerProcess(cluster["settings"].data_dir / "worker-2.log"))
    time.sleep(1.5)  # past KNOTFLOW_QUEUE_REDELIVERY: the next read claims the dead worker's message again
    after = a.post("/v1/workflow/run", json=body).json()["execute_id"]
    assert wait_for_end(a, llm, after)["execute_status"] == "Success"
    ended = wait_for_end(a, llm, doomed)
    assert ended["execute_status"] == "Fail" and "lease lapsed" in ended["error_message"]
    time.sleep(1.0)
    assert history(a, llm, doomed)["execute_status"] == "Fail", "a redelivered run completed after all"
    worker_log = (cluster["settings"].data_dir / "worker-2.log").read_text(errors="replace")
    assert f"run {doomed} was delivered again" in worker_log  # redelivered, and not started twice


def test_a_stopping_worker_drains(cluster: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    a = serve(cluster, "a")
    llm, model = cluster["llm"], cluster["model"]
    body = {"workflow_id": llm, "parameters": {"input": "x"}, "is_async": True}

    # SIGTERM: the run the worker holds finishes; a run queued meanwhile waits for another worker.
    cluster["started"].append(WorkerProcess(cluster["settings"].data_dir / "worker-1.log"))
    model.default = slow_reply(pieces=40, delay=0.05)  # 2 s
    draining = started_mid_model(a, body, model)
    worker = cluster["started"][-1]
    worker.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    waiting = a.post("/v1/workflow/run", json=body).json()["execute_id"]
    assert worker.process.wait(timeout=20) == 0
    assert history(a, llm, draining)["execute_status"] == "Success"
    assert history(a, llm, waiting)["execute_status"] == "Running"  # queued: the stopping worker took no new run
    cluster["started"].append(WorkerProcess(cluster["settings"].data_dir / "worker-2.log"))
    assert wait_for_end(a, llm, waiting)["execute_status"] == "Success"
    cluster["started"][-1].kill()

    # A run longer than the drain is cancelled at its end; a second signal ends the drain at once. Either way the
    # run is recorded with the reason.
    model.default = slow_reply(pieces=200, delay=0.05)  # 10 s
    for drain, signals in [("0.5", (signal.SIGTERM,)), ("600", (signal.SIGTERM, signal.SIGINT))]:
        monkeypatch.setenv("KNOTFLOW_WORKER_DRAIN_SECONDS", drain)
        cluster["started"].append(WorkerProcess(cluster["settings"].data_dir / f"worker-drain-{drain}.log"))
        stopped = started_mid_model(a, body, model)
        stopped_by_signals(cluster["started"][-1], *signals)
        ended = history(a, llm, stopped)
        assert ended["execute_status"] == "Fail" and ended["error_message"] == "the server stopped", ended


def wait_for_end(client: httpx.Client, workflow_id: str, execute_id: str, seconds: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        found = history(client, workflow_id, execute_id)
        if found["execute_status"] != "Running" or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_serve_with_workers_shares_one_port(cluster: dict[str, Any], tmp_path: Path) -> None:
    """`knotflow serve --workers 2`: two processes on one port; a run started through one connection is attached
    through others, whichever process each lands on."""
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("ab") as sink:
        process = subprocess.Popen([sys.executable, "-m", "knotflow.cli", "serve", "--port", str(port),
                                    "--workers", "2"], env=dict(os.environ), stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while log.read_text(errors="replace").count("Application startup complete") < 2:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {cluster['token']}"}
        body = {"workflow_id": cluster["llm"], "parameters": {"input": "x"}}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as first, \
                first.stream("POST", "/v1/workflow/stream_run", json=body) as stream:
            execute_id = stream.headers["X-Knotflow-Execute-Id"]
            reader = Reader(stream)
            reader.take(1)
            attached = [httpx.get(f"http://127.0.0.1:{port}/v1/workflow/stream_attach", headers=headers,
                                  params={"workflow_id": cluster["llm"], "execute_id": execute_id}, timeout=30)
                        for _ in range(4)]  # new connections: the kernel spreads them over both processes
            rest = reader.rest()
        for answer in attached:
            assert parse(answer.text)[-1][1] == "Done" and real(parse(answer.text))[-1] == real(rest)[-1]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def test_workers_need_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KNOTFLOW_REDIS_URL", raising=False)
    monkeypatch.setenv("KNOTFLOW_DATA_DIR", str(tmp_path))
    for command in (["serve", "--workers", "2"], ["worker"]):
        done = subprocess.run([sys.executable, "-m", "knotflow.cli", *command], capture_output=True, text=True,
                              timeout=60, env=dict(os.environ))
        assert done.returncode == 1 and "KNOTFLOW_REDIS_URL" in done.stderr, done.stderr


def test_a_resume_cut_short_by_a_kill_asks_its_question_again(cluster: dict[str, Any]) -> None:
    """The README's Ownership promise for resumes: when the process running a resume dies, the sweeper hands the
    question back, and a client attached on another process gets the `Interrupt` again (then may answer it)."""
    a, b = serve(cluster, "a"), serve(cluster, "b")
    ask = cluster["ask"]
    asked = a.post("/v1/workflow/stream_run", json={"workflow_id": ask, "parameters": {"input": "q"}}).text
    event_id = event_of(asked)
    assert event_id is not None, asked
    execute_id = event_id.split("/")[0]
    resume = {"workflow_id": ask, "event_id": event_id, "interrupt_type": 2, "resume_data": "Oslo"}
    with a.stream("POST", "/v1/workflow/stream_resume", json=resume) as resuming:
        lead = Reader(resuming)  # kept open: a closed stream would cancel the resume before the kill
        lead.take(2)
        with b.stream("GET", "/v1/workflow/stream_attach", params={"workflow_id": ask, "execute_id": execute_id},
                      headers={"Last-Event-ID": "0"}) as watching:
            follower = Reader(watching)
            follower.take(1)
            cluster["started"][0].kill()
            ending = follower.rest()
    interrupts = [e[2] for e in ending if e[1] == "Interrupt"]
    assert len(interrupts) == 1, ending[-3:]
    again = interrupts[0]["interrupt_data"]["event_id"]
    assert again.startswith(execute_id + "/")
    status = history(b, ask, execute_id)["execute_status"]
    assert status == "Running"  # waiting for its answer again, as cozepy reads an interrupted run
    answered = b.post("/v1/workflow/stream_resume", json={**resume, "event_id": again}).text
    assert "event: Done" in answered and "event: Error" not in answered, answered
