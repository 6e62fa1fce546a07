"""The Code node end to end: cozepy, unchanged, runs published workflows with Python and JavaScript Code nodes on a
real server (built by the composition root, real sandboxes); the escape battery runs through the real node while
other runs keep being served; and a server on a machine without bubblewrap still serves every other node."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cozepy import Coze, TokenAuth, WorkflowEventType

from knotflow.config import Settings
from tests import canvases as c
from tests.api.conftest import LiveServer, free_port, serving
from tests.api.test_resume import ServerProcess, processes

__all__ = ["processes"]

TIMEOUT = 3  # KNOTFLOW_CODE_TIMEOUT of the test server: the battery's endless attempts end this soon
SECRET_ENV, SECRET = "KNOTFLOW_FILE_URL_SECRET", "file-links-s3cr3t-never-in-a-sandbox"
MODEL_KEY_ENV, MODEL_KEY = "CODE_TEST_MODEL_KEY", "sk-model-key-never-in-a-sandbox"
FAILED = "[305000002] Function execution failed, please check the code of the function. Detail: "



@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose process holds secrets a sandbox must never see: the file-link secret and a model key (in its
    environment), its database, its models.yaml."""
    data_dir = tmp_path_factory.mktemp("knotflow-code")
    (data_dir / "models.yaml").write_text(
        f"models:\n  - model_type: 1\n    base_url: http://127.0.0.1:9/v1\n    model: m\n"
        f"    api_key_env: {MODEL_KEY_ENV}\n")
    saved = {name: os.environ.get(name) for name in (SECRET_ENV, MODEL_KEY_ENV)}
    os.environ.update({SECRET_ENV: SECRET, MODEL_KEY_ENV: MODEL_KEY})
    settings = Settings(data_dir=data_dir, port=free_port(), code_timeout=TIMEOUT)
    try:
        with serving(settings) as live:
            yield live
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def coze(server: LiveServer) -> Coze:
    return Coze(auth=TokenAuth(server.token()), base_url=server.base_url)


def outcome(coze: Coze, workflow_id: str, parameters: dict[str, Any] | None = None) -> tuple[Any, str | None]:
    """A streamed run's output (the End node's JSON) or its error message."""
    events = list(coze.workflows.runs.stream(workflow_id=workflow_id, parameters=parameters or {"input": "x"}))
    errors = [e.error for e in events if e.event == WorkflowEventType.ERROR]
    if errors:
        assert len(errors) == 1 and errors[0] is not None and errors[0].error_code == 5000
        return None, errors[0].error_message
    messages = [e.message for e in events if e.event == WorkflowEventType.MESSAGE]
    assert messages and messages[-1] is not None
    return json.loads(messages[-1].content or "null"), None


@pytest.mark.parametrize(("source", "language"), [(c.PY_DOUBLE, 3), (c.JS_DOUBLE, 5)])
def test_cozepy_runs_a_code_node(coze: Coze, server: LiveServer, source: str, language: int) -> None:
    workflow_id = server.publish(c.code_on_input(source, language))
    result = coze.workflows.runs.create(workflow_id=workflow_id, parameters={"input": "ab"})
    assert json.loads(result.data or "") == {"out": "abab"}
    assert outcome(coze, workflow_id, {"input": "cd"}) == ({"out": "cdcd"}, None)


def test_a_failure_reaches_cozepy_as_studios_error(coze: Coze, server: LiveServer) -> None:
    workflow_id = server.publish(c.code_on_input("def main(args):\n    return fn(1)"))
    assert outcome(coze, workflow_id) == (None, FAILED + "NameError: name 'fn' is not defined (line 2)")


def test_studios_import_check_refuses_the_canvas_at_publish(server: LiveServer) -> None:
    with pytest.raises(Exception, match="ModuleNotFoundError: The module\\(s\\) 'socket' are removed from the "
                                        "Python standard library for security reasons"):
        server.publish(c.code_on_input("import socket\ndef main(args):\n    return {}"))


# --- the escape battery ---------------------------------------------------------------------------------------

class Traffic:
    """Other runs the server keeps serving meanwhile: a workflow without code and one with a Python Code node,
    back to back in a thread; every run must succeed."""

    def __init__(self, coze: Coze, plain_id: str, code_id: str) -> None:
        self.coze, self.plain_id, self.code_id = coze, plain_id, code_id
        self.done = 0
        self.problems: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for workflow_id, expected in ((self.plain_id, {"output": "x"}), (self.code_id, {"out": "xx"})):
                try:
                    result = self.coze.workflows.runs.create(workflow_id=workflow_id, parameters={"input": "x"})
                    if json.loads(result.data or "") != expected:
                        self.problems.append(f"{workflow_id}: {result.data}")
                    self.done += 1
                except Exception as exc:  # recorded, asserted after the battery
                    self.problems.append(f"{workflow_id}: {exc!r}")


