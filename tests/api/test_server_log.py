"""The server's log, from a real `knotflow serve` process: one line per request, per run start and end, per
provider failure and per refused resume; JSON lines with KNOTFLOW_LOG_FORMAT=json; and never a token, an API key
or a signed link."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cozepy import Coze, TokenAuth, WorkflowEventType

from knotflow import logs
from knotflow.config import Settings
from knotflow.models.registry import load_registry
from knotflow.service import catalog
from knotflow.service.tokens import create_token
from knotflow.store.migrate import upgrade
from knotflow.store.repository import Store
from tests import canvases as c
from tests.api.conftest import free_port
from tests.api.test_file_parameters import file_canvas
from tests.fakes.model_server import FakeModelServer, Reply
from tests.nodes.test_llm import LLM_ID, MODEL_TYPE, llm_node

API_KEY = "sk-live-0123456789abcdefSECRET"
KEY_ENV = "KNOTFLOW_TEST_PROVIDER_KEY"


def question_canvas() -> dict[str, Any]:
    question = c.node("160001", "18", "Ask", outputs=[{"name": "USER_RESPONSE", "type": "string"}], inputs={
        "inputParameters": [], "answer_type": "text", "question": "Who?", "limit": 3, "extra_output": False,
    })
    return c.canvas([c.start(("input", "string")), question,
                     c.end_return(output=c.ref("160001", "USER_RESPONSE"))],
                    [c.edge("100001", "160001"), c.edge("160001", "900001")])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A `knotflow serve` process logging JSON, with an LLM workflow whose provider fails, a Question workflow,
    a file echo workflow and a token; yields what the test needs, then the process's stderr lines."""
    model = FakeModelServer().start()
    data_dir = tmp_path_factory.mktemp("served")
    (data_dir / "models.yaml").write_text(
        f"models:\n  - model_type: {MODEL_TYPE}\n    base_url: {model.base_url}\n    model: fake-model\n"
        f"    api_key_env: {KEY_ENV}\n")
    settings = Settings(data_dir=data_dir)
    upgrade(settings.resolved_database_url())

    async def seed() -> dict[str, Any]:
        store = await Store.open(settings.resolved_database_url())
        try:
            models = load_registry(data_dir / "models.yaml")
            llm = c.canvas([c.start(("input", "string")), llm_node(),
                            c.end_return(output=c.ref(LLM_ID, "output"))],
                           [c.edge("100001", LLM_ID), c.edge(LLM_ID, "900001")])
            ids = {}
            for name, canvas in (("llm", llm), ("question", question_canvas()), ("files", file_canvas())):
                workflow, _ = await catalog.import_workflow(store, canvas, publish=True, models=models)
                ids[name] = workflow.id
            _, token = await create_token(store, "log test", ["run"], None)
            return {"ids": ids, "token": token}
        finally:
            await store.close()

    seeded = asyncio.run(seed())
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KNOTFLOW_")}
    env.update(KNOTFLOW_DATA_DIR=str(data_dir), KNOTFLOW_LOG_FORMAT="json", KNOTFLOW_PORT=str(port),
               **{KEY_ENV: API_KEY})
    stderr_path, stdout_path = data_dir / "stderr.log", data_dir / "stdout.log"
    with stderr_path.open("w") as stderr, stdout_path.open("w") as stdout:
        process = subprocess.Popen([sys.executable, "-m", "knotflow.cli", "serve"], env=env,
                                   stdout=stdout, stderr=stderr)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, stderr_path.read_text()
            time.sleep(0.1)
        yield {**seeded, "base_url": base_url, "model": model, "stderr": stderr_path, "stdout": stdout_path}
    finally:
        process.terminate()
        process.wait(timeout=20)
        model.stop()


def lines(stderr: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.read_text().splitlines() if line.strip()]


