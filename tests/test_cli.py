"""The `knotflow` CLI: the last line of stdout is the value, failures are one stderr line and exit code 1."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from typer.testing import CliRunner, Result

from knotflow.cli import app
from knotflow.config import get_settings
from knotflow.service.catalog import demo_canvas
from knotflow.service.tokens import find_token
from knotflow.store.migrate import current_revision, head_revision
from knotflow.store.records import Workflow
from knotflow.store.repository import Store
from tests import canvases as c

T = TypeVar("T")
runner = CliRunner()


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = tmp_path / "data"
    monkeypatch.setenv("KNOTFLOW_DATA_DIR", str(directory))
    monkeypatch.delenv("KNOTFLOW_DATABASE_URL", raising=False)
    get_settings.cache_clear()  # settings are read once per process
    yield directory
    get_settings.cache_clear()


def cli(*args: str) -> Result:
    return runner.invoke(app, list(args))


def value(result: Result) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout.rstrip("\n").splitlines()[-1]


def failure(result: Result) -> str:
    """The single stderr line of a failed command."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def with_store(work: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        store = await Store.open(get_settings().resolved_database_url())
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def write_canvas(path: Path, canvas: dict[str, Any]) -> Path:
    path.write_text(json.dumps(canvas), encoding="utf-8")
    return path


def echo_canvas() -> dict[str, Any]:
    return {
        "nodes": [c.start(("name", "string")), c.end_return(output=c.ref("100001", "name"))],
        "edges": [c.edge("100001", "900001")],
    }


def workflow(workflow_id: str) -> Workflow:
    found = with_store(lambda store: store.get_workflow(workflow_id))
    assert found is not None
    return found


# --- tokens -------------------------------------------------------------------------------------------------
def test_token_create_on_a_fresh_data_dir(data_dir: Path) -> None:
    plaintext = value(cli("token", "create", "--name", "dev"))
    assert (data_dir / "knotflow.db").is_file()
    assert plaintext.startswith("pat_") and len(plaintext) == 52
    token = with_store(lambda store: find_token(store, plaintext))
    assert token is not None and token.name == "dev" and token.permissions == ["run"] and token.space_ids is None


def test_token_create_with_permissions_and_existing_spaces(data_dir: Path, tmp_path: Path) -> None:
    canvas = str(write_canvas(tmp_path / "flow.json", echo_canvas()))
    for space in ("1", "2"):
        value(cli("workflow", "import", canvas, "--space", space))  # importing into a space creates it
    args = ["--permission", "run", "--permission", "run", "--space", "1", "--space", "2"]
    plaintext = value(cli("token", "create", "--name", "ci", *args))
    token = with_store(lambda store: find_token(store, plaintext))
    assert token is not None and token.permissions == ["run"] and token.space_ids == ["1", "2"]


def test_token_create_refuses_unknown_permissions_and_spaces(data_dir: Path) -> None:
    line = failure(cli("token", "create", "--name", "x", "--permission", "frobnicate"))
    assert "unknown permission 'frobnicate'" in line and "run" in line
    line = failure(cli("token", "create", "--name", "x", "--space", "999"))
    assert "space 999 does not exist" in line and "workflow import FILE --space ID" in line
    assert "no duration" in failure(cli("token", "create", "--name", "x", "--expires-in", "soon"))
    assert "no duration" in failure(cli("token", "create", "--name", "x", "--expires-in", "0s"))
    assert with_store(lambda store: store.count_tokens()) == 0