def python_attempts(server: LiveServer) -> dict[str, tuple[str, str]]:
    """Name → (code, what its error must say). The code tries; the sandbox refuses."""
    data_dir = server.settings.data_dir.resolve()
    database = server.settings.resolved_database_url().split("///", 1)[1]
    port = server.settings.port

    def reads(path: str | Path) -> str:
        return f"def main(args):\n    return {{'out': open({str(path)!r}).read()}}"

    return {
        "read /etc/passwd": (reads("/etc/passwd"),
                             "FileNotFoundError: [Errno 2] No such file or directory: '/etc/passwd' (line 2)"),
        "read the server's database": (reads(database), f"No such file or directory: '{database}' (line 2)"),
        "read the file-link secret": (reads(data_dir / "file-url-secret"), "No such file or directory"),
        "read models.yaml": (reads(data_dir / "models.yaml"), "No such file or directory"),
        "read the server's /proc/PID/environ": (reads(f"/proc/{os.getpid()}/environ"), "No such file or directory"),
        "read the sandbox's own environ": (reads("/proc/self/environ"), "PermissionError: [Errno 13] Permission "
                                                                        "denied: '/proc/self/environ' (line 2)"),
        "os.environ: the file-link secret": ("import os\ndef main(args):\n    return {'out': os.environ["
                                             f"{SECRET_ENV!r}]}}", f"KeyError: '{SECRET_ENV}' (line 3)"),
        "os.environ: a model key": (f"import os\ndef main(args):\n    return {{'out': os.environ[{MODEL_KEY_ENV!r}]}}",
                                    f"KeyError: '{MODEL_KEY_ENV}' (line 3)"),
        "write outside the scratch dir": ("def main(args):\n    open('/usr/lib/evil', 'w')",
                                          "OSError: [Errno 30] Read-only file system: '/usr/lib/evil' (line 2)"),
        "write into the server's data dir": (f"def main(args):\n    open({str(data_dir / 'evil')!r}, 'w')",
                                             "No such file or directory"),
        "open a socket to the server (loopback)": (
            "def main(args):\n    sock = __import__('socket')\n"
            f"    sock.create_connection(('127.0.0.1', {port}), timeout=2)",
            "ConnectionRefusedError: [Errno 111] Connection refused (line 3)"),
        "fork bomb": ("import os\ndef main(args):\n    while True:\n        os.fork()",
                      "PermissionError: [Errno 1] Operation not permitted (line 4)"),
        "allocate 4 GiB": ("def main(args):\n    hog = bytearray(4 << 30)\n    return {}", "MemoryError"),
        "infinite loop": ("def main(args):\n    while True:\n        pass",
                          f"Execution timed out after {TIMEOUT} seconds"),
        "sleep past the timeout": ("import time\nasync def main(args):\n    time.sleep(60)",
                                   f"Execution timed out after {TIMEOUT} seconds"),
        "return 100 MB": ("def main(args):\n    return {'out': 'x' * (100 << 20)}", "MemoryError while serializing"),
        "return 2 MB": ("def main(args):\n    return {'out': 'x' * (2 << 20)}",
                        "the output is 2097163 bytes, over the limit of 1048576"),
        "ctypes: leave the namespaces": (
            "import ctypes\ndef main(args):\n    libc = ctypes.CDLL(None, use_errno=True)\n"
            "    if libc.unshare(0x10000000) != 0:\n        raise OSError(ctypes.get_errno(), 'unshare refused')",
            "PermissionError: [Errno 1] unshare refused (line 5)"),
        "ctypes: trace another process": (
            "import ctypes\ndef main(args):\n    libc = ctypes.CDLL(None, use_errno=True)\n"
            "    if libc.ptrace(16, 1, 0, 0) != 0:\n        raise OSError(ctypes.get_errno(), 'ptrace refused')",
            "PermissionError: [Errno 1] ptrace refused (line 5)"),
        "subprocess": ("import subprocess\ndef main(args):\n    subprocess.run(['/usr/bin/cat', '/etc/shadow'])",
                       "PermissionError: [Errno 1] Operation not permitted (line 3)"),
        # system(3) reports a shell it could not start as exit status 127.
        "os.system": ("import os\ndef main(args):\n    status = os.waitstatus_to_exitcode(os.system('id'))\n"
                      "    raise RuntimeError(f'os.system: exit status {status}')",
                      "RuntimeError: os.system: exit status 127 (line 4)"),
    }


