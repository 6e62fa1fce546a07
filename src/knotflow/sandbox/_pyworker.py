"""The template process of a sandbox, for Python or JavaScript calls. It runs INSIDE the sandbox, never in the server.

Started by bubblewrap as `python -I -S -B /sandbox/pyworker.py CONFIG_JSON` with the standard library and the offered
packages only (knotflow itself is not mounted, so this file imports nothing from it). A Python template imports the
offered packages once; a JavaScript template imports jsworker.py (QuickJS, with the TypeScript transpiler loaded)
instead. Then it serves one call at a time (protocol in `serve`).

The template itself never runs user code: for every call it forks a child that starts from the template's pristine
state (fresh globals, fresh modules), lowers its own limits, installs a seccomp filter that forbids creating
processes or threads and exec'ing programs, runs the code and writes its outcome to a pipe only the template reads.
The child cannot reach the template's stdin/stdout (replaced before the user's code runs; the template is not
dumpable, so /proc/PID/fd is closed to it), so it can neither read another call's request nor forge an answer. And
since the child is a copy of the template's memory, the template never holds a call's request or outcome in its
own memory: both pass through memfds with splice/sendfile (a test scans a later child's whole memory for them).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import ctypes
import importlib
import inspect
import io
import json
import math
import os
import resource
import select
import signal
import stat
import sys
import time
import traceback
from typing import Any

PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
CODE_FILENAME = "<code>"
RELAY_CHUNK = 1 << 16  # at most what a pipe holds by default, so that filling the relay never blocks
JS_DIRECTORY = "/sandbox/js"
JS_HEADROOM = 64 << 20  # address space a JavaScript child may add beyond QuickJS's own limit (the interpreter's)
# Taken before any user code runs: code that replaces json.dumps (it shares the modules) spoils its own output.
dumps = json.dumps


class Args:
    """What Coze passes to `main`: the node's inputs as a dict in `args.params`."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params


class Output(dict[str, Any]):
    """Coze's `Output` type, so that `ret: Output = {...}` and `-> Output` evaluate."""


class CappedText(io.TextIOBase):
    """sys.stdout/sys.stderr of the code: keeps the first `limit` characters and drops the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.truncated = False

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = self.limit - self.size
        if len(text) > room:
            self.truncated = True
        if room > 0:
            kept = text[:room]
            self.parts.append(kept)
            self.size += len(kept)
        return len(text)

    def text(self) -> str:
        return "".join(self.parts) + ("\n[output truncated]" if self.truncated else "")


def libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def set_dumpable(flag: bool) -> None:
    # A non-dumpable process's /proc/PID/{fd,mem,environ} belong to root, so a forked child (same uid) cannot
    # open the template's protocol pipes through /proc/PID/fd.
    if libc().prctl(PR_SET_DUMPABLE, int(flag), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_seccomp(bpf: bytes) -> None:
    # The server compiled the filter with libseccomp (which cannot be located from inside the sandbox); loading a
    # ready BPF program only needs prctl. bubblewrap already set no_new_privs, which an unprivileged filter needs.
    buffer = ctypes.create_string_buffer(bpf, len(bpf))
    program = SockFprog(len(bpf) // 8, ctypes.addressof(buffer))
    if libc().prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


def vm_size() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmSize not found in /proc/self/status")


def jsonable(value: Any) -> Any:
    # numpy scalars and arrays are what Python code most often returns by accident; they convert losslessly.
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def user_traceback(error: BaseException) -> tuple[str, int | None]:
    """The traceback limited to the frames of the user's code, and the line the error was raised at."""
    if isinstance(error, SyntaxError) and error.filename == CODE_FILENAME:
        return "".join(traceback.format_exception_only(type(error), error)), error.lineno
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == CODE_FILENAME]
    line = frames[-1].lineno if frames else None
    text = "Traceback (most recent call last):\n" if frames else ""
    text += "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(type(error), error))
    return text, line


def failure(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "kind": kind, "message": message, **extra}


async def awaited(value: Any) -> Any:
    return await value


