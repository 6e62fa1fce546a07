"""What the code cannot reach: the network (loopback included), the host's and the server's files, the server's
environment, anything outside its scratch directory, other processes, privileged kernel interfaces."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from knotflow.sandbox import CodeSandbox
from tests.sandbox.conftest import SECRET_ENV, SECRET_VALUE, failure, js, python

pytestmark = pytest.mark.asyncio(loop_scope="module")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A real server socket on loopback, in the test's (the server's) network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.setblocking(False)
        with socket.create_connection(server.getsockname(), timeout=2):  # it really accepts connections
            pass
        server.accept()[0].close()
        yield server


def nothing_connected(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
    except BlockingIOError:
        return True
    return False


async def test_python_cannot_reach_loopback_or_anything(sandbox: CodeSandbox, listener: socket.socket) -> None:
    code = """
import socket
def main(args):
    port = args.params["port"]
    out = {"interfaces": [name for _, name in socket.if_nameindex()]}
    for host in ["127.0.0.1", "::1", "localhost"]:
        try:
            socket.create_connection((host, port), timeout=2).close()
            out[host] = "connected"
        except Exception as error:
            out[host] = type(error).__name__
    return out
"""
    out = await python(sandbox, code, {"port": listener.getsockname()[1]})
    assert out["interfaces"] == ["lo"]  # a network namespace of its own, with nothing but its own loopback
    assert out["127.0.0.1"] == "ConnectionRefusedError" and out["::1"] == "ConnectionRefusedError"
    assert out["localhost"] != "connected"  # no /etc/hosts, so not even a name
    assert nothing_connected(listener)


async def test_js_cannot_reach_loopback(sandbox: CodeSandbox, listener: socket.socket) -> None:
    # QuickJS is the language alone: no network API exists; and it runs in the same empty network namespace.
    code = """