def javascript_attempts(server: LiveServer) -> dict[str, tuple[str, str]]:
    # QuickJS is the language alone: every way out that a runtime such as Deno or Node offers (files, environment,
    # network, processes, libraries) does not exist; and the code runs in the same confined child as Python's.
    database = server.settings.resolved_database_url().split("///", 1)[1]
    port = server.settings.port
    missing = "ReferenceError: could not load module '{}'"
    return {
        "read /etc/passwd": ("async function main() {\n  return { out: await Deno.readTextFile('/etc/passwd') } }",
                             "ReferenceError: Deno is not defined (line 2)"),
        "read the server's database through qjs:std": (
            f"import * as std from 'qjs:std';\nfunction main() {{ return {{ out: std.loadFile({database!r}) }} }}",
            missing.format("qjs:std")),
        "read /etc/passwd through node:fs": (
            "import { readFileSync } from 'node:fs';\n"
            "function main() { return { out: readFileSync('/etc/passwd', 'utf8') } }",
            missing.format("node:fs")),
        "process.env": (f"function main() {{\n  return {{ out: process.env.{SECRET_ENV} }} }}",
                        "ReferenceError: process is not defined (line 2)"),
        "Deno.env": (f"function main() {{\n  return {{ out: globalThis.Deno.env.get({SECRET_ENV!r}) }} }}",
                     "TypeError: cannot read property 'env' of undefined (line 2)"),
        "write a file through qjs:os": (
            "import * as os from 'qjs:os';\n"
            "function main() { os.open('/tmp/evil', os.O_WRONLY | os.O_CREAT); return {} }",
            missing.format("qjs:os")),
        "open a socket to the server (loopback)": (
            f"async function main() {{\n  await Deno.connect({{ hostname: '127.0.0.1', port: {port} }});\n}}",
            "ReferenceError: Deno is not defined (line 2)"),
        "fetch from the server (loopback)": (
            f"async function main() {{\n  await fetch('http://127.0.0.1:{port}/health'); return {{}} }}",
            "ReferenceError: fetch is not defined (line 2)"),
        "start a process (fork bomb)": (
            "import { spawn } from 'node:child_process';\n"
            "function main() { spawn('/usr/bin/sh', ['-c', ':(){ :|:& };:']); return {} }",
            missing.format("node:child_process")),
        "start threads": ("function main() {\n  for (;;) new Worker('data:text/javascript,for(;;);') }",
                          "ReferenceError: Worker is not defined (line 2)"),
        "allocate 4 GiB": ("function main() { const parts = [];\n  for (let i = 0; i < 16; i++) "
                           "parts.push(new ArrayBuffer(2 ** 28)); return { n: parts.length } }",
                           "JavaScript heap out of memory (limit 100 MB)"),
        "return 100 MB": ("function main() { return { out: 'x'.repeat(100 * 2 ** 20) } }",
                          "JavaScript heap out of memory (limit 100 MB)"),
        "return 2 MB": ("function main() { return { out: 'x'.repeat(2 * 2 ** 20) } }",
                        "the output is 2097162 bytes, over the limit of 1048576"),
        "infinite loop": ("function main() { while (true) {} }", f"Execution timed out after {TIMEOUT} seconds"),
        "sleep past the timeout": ("async function main() { await new Promise((r) => setTimeout(r, 60000)) }",
                                   f"Execution timed out after {TIMEOUT} seconds"),
    }


def test_escape_battery_through_the_node_while_other_runs_are_served(coze: Coze, server: LiveServer) -> None:
    """Every attempt fails its own run with a clear node error; meanwhile every other run succeeds."""
    plain_id = server.publish(c.echo())
    code_id = server.publish(c.code_on_input(c.PY_DOUBLE))
    attempts = [(f"python: {name}", 3, code, error) for name, (code, error) in python_attempts(server).items()]
    attempts += [(f"javascript: {name}", 5, code, error) for name, (code, error) in javascript_attempts(server).items()]
    published = [(name, server.publish(c.code_on_input(code, language)), error)
                 for name, language, code, error in attempts]
    failures = []
    with Traffic(coze, plain_id, code_id) as traffic:
        for name, workflow_id, expected in published:
            output, error = outcome(coze, workflow_id)
            if error is None or not error.startswith(FAILED) or expected not in error:
                failures.append(f"{name}: expected an error with {expected!r}, got {error or output!r}")
            elif SECRET in error or MODEL_KEY in error:
                failures.append(f"{name}: the error shows a secret: {error}")
        time.sleep(0.5)  # a last round of traffic after the battery
    assert not failures, "\n".join(failures)
    assert not traffic.problems, traffic.problems[:5]
    assert traffic.done >= len(published)  # other runs really went on meanwhile