def run_user_code(code: str, params: dict[str, Any], max_output: int) -> tuple[dict[str, Any], str | None]:
    """The outcome document, and the JSON text of the output when the code succeeded."""
    import linecache

    # The names Coze's wrapper has in scope around the user's code: Args, Output, and the modules it imported.
    scope: dict[str, Any] = {
        "__name__": "__main__",
        "__builtins__": builtins,
        "Args": Args,
        "Output": Output,
        "asyncio": asyncio,
        "json": json,
        "sys": sys,
    }
    linecache.cache[CODE_FILENAME] = (len(code), None, code.splitlines(keepends=True), CODE_FILENAME)
    try:
        exec(compile(code, CODE_FILENAME, "exec"), scope)
        if "main" not in scope:
            raise NameError("name 'main' is not defined")
        main = scope["main"]
        if not callable(main):
            raise TypeError(f"'{type(main).__name__}' object is not callable")
        result = main(Args(params))
        if inspect.isawaitable(result):
            result = asyncio.run(awaited(result))
    except MemoryError as error:
        return failure("memory", f"{type(error).__name__}: {error}".rstrip(": ")), None
    except BaseException as error:  # SystemExit and KeyboardInterrupt included: they are the code's own doing
        text, line = user_traceback(error)
        return failure("exception", f"{type(error).__name__}: {error}", traceback=text, line=line), None
    if not isinstance(result, dict):
        message = f"main must return a dict (a JSON object), not {type(result).__name__}"
        return failure("invalid_output", message), None
    try:
        data = dumps(result, ensure_ascii=True, allow_nan=False, default=jsonable)
    except MemoryError:
        return failure("memory", "MemoryError while serializing the output"), None
    except (TypeError, ValueError, RecursionError) as error:
        return failure("invalid_output", f"the output is not JSON: {error}"), None
    if len(data) > max_output:
        return failure("output_too_large", f"the output is {len(data)} bytes, over the limit of {max_output}"), None
    return {"ok": True}, data


def read_request(inbox: int, size: int) -> dict[str, Any]:
    chunks = []
    offset = 0
    while offset < size:
        chunk = os.pread(inbox, size - offset, offset)
        if not chunk:
            raise EOFError("the request is shorter than announced")
        chunks.append(chunk)
        offset += len(chunk)
    request: dict[str, Any] = json.loads(b"".join(chunks))
    return request


def child(inbox: int, size: int, result_fd: int, timeout: float, config: dict[str, Any], bpf: bytes,
          engine: Any) -> None:
    """The forked child: read the request, confine itself, run the code (Python, or JavaScript in `engine`), write
    the outcome to `result_fd`.

    Never returns."""
    try:
        request = read_request(inbox, size)
        devnull = os.open("/dev/null", os.O_RDWR)
        for standard in (0, 1, 2):
            os.dup2(devnull, standard)
        for name in os.listdir("/proc/self/fd"):
            if int(name) > 2 and int(name) != result_fd:
                with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
                    os.close(int(name))
        cpu = math.ceil(timeout) + 1
        # JavaScript: QuickJS counts the code's memory itself (its limit is memory_bytes); the rlimit leaves it room.
        address_space = vm_size() + config["memory_bytes"] + (JS_HEADROOM if engine is not None else 0)
        limits = {
            resource.RLIMIT_CPU: (cpu, cpu + 1),
            resource.RLIMIT_AS: (address_space, address_space),
            resource.RLIMIT_FSIZE: (config["scratch_bytes"], config["scratch_bytes"]),
            resource.RLIMIT_NOFILE: (256, 256),
            resource.RLIMIT_CORE: (0, 0),
        }
        if engine is not None:
            limits[resource.RLIMIT_STACK] = (engine.stack_rlimit, resource.getrlimit(resource.RLIMIT_STACK)[1])
        for limit, value in limits.items():
            resource.setrlimit(limit, value)
        os.chdir(config["scratch"])
        # A fork copies the template's random generators: every call would draw the same numbers. CPython reseeds
        # `random` after a fork by itself; numpy's global generator, if the template created it, is reseeded here.
        numpy_random = sys.modules.get("numpy.random")
        if numpy_random is not None:
            numpy_random.seed()
        install_seccomp(bpf)
    except BaseException as error:
        os.write(result_fd, dumps(failure("sandbox", f"could not confine the child: {error!r}")).encode())
        os._exit(1)
    if engine is None:
        capture = CappedText(config["max_stdout"])
        sys.stdout = sys.stderr = capture
        outcome, data = run_user_code(request["code"], request["params"], config["max_output"])
        stdout = capture.text()
    else:
        try:
            outcome, data, stdout = engine.run(request["code"], request["params"], config, timeout)
            outcome, data = checked_output(outcome, data, config["max_output"])
        except BaseException as error:  # the engine's own failure: the child must end here, never serve on
            outcome, data, stdout = failure("sandbox", f"the JavaScript engine failed: {error!r}"), None, ""
    try:
        outcome["stdout"] = stdout
        text = dumps(outcome, ensure_ascii=True)
        if data is not None:
            text = text[:-1] + ', "output": ' + data + "}"
        payload = text.encode()
        view = memoryview(payload)
        while view:
            view = view[os.write(result_fd, view) :]
    except BaseException:
        os._exit(3)
    os._exit(0)