def test_token_list_and_revoke(data_dir: Path) -> None:
    forever = value(cli("token", "create", "--name", "forever"))
    brief = cli("token", "create", "--name", "brief", "--expires-in", "1h")
    assert "expires 20" in brief.stderr
    tokens = with_store(lambda store: store.list_tokens())
    assert [t.name for t in tokens] == ["forever", "brief"]
    assert tokens[1].expires_at is not None and 3590 < tokens[1].expires_at - time.time() <= 3600
    listing = cli("token", "list")
    assert listing.exit_code == 0 and forever not in listing.stdout
    header, _, first, second = listing.stdout.strip().splitlines()
    assert header.split() == ["ID", "NAME", "PERMISSIONS", "SPACES", "CREATED", "EXPIRES", "STATUS"]
    assert first.split()[1:4] == ["forever", "run", "all"] and first.split()[-1] == "active"
    assert second.split()[1] == "brief" and second.split()[-1] == "active"
    assert value(cli("token", "revoke", tokens[0].id)) == tokens[0].id
    assert cli("token", "list").stdout.strip().splitlines()[2].split()[-1] == "revoked"
    assert "does not exist" in failure(cli("token", "revoke", "12345"))
    found = with_store(lambda store: find_token(store, forever))
    assert found is not None and found.status(time.time()) == "revoked"


def test_token_create_needs_a_name(data_dir: Path) -> None:
    assert cli("token", "create").exit_code != 0
    assert "name" in failure(cli("token", "create", "--name", " "))


# --- workflows ----------------------------------------------------------------------------------------------
def test_workflow_import_prints_the_id(data_dir: Path, tmp_path: Path) -> None:
    file = write_canvas(tmp_path / "greeter.json", echo_canvas())
    workflow_id = value(cli("workflow", "import", str(file)))
    imported = workflow(workflow_id)
    assert (imported.name, imported.mode, imported.latest_version) == ("greeter", "workflow", None)
    assert imported.canvas == echo_canvas()


def test_workflow_import_options(data_dir: Path, tmp_path: Path) -> None:
    file = write_canvas(tmp_path / "greeter.json", echo_canvas())
    args = ["--id", "7001", "--name", "Greeter", "--space", "55", "--app-id", "9", "--chatflow", "--requires-bot"]
    assert value(cli("workflow", "import", str(file), *args, "--publish")) == "7001"
    imported = workflow("7001")
    assert (imported.name, imported.space_id, imported.app_id, imported.mode) == ("Greeter", "55", "9", "chatflow")
    assert imported.requires_bot and imported.latest_version == "v0.0.1"

    # importing onto the same id replaces the draft; --version publishes under that name
    changed = echo_canvas()
    changed["nodes"][0]["data"]["nodeMeta"]["title"] = "Begin"
    write_canvas(file, changed)
    assert value(cli("workflow", "import", str(file), "--id", "7001", "--version", "v1.0.0")) == "7001"
    updated = workflow("7001")
    assert updated.canvas == changed and updated.name == "Greeter" and updated.latest_version == "v1.0.0"


def test_import_publish_without_the_model_keeps_the_draft(data_dir: Path, tmp_path: Path) -> None:
    from tests.nodes.test_llm import MODEL_TYPE, llm_node, through_llm

    file = write_canvas(tmp_path / "llm.json", through_llm(llm_node()))
    result = cli("workflow", "import", str(file), "--publish")
    assert result.exit_code == 1
    workflow_id = result.stdout.strip().splitlines()[-1]
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: imported {file} as draft {workflow_id}, not published: node 'LLM' (156549)")
    assert "models.yaml" in line and f"knotflow workflow publish {workflow_id}" in line
    stored = workflow(workflow_id)
    assert stored.canvas == through_llm(llm_node()) and stored.latest_version is None

    # models.yaml fixed: the kept draft publishes without importing again.
    (data_dir / "models.yaml").write_text(f"models:\n  - model_type: {MODEL_TYPE}\n"
                                          "    base_url: http://127.0.0.1:9/v1\n    model: m\n")
    assert value(cli("workflow", "publish", workflow_id)) == "v0.0.1"