def test_printing_100_mb_is_cut_not_kept(coze: Coze, server: LiveServer) -> None:
    """Printed text is kept up to its limit (64K characters) and never shown: printing 100 MB neither fails the
    node nor reaches the server whole."""
    for source, language in [("def main(args):\n    print('x' * (100 << 20))\n    return {'out': 'done'}", 3),
                             # In 1 MB lines: one 100 MB string is over JavaScript's own 100 MB memory limit.
                             ("function main() { const line = 'x'.repeat(2 ** 20);\n"
                              "  for (let i = 0; i < 100; i++) console.log(line);\n  return { out: 'done' } }", 5)]:
        assert outcome(coze, server.publish(c.code_on_input(source, language))) == ({"out": "done"}, None)


def test_a_run_cannot_see_another_runs_scratch_files(coze: Coze, server: LiveServer) -> None:
    writer = server.publish(c.code_on_input(
        "import os\ndef main(args):\n    with open('/tmp/left-behind.txt', 'w') as f:\n        f.write('run one')\n"
        "    return {'out': ','.join(os.listdir('/tmp'))}"))
    reader = server.publish(c.code_on_input(
        "import os\ndef main(args):\n    return {'out': open('/tmp/left-behind.txt').read()}"))
    lister = server.publish(c.code_on_input("import os\ndef main(args):\n    return {'out': repr(os.listdir('/tmp'))}"))
    assert outcome(coze, writer) == ({"out": "left-behind.txt"}, None)
    for _ in range(4):  # whichever warm sandbox serves it
        assert outcome(coze, reader) == (None, FAILED + "FileNotFoundError: [Errno 2] No such file or directory: "
                                                        "'/tmp/left-behind.txt' (line 3)")
        assert outcome(coze, lister) == ({"out": "[]"}, None)


def test_without_bubblewrap_the_server_serves_every_other_node(tmp_path: Path, database_url: str,
                                                               processes: list[ServerProcess],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`knotflow serve` on a machine without bubblewrap (not on its PATH): it starts, runs other workflows, and a
    Code node fails with an error naming what is missing."""
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    settings.data_dir.mkdir(exist_ok=True)
    seeding = LiveServer(settings, "")
    plain_id, code_id = seeding.publish(c.echo()), seeding.publish(c.code_on_input(c.PY_DOUBLE))
    port = free_port()
    processes.append(ServerProcess(settings, port, tmp_path / "serve.log"))
    coze = Coze(auth=TokenAuth(seeding.token()), base_url=f"http://127.0.0.1:{port}")
    assert json.loads(coze.workflows.runs.create(workflow_id=plain_id, parameters={"input": "x"}).data or "") == {
        "output": "x"}
    missing = (None, FAILED + "Python code cannot run on this server: bubblewrap is not installed (Debian: apt-get "
                              "install bubblewrap)")
    assert outcome(coze, code_id) == missing
    assert outcome(coze, code_id) == missing  # and again, while other runs go on
    assert json.loads(coze.workflows.runs.create(workflow_id=plain_id, parameters={"input": "y"}).data or "") == {
        "output": "y"}


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (zombies count as gone)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_server_takes_its_sandboxes_with_it(tmp_path: Path, database_url: str,
                                                     processes: list[ServerProcess]) -> None:
    """SIGKILL a server while a Python and a JavaScript call run: every sandbox process ends with it."""
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    settings.data_dir.mkdir(exist_ok=True)
    seeding = LiveServer(settings, "")
    endless = [seeding.publish(c.code_on_input("def main(args):\n    while True:\n        pass")),
               seeding.publish(c.code_on_input("function main() { while (true) {} }", 5))]
    port = free_port()
    server = ServerProcess(settings, port, tmp_path / "serve.log")
    processes.append(server)
    coze = Coze(auth=TokenAuth(seeding.token()), base_url=f"http://127.0.0.1:{port}")
    for workflow_id in endless:
        threading.Thread(target=lambda w=workflow_id: _quietly(coze, w), daemon=True).start()
    deadline = time.monotonic() + 30
    while len(sandboxes := descendants(server.process.pid)) < 8 and time.monotonic() < deadline:
        time.sleep(0.2)  # both pools started: bwrap, its init and the runtime, per warm sandbox
    time.sleep(1)  # the calls are running
    sandboxes = descendants(server.process.pid)
    assert len(sandboxes) >= 8, sandboxes
    server.kill()
    deadline = time.monotonic() + 10
    while (left := {pid for pid in sandboxes if alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, [(pid, (Path("/proc") / str(pid) / "cmdline").read_bytes()[:80]) for pid in left]


def _quietly(coze: Coze, workflow_id: str) -> None:
    with contextlib.suppress(Exception):  # the server is killed under it
        list(coze.workflows.runs.stream(workflow_id=workflow_id, parameters={"input": "x"}))