def checked_output(outcome: dict[str, Any], data: str | None, max_output: int) -> tuple[dict[str, Any], str | None]:
    """A JavaScript call's output against the limit, in UTF-8 bytes (JSON.stringify keeps non-ASCII text as is)."""
    if data is None:
        return outcome, None
    try:
        size = len(data.encode())
    except UnicodeEncodeError:  # a lone surrogate that JSON.stringify let through
        return failure("invalid_output", "the output is not valid UTF-8 text"), None
    if size > max_output:
        return failure("output_too_large", f"the output is {size} bytes, over the limit of {max_output}"), None
    return {"ok": True}, data


def collect(pid: int, result_fd: int, outbox: int, timeout: float, limit: int, relay: Relay | None = None
            ) -> tuple[dict[str, Any] | None, int]:
    """Move the child's outcome into `outbox` within `timeout`; kill the child on time-out or when it writes too
    much; restart the egress relay if it ends meanwhile. Returns (the template's own verdict, None if the child
    answered; the size of the answer)."""
    deadline = time.monotonic() + timeout
    size = 0
    verdict: dict[str, Any] | None = None
    poller = select.poll()
    poller.register(result_fd, select.POLLIN | select.POLLHUP)
    if relay is not None:
        poller.register(relay.pidfd, select.POLLIN)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            verdict = failure("timeout", f"Execution timed out after {timeout:g} seconds")
            break
        ready = {fd for fd, _ in poller.poll(left * 1000)}
        if relay is not None and relay.pidfd in ready:
            poller.unregister(relay.pidfd)
            relay.keep_running()
            poller.register(relay.pidfd, select.POLLIN)
        if result_fd not in ready:
            continue
        try:
            moved = os.splice(result_fd, outbox, 1 << 20, flags=os.SPLICE_F_NONBLOCK)
        except BlockingIOError:
            continue
        if moved == 0:
            break
        size += moved
        if size > limit:
            verdict = failure("output_too_large", f"the output is over the limit of {limit} bytes")
            break
    if verdict is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    os.close(result_fd)
    _, status, usage = os.wait4(pid, 0)
    if verdict is not None:
        return verdict, 0
    if size:
        return None, size
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        cpu_limit = math.ceil(timeout) + 1
        if number in (signal.SIGXCPU, signal.SIGKILL) and usage.ru_utime + usage.ru_stime >= cpu_limit - 0.5:
            return failure("timeout", f"Execution exceeded its CPU time limit ({cpu_limit} seconds)"), 0
        return failure("exception", f"the code's process died of signal {signal.Signals(number).name}"), 0
    code = os.waitstatus_to_exitcode(status)
    return failure("exception", f"the code's process exited with status {code} without returning from main"), 0