def wait_for(stderr: Path, message: str, **fields: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in lines(stderr):
            if line.get("message") == message and all(line.get(k) == v for k, v in fields.items()):
                return line
        time.sleep(0.05)
    raise AssertionError(f"no {message!r} line with {fields} in:\n{stderr.read_text()}")


def test_every_line_is_json_and_secrets_are_never_written(served: dict[str, Any], tmp_path: Path) -> None:
    token, ids, base_url = served["token"], served["ids"], served["base_url"]
    coze = Coze(auth=TokenAuth(token), base_url=base_url)
    model: FakeModelServer = served["model"]
    stderr: Path = served["stderr"]

    # A request line: method, path, status, duration and logid.
    response = httpx.get(f"{base_url}/v1/workflows/{ids['llm']}", headers={"Authorization": f"Bearer {token}"})
    logid = response.headers["x-tt-logid"]
    request = wait_for(stderr, "request", path=f"/v1/workflows/{ids['llm']}", logid=logid)
    assert request["method"] == "GET" and request["status"] == 200 and request["duration_ms"] >= 0
    assert request["level"] == "INFO" and request["time"]

    # A provider's HTTP 500: one line naming the model and the status, inside the run's execute_id; the run's
    # start and its failed end.
    model.script(Reply(status=500, error=f"upstream exploded (key {API_KEY})"))
    events = list(coze.workflows.runs.stream(workflow_id=ids["llm"], parameters={"input": "hi"}))
    assert any(e.event == WorkflowEventType.ERROR for e in events)
    failure = wait_for(stderr, "model provider failed", status=500)
    execute_id = failure["execute_id"]
    assert failure["level"] == "WARNING" and failure["kind"] == "status" and "exploded" in failure["error"]
    started = wait_for(stderr, "run started", execute_id=execute_id)
    assert started["workflow_id"] == ids["llm"] and started["version"] == "v0.0.1" and started["logid"]
    ended = wait_for(stderr, "run ended", execute_id=execute_id)
    assert ended["status"] == "Fail" and ended["duration_ms"] >= 0 and "HTTP 500" in ended["error"]
    assert ended["error_code"] == 720701013

    # A successful run ends with Success; a refused resume is one warning line.
    model.script(Reply(content="fine", usage=(1, 1)))
    coze.workflows.runs.create(workflow_id=ids["llm"], parameters={"input": "hi"})
    wait_for(stderr, "run ended", workflow_id=ids["llm"], status="Success")
    asked = list(coze.workflows.runs.stream(workflow_id=ids["question"], parameters={"input": "x"}))
    interrupt = next(e.interrupt for e in asked if e.event == WorkflowEventType.INTERRUPT)
    assert interrupt is not None
    wait_for(stderr, "run ended", workflow_id=ids["question"], status="Interrupted")
    with pytest.raises(Exception):  # noqa: B017 (cozepy raises its CozeAPIError)
        list(coze.workflows.runs.resume(workflow_id=ids["question"], event_id=interrupt.interrupt_data.event_id,
                                        resume_data="Ada", interrupt_type=5))
    refused = wait_for(stderr, "resume refused", event_id=interrupt.interrupt_data.event_id)
    assert refused["level"] == "WARNING" and refused["code"] == 4000 and "interrupt_type" in refused["error"]

    # A signed link, opened: the request line has its path, never its signature.
    upload = tmp_path / "note.txt"
    upload.write_bytes(b"secret-free content")
    file_id = coze.files.upload(file=upload).id
    result = coze.workflows.runs.create(workflow_id=ids["files"], parameters={"doc": {"file_id": file_id}})
    link = json.loads(result.data or "{}")["doc"]
    assert "signature=" in link and httpx.get(link).status_code == 200
    signature = link.split("signature=")[1].split("&")[0]
    wait_for(stderr, "request", path=f"/v1/files/{file_id}/content", status=200)

    text = stderr.read_text()
    assert token not in text and token[4:] not in text
    assert API_KEY not in text
    assert signature not in text
    assert all(isinstance(line, dict) for line in lines(stderr))  # every line parsed as JSON


def test_a_restart_says_how_to_get_a_token(served: dict[str, Any]) -> None:
    # The database already had a token: no demo is seeded, and the server says how to make a token.
    assert "knotflow token create --name NAME" in served["stdout"].read_text()


def test_knotflow_run_stream_prints_the_debug_url(tmp_path: Path) -> None:

    env = {k: v for k, v in os.environ.items() if not k.startswith("KNOTFLOW_")}
    env.update(KNOTFLOW_DATA_DIR=str(tmp_path), KNOTFLOW_PUBLIC_URL="http://knotflow.example:8000")
    canvas = tmp_path / "echo.json"
    canvas.write_text(json.dumps(c.echo()))

    def knotflow(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "knotflow.cli", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    workflow_id = knotflow("workflow", "import", str(canvas), "--publish").stdout.strip().splitlines()[-1]
    streamed = knotflow("run", workflow_id, "--parameters", '{"input": "hi"}', "--stream")
    assert streamed.returncode == 0, streamed.stderr
    done = [line for line in streamed.stdout.splitlines() if line.startswith("data:")][-1]
    url = json.loads(done[5:])["debug_url"]
    assert url.startswith("http://knotflow.example:8000/work_flow?execute_id=") and f"workflow_id={workflow_id}" in url


def test_redact_masks_tokens_keys_and_signed_links() -> None:
    logs.register_secret("my-provider-key-123")
    text = logs.redact("Bearer pat_abc123XYZ_- and pat_zzzzzz, key my-provider-key-123, sk-abcdefgh12, "
                       "http://h/v1/files/1/content?expires=9&signature=00ff&x-wf-file_name=a")
    assert "pat_abc" not in text and "zzzzzz" not in text and "my-provider-key-123" not in text
    assert "sk-abcdefgh12" not in text and "00ff" not in text
    assert "expires=9&signature=***&x-wf-file_name=a" in text


def test_text_lines_carry_the_fields_and_the_context(capsys: pytest.CaptureFixture[str]) -> None:
    handler = logs.configure("info", "text")
    try:
        with logs.bind(execute_id="77"):
            logging.getLogger("knotflow.test").info("run ended", extra={"status": "Success"})
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert line.endswith("INFO knotflow.test: run ended status=Success execute_id=77")
        logs.configure("info", "json")
        logging.getLogger("knotflow.test").info("hello pat_secret123", extra={"n": 1})
        record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert record["message"] == "hello pat_***" and record["n"] == 1 and record["level"] == "INFO"
    finally:
        logging.getLogger().removeHandler(handler)
        for extra in [h for h in logging.getLogger().handlers if h.get_name() == "knotflow"]:
            logging.getLogger().removeHandler(extra)