def test_question_nodes_that_need_no_model_publish_without_one(data_dir: Path, tmp_path: Path) -> None:
    def question(answer_type: str, **extra: Any) -> dict[str, Any]:
        ask = c.node("160001", "18", "Ask", outputs=[{"name": "USER_RESPONSE", "type": "string"}], inputs={
            "inputParameters": [], "answer_type": answer_type, "question": "Which?", "limit": 3,
            "llmParam": {"modelType": 1737521813, "modelName": "absent"}, **extra})
        return {"nodes": [c.start(("x", "string")), ask, c.end_return(output=c.ref("160001", "USER_RESPONSE"))],
                "edges": [c.edge("100001", "160001"), c.edge("160001", "900001")]}

    plain = question("text", extra_output=False)
    options = question("option", option_type=0, options=[{"name": "A"}, {"name": "B"}])
    options["edges"] = [c.edge("100001", "160001"), c.edge("160001", "900001", "branch_0"),
                        c.edge("160001", "900001", "branch_1"), c.edge("160001", "900001", "default")]
    for name, canvas in (("plain", plain), ("options", options)):
        workflow_id = value(cli("workflow", "import", str(write_canvas(tmp_path / f"{name}.json", canvas)),
                                "--publish"))
        assert workflow(workflow_id).latest_version == "v0.0.1"