async function main({ params }) {
  const out: Record<string, string> = {};
  const attempts = {
    fetch: () => fetch(`http://127.0.0.1:${params.port}/`),
    connect: () => Deno.connect({ hostname: "127.0.0.1", port: params.port }),
    websocket: () => new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${params.port}/`);
      ws.onopen = resolve; ws.onerror = () => reject(new Error("websocket error"));
    }),
    xhr: () => new XMLHttpRequest(),
    net: () => import("node:net"),
  };
  for (const [name, attempt] of Object.entries(attempts)) {
    try { await attempt(); out[name] = "connected"; } catch (error) { out[name] = String(error); }
  }
  return out;
}
"""
    out = await js(sandbox, code, {"port": listener.getsockname()[1]})
    assert out == {
        "fetch": "ReferenceError: fetch is not defined", "connect": "ReferenceError: Deno is not defined",
        "websocket": "ReferenceError: WebSocket is not defined",
        "xhr": "ReferenceError: XMLHttpRequest is not defined",
        "net": "ReferenceError: could not load module 'node:net'",
    }  # fmt: skip
    assert nothing_connected(listener)


READ_PYTHON = """
def main(args):
    out = {}
    for path in args.params["paths"]:
        try:
            with open(path, "rb") as handle:
                out[path] = "READ " + handle.read(200).decode(errors="replace")
        except Exception as error:
            out[path] = type(error).__name__
    return out
"""


async def test_python_cannot_read_host_or_server_files(sandbox: CodeSandbox, tmp_path: Path) -> None:
    secret = tmp_path / "secrets.env"
    secret.write_text(f"{SECRET_ENV}={SECRET_VALUE}\n")
    database = tmp_path / "knotflow.db"
    database.write_bytes(b"SQLite format 3\x00" + SECRET_VALUE.encode())
    paths = [
        str(secret), str(database), "/etc/passwd", "/etc/shadow", "/etc/hostname", "/root/.bash_history",
        str(REPO / "pyproject.toml"), str(REPO / "src/knotflow/config.py"), "/proc/1/environ",
    ]  # fmt: skip
    out = await python(sandbox, READ_PYTHON, {"paths": paths})
    assert not [path for path, value in out.items() if value.startswith("READ")], out
    assert SECRET_VALUE not in json.dumps(out)


# QuickJS's own std and os modules (files, processes, environment) are not built into the runtime knotflow loads.
JS_MODULES = ["qjs:std", "qjs:os", "std", "os", "fs", "node:fs", "node:child_process", "node:process", "/etc/passwd",
              "./pyworker.py", "/sandbox/js/runner.js", "data:text/javascript,export default 1"]  # fmt: skip
# Everything the code's global scope holds: ECMAScript's built-ins and what Coze's runtimes give besides (console,
# timers, performance, atob/btoa, queueMicrotask, DOMException). Nothing that reaches out of the process.
JS_GLOBALS = {
    "AggregateError", "Array", "ArrayBuffer", "AsyncDisposableStack", "Atomics", "BigInt", "BigInt64Array",
    "BigUint64Array", "Boolean", "DOMException", "DataView", "Date", "DisposableStack", "Error", "EvalError",
    "FinalizationRegistry", "Float16Array", "Float32Array", "Float64Array", "Function", "Infinity", "Int16Array",
    "Int32Array", "Int8Array", "InternalError", "Iterator", "JSON", "Map", "Math", "NaN", "Number", "Object",
    "Promise", "Proxy", "RangeError", "ReferenceError", "Reflect", "RegExp", "Set", "SharedArrayBuffer", "String",
    "SuppressedError", "Symbol", "SyntaxError", "TypeError", "URIError", "Uint16Array", "Uint32Array",
    "Uint8Array", "Uint8ClampedArray", "WeakMap", "WeakRef", "WeakSet", "atob", "btoa", "clearInterval",
    "clearTimeout", "console", "decodeURI", "decodeURIComponent", "encodeURI", "encodeURIComponent", "escape",
    "eval", "globalThis", "isFinite", "isNaN", "parseFloat", "parseInt", "performance", "queueMicrotask",
    "setInterval", "setTimeout", "undefined", "unescape",
}  # fmt: skip


async def test_js_has_no_files_modules_or_host_objects(sandbox: CodeSandbox) -> None:
    code = """
async function main({ params }) {
  const modules: Record<string, string> = {};
  for (const name of params.modules) {
    try { modules[name] = "LOADED " + Object.keys(await import(name)).join(","); }
    catch (error) { modules[name] = String(error); }
  }
  const names = Object.getOwnPropertyNames(globalThis).filter((name) => name !== "__knotflow_main__");
  return { modules, names, types: [typeof Deno, typeof process, typeof require, typeof std, typeof os, typeof Worker] };
}
"""
    out = await js(sandbox, code, {"modules": JS_MODULES})
    assert set(out["modules"]) == set(JS_MODULES), out
    assert all(value.startswith("ReferenceError: could not load module") for value in out["modules"].values()), out
    assert set(out["names"]) == JS_GLOBALS
    assert out["types"] == ["undefined"] * 6


async def test_js_static_import_fails_as_the_code_loads(sandbox: CodeSandbox) -> None:
    code = 'import * as std from "qjs:std";\nfunction main() { return { open: typeof std.open } }'
    error = await failure(sandbox, "typescript", code)
    assert (error.kind, error.message) == ("exception", "ReferenceError: could not load module 'qjs:std'")


async def test_the_servers_environment_is_not_visible(sandbox: CodeSandbox) -> None:
    assert os.environ[SECRET_ENV] == SECRET_VALUE  # the server (this process) has it
    code = """
import glob, os
def main(args):
    seen = []
    for path in glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline"):
        try:
            with open(path, "rb") as handle:
                if args.params["secret"].encode() in handle.read():
                    seen.append(path)
        except OSError:
            pass
    return {"environ": dict(os.environ), "seen": seen, "pids": sorted(glob.glob("/proc/[0-9]*"))}
"""
    out = await python(sandbox, code, {"secret": SECRET_VALUE[::-1][::-1]})
    assert SECRET_ENV not in out["environ"] and out["seen"] == []
    assert set(out["environ"]) <= {"HOME", "PWD", "TMPDIR", "LANG", "TZ", "LC_CTYPE", "OPENBLAS_NUM_THREADS",
                                   "OMP_NUM_THREADS", "MKL_NUM_THREADS"}  # fmt: skip
    assert f"/proc/{os.getpid()}" not in out["pids"] and len(out["pids"]) <= 3  # its own PID namespace
    code = "function main() { return { deno: typeof Deno, process: typeof process, environ: typeof environ } }"
    assert await js(sandbox, code) == {"deno": "undefined", "process": "undefined", "environ": "undefined"}


async def test_python_writes_only_to_its_scratch(sandbox: CodeSandbox, tmp_path: Path) -> None:
    escape = tmp_path / "escaped.txt"
    code = """
def main(args):
    out = {}
    for path in args.params["paths"]:
        try:
            with open(path, "w") as handle:
                handle.write("x")
            out[path] = "WROTE"
        except Exception as error:
            out[path] = type(error).__name__
    return out
"""
    targets = [str(escape), "/usr/evil", "/evil", "/sandbox/evil", "/sandbox/site/numpy/evil.py", "/dev/evil",
               "/dev/shm/evil", "/proc/evil", str(REPO / "evil.txt")]  # fmt: skip
    out = await python(sandbox, code, {"paths": [*targets, "/tmp/scratch.txt", "relative.txt"]})
    assert out.pop("/tmp/scratch.txt") == "WROTE" and out.pop("relative.txt") == "WROTE"  # cwd is the scratch
    assert not [path for path, value in out.items() if value == "WROTE"], out
    assert not escape.exists() and not (REPO / "evil.txt").exists()


async def test_python_runs_unprivileged_and_filtered(sandbox: CodeSandbox) -> None:
    code = """
import ctypes, os
def main(args):
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
    libc = ctypes.CDLL(None, use_errno=True)
    refused = {}
    for name, call in {"unshare": lambda: libc.unshare(0x10000000), "ptrace": lambda: libc.ptrace(16, 1, 0, 0),
                       "mount": lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)}.items():
        refused[name] = (call(), ctypes.get_errno())
    return {"uid": os.getuid(), "cap": status["CapEff"].strip(), "nnp": status["NoNewPrivs"].strip(),
            "seccomp": status["Seccomp"].strip(), "refused": refused}
"""
    out = await python(sandbox, code)
    if os.geteuid() == 0:
        assert out["uid"] != 0  # the server is root; its sandboxes are not
    assert out["cap"] == "0000000000000000" and out["nnp"] == "1" and out["seccomp"] == "2"
    assert out["refused"] == {"unshare": [-1, 1], "ptrace": [-1, 1], "mount": [-1, 1]}  # EPERM from seccomp


async def test_python_cannot_reach_the_templates_pipes(sandbox: CodeSandbox) -> None:
    """The code's process is a fork of the template; it must not open the template's stdin/stdout (the protocol)
    through /proc, nor the file descriptors it inherited."""
    code = """
import glob, os
def main(args):
    opened = []
    for path in glob.glob("/proc/[0-9]*/fd/*"):
        pid = path.split("/")[2]
        if pid == str(os.getpid()):
            continue
        try:
            os.close(os.open(path, os.O_WRONLY))
            opened.append(path)
        except OSError:
            pass
    own = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
    return {"opened": opened, "own": own}
"""
    out = await python(sandbox, code)
    assert out["opened"] == []
    assert out["own"][:3] == [0, 1, 2] and len(out["own"]) <= 5  # /dev/null ×3, its result pipe, listdir's fd