def wipe(directory: str) -> None:
    """Empty the scratch directory between calls, including what the child made unreadable or unwritable."""
    import shutil

    with contextlib.suppress(OSError):
        os.chmod(directory, 0o1777)  # possible only when the sandbox owns it (no root involved)
    pending = [directory]
    while pending:  # a loop, not recursion: the child may have nested directories thousands deep
        with contextlib.suppress(OSError):
            for entry in os.scandir(pending.pop()):
                if entry.is_dir(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        os.chmod(entry.path, stat.S_IRWXU)
                        pending.append(entry.path)
    for entry in os.scandir(directory):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def read_line(fd: int) -> bytes:
    """One header line, read a byte at a time: what follows it is the request, which this process must not read."""
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            return b""
        line += byte
    return bytes(line)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Relay:
    """Egress (a Python sandbox with KNOTFLOW_CODE_EGRESS on): a process of its own, forked from the template before
    it serves, that listens on 127.0.0.1:PORT of the sandbox's own loopback (HTTP_PROXY names it) and carries each
    connection, byte for byte, to the server's proxy on the Unix socket mounted into the sandbox. The proxy checks
    every destination; the relay only moves bytes. It holds nothing of any call: it exists before the first one.
    A call's code can connect to it or to the socket itself (the same proxy either way) and, running as the same
    uid, can kill it: the template watches it (a pidfd, polled with the call's outcome) and starts another at once.
    The listening socket is the template's, shared with each relay it starts, so a connection made meanwhile waits
    in its backlog rather than being refused. (A call's child closes the template's descriptors before the code
    runs.)"""

    def __init__(self, port: int, path: str) -> None:
        import socket

        self.path = path
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", port))  # before the relay starts: the port is open once the template is ready
        self.listener.listen(64)
        self.pid = 0
        self.pidfd = -1
        self.start()

    def start(self) -> None:
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                devnull = os.open("/dev/null", os.O_RDWR)
                for standard in (0, 1):  # the template's protocol pipes are not the relay's
                    os.dup2(devnull, standard)
                # Nor its other descriptors (a relay started during a call would inherit the call's memfds).
                os.closerange(3, self.listener.fileno())
                os.closerange(self.listener.fileno() + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
                asyncio.run(relay_connections(self.listener, self.path))
            except BaseException:
                traceback.print_exc()
                status = 1
            os._exit(status)
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)  # readable once the relay has ended

    def keep_running(self) -> None:
        """Start another relay if this one has ended."""
        if os.waitpid(self.pid, os.WNOHANG)[0]:
            os.close(self.pidfd)
            self.start()


async def relay_connections(listener: Any, path: str) -> None:
    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_unix_connection(path)
        except OSError:
            writer.close()
            return
        writers = (writer, upstream_writer)
        await asyncio.gather(pump(reader, upstream_writer, writers), pump(upstream_reader, writer, writers))
        for each in writers:
            each.close()

    server = await asyncio.start_server(relay, sock=listener)
    await server.serve_forever()


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, both: tuple[Any, ...]) -> None:
    """One direction; its end half-closes the other side, a failure closes both (ending the other direction)."""
    try:
        while data := await reader.read(RELAY_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        for each in both:
            each.close()


def serve(config: dict[str, Any], engine: Any, relay: Relay | None = None) -> None:
    """Answer requests until stdin ends.

    The server sends a header line {"id", "timeout", "size"} and then `size` bytes, the body ({"code", "params"}).
    The template answers a header line {"id", "size"} followed by `size` bytes, the child's outcome, or a header
    line {"id", "ok": false, "kind", "message"} of its own. Request and outcome pass from pipe to memfd to pipe with
    splice/sendfile, never through this process's memory: a later call's child, a copy of this process, must find
    no trace of an earlier call in its memory.
    """
    import base64

    bpf = base64.b64decode(config["child_seccomp"])
    # The outcome holds the output and the captured text, escaped (up to 12 bytes a character).
    limit = config["max_output"] + 12 * config["max_stdout"] + 65536
    # A tmpfs directory's size grows with its entries: a cheap test for "the call left files behind".
    empty_scratch = os.stat(config["scratch"]).st_size
    inbox = os.memfd_create("request")
    outbox = os.memfd_create("outcome")
    # splice needs a pipe on one side, and stdin may be a socket (uvloop, the server's event loop, gives its
    # children socket pairs): the request goes stdin -> relay pipe -> inbox.
    relay_out, relay_in = os.pipe()
    write_all(1, b'{"ready": true}\n')
    while header_line := read_line(0):
        header: dict[str, Any] = {}
        verdict: dict[str, Any] | None
        size = 0
        try:
            header = json.loads(header_line)
            timeout = float(header["timeout"])
            for box in (inbox, outbox):
                os.ftruncate(box, 0)
                os.lseek(box, 0, os.SEEK_SET)
            left = int(header["size"])
            while left:  # the request goes stdin -> relay -> inbox inside the kernel
                moved = os.splice(0, relay_in, min(left, RELAY_CHUNK))
                if not moved:
                    return
                left -= moved
                while moved:
                    moved -= os.splice(relay_out, inbox, moved)
            if relay is not None:
                relay.keep_running()
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_end)
                child(inbox, int(header["size"]), write_end, timeout, config, bpf, engine)
            os.close(write_end)
            verdict, size = collect(pid, read_end, outbox, timeout, limit, relay)
        except Exception as error:  # a broken request or a failed fork must not end the template
            verdict, size = failure("sandbox", f"the template could not run the call: {error!r}"), 0
        if os.stat(config["scratch"]).st_size != empty_scratch:
            # In a forked janitor: the names the code gave its files must not enter the template's memory either.
            janitor = os.fork()
            if janitor == 0:
                wipe(config["scratch"])
                os._exit(0)
            os.waitpid(janitor, 0)
        reply = {"id": header.get("id"), **(verdict or {"size": size})}
        write_all(1, json.dumps(reply, ensure_ascii=True).encode() + b"\n")
        sent = 0
        while sent < size:  # the outcome goes outbox -> stdout inside the kernel
            sent += os.sendfile(1, outbox, sent, size - sent)


def main() -> None:
    config = json.loads(sys.argv[1])
    sys.path[:0] = config["site"]
    set_dumpable(False)
    resource.setrlimit(resource.RLIMIT_NPROC, (config["max_tasks"], config["max_tasks"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for name in config["preload"]:
        importlib.import_module(name)  # once here, so that no call pays for the import
    engine = None
    if config["runtime"] == "js":
        sys.path.insert(0, JS_DIRECTORY)
        engine = importlib.import_module("jsworker").Engine()
    egress = config.get("egress")
    relay = Relay(egress["port"], egress["socket"]) if egress else None
    serve(config, engine, relay)


if __name__ == "__main__":
    main()