def test_workflow_import_yaml(data_dir: Path, tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    file = tmp_path / "flow.yaml"
    file.write_text(yaml.safe_dump(echo_canvas()), encoding="utf-8")
    assert workflow(value(cli("workflow", "import", str(file)))).canvas == echo_canvas()


def test_workflow_import_errors(data_dir: Path, tmp_path: Path) -> None:
    assert "missing.json" in failure(cli("workflow", "import", str(tmp_path / "missing.json")))
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{ this is: [not, json", encoding="utf-8")
    failure(cli("workflow", "import", str(garbage)))
    unknown = echo_canvas()
    unknown["nodes"].append(c.node("123456", "9999", "Mystery"))
    message = failure(cli("workflow", "import", str(write_canvas(tmp_path / "unknown.json", unknown))))
    assert "123456" in message and "9999" in message
    assert with_store(lambda store: store.list_workflows(space_ids=None)) == ([], False)


def test_workflow_publish_prints_the_version(data_dir: Path, tmp_path: Path) -> None:
    workflow_id = value(cli("workflow", "import", str(write_canvas(tmp_path / "w.json", echo_canvas()))))
    assert value(cli("workflow", "publish", workflow_id)) == "v0.0.1"
    assert value(cli("workflow", "publish", workflow_id, "--version", "v2")) == "v2"
    assert workflow(workflow_id).latest_version == "v2"
    assert "v2" in failure(cli("workflow", "publish", workflow_id, "--version", "v2"))
    assert "404" in failure(cli("workflow", "publish", "404"))


def test_workflow_list(data_dir: Path, tmp_path: Path) -> None:
    empty = cli("workflow", "list")
    assert empty.exit_code == 0 and empty.stdout == ""
    file = write_canvas(tmp_path / "alpha.json", echo_canvas())
    first = value(cli("workflow", "import", str(file), "--publish"))
    second = value(cli("workflow", "import", str(file), "--name", "beta", "--app-id", "321"))
    lines = cli("workflow", "list").stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "LATEST", "VERSION", "APP", "MODE"]
    rows = [line.split() for line in lines[2:]]
    assert rows == [[second, "beta", "-", "321", "workflow"], [first, "alpha", "v0.0.1", "-", "workflow"]]


# --- database, serve, run -----------------------------------------------------------------------------------
def test_db_upgrade(data_dir: Path) -> None:
    from knotflow.store.migrate import downgrade

    created = cli("db", "upgrade")
    assert value(created) == head_revision()
    assert "created the knotflow schema in the empty database" in created.stderr
    assert f"revision {head_revision()} (the current one)" in created.stderr
    again = cli("db", "upgrade")
    assert value(again) == head_revision()
    assert f"was already at the current schema: revision {head_revision()}" in again.stderr
    assert current_revision(get_settings().resolved_database_url()) == head_revision()
    downgrade(get_settings().resolved_database_url(), "0005")
    migrated = cli("db", "upgrade")
    assert f"from revision 0005 to {head_revision()} (the current one)" in migrated.stderr


def test_a_bad_database_url_is_one_line(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KNOTFLOW_DATABASE_URL", "nosuchdriver://x/y")
    get_settings.cache_clear()
    failure(cli("db", "upgrade"))


def test_serve_migrates_then_starts_the_server(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import knotflow.api.server

    calls: list[tuple[str, int, int]] = []

    def fake_serve(host: str, port: int, workers: int) -> None:
        assert current_revision(get_settings().resolved_database_url()) == head_revision()
        calls.append((host, port, workers))

    monkeypatch.setattr(knotflow.api.server, "serve", fake_serve)
    assert cli("serve", "--host", "0.0.0.0", "--port", "9123", "--workers", "3").exit_code == 0
    assert cli("serve").exit_code == 0
    assert calls == [("0.0.0.0", 9123, 3), ("127.0.0.1", 8000, 1)]


def test_run_passes_parameters_and_exits_with_the_code(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import knotflow.cli.run

    calls: list[tuple[str, dict[str, Any], bool]] = []

    def fake_run(workflow_id: str, parameters: dict[str, Any], stream: bool) -> int:
        calls.append((workflow_id, parameters, stream))
        return 3

    monkeypatch.setattr(knotflow.cli.run, "run_and_print", fake_run)
    assert cli("run", "42", "--parameters", '{"name": "George"}', "--stream").exit_code == 3
    assert cli("run", "43").exit_code == 3
    assert calls == [("42", {"name": "George"}, True), ("43", {}, False)]
    assert "JSON" in failure(cli("run", "42", "--parameters", "{nope"))
    assert "object" in failure(cli("run", "42", "--parameters", "[1]"))
    assert len(calls) == 2


def test_run_a_published_workflow(data_dir: Path, tmp_path: Path) -> None:
    workflow_id = value(
        cli("workflow", "import", str(write_canvas(tmp_path / "hello.json", demo_canvas())), "--publish")
    )
    result = cli("run", workflow_id, "--parameters", '{"name": "George"}')
    assert result.exit_code == 0, result.stderr
    assert "Hello, George!" in result.stdout


def test_commands_work_while_another_process_uses_the_database(data_dir: Path) -> None:
    value(cli("db", "upgrade"))
    database = data_dir / "knotflow.db"
    reader = sqlite3.connect(database, isolation_level=None)
    writer = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM tokens").fetchall()  # an open read snapshot, like a server's
        writer.execute("BEGIN IMMEDIATE")  # and a write lock, released shortly

        def release() -> None:
            time.sleep(0.5)
            writer.execute("COMMIT")

        releaser = threading.Thread(target=release)
        releaser.start()
        started = time.monotonic()
        plaintext = value(cli("token", "create", "--name", "while busy"))
        releaser.join()
        assert time.monotonic() - started >= 0.4  # it waited for the lock instead of failing
        assert plaintext.startswith("pat_")
        reader.execute("COMMIT")
    finally:
        reader.close()
        writer.close()


# --- the real console script --------------------------------------------------------------------------------
def test_console_script_last_line_contract(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "knotflow"
    if not script.exists():
        pytest.skip("the knotflow console script is not installed (pip install -e .)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KNOTFLOW_")}
    env["KNOTFLOW_DATA_DIR"] = str(tmp_path / "data")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(script), *args], env=env, capture_output=True, text=True, timeout=120)

    created = run("token", "create", "--name", "script")
    assert created.returncode == 0, created.stderr
    assert created.stdout.splitlines()[-1].startswith("pat_")

    file = write_canvas(tmp_path / "flow.json", echo_canvas())
    imported = run("workflow", "import", str(file), "--id", "9001", "--publish")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.splitlines()[-1] == "9001"
    published = run("workflow", "publish", "9001")
    assert published.returncode == 0 and published.stdout.splitlines()[-1] == "v0.0.2"

    missing = run("workflow", "import", str(tmp_path / "nope.json"))
    assert missing.returncode == 1 and missing.stdout == ""
    assert len(missing.stderr.strip().splitlines()) == 1 and "Traceback" not in missing.stderr
