"""One running sandbox as the server sees it: a bubblewrap process spoken to in JSON lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from dataclasses import dataclass
from typing import Any, Literal

from knotflow.outbound.proxy import ForwardProxy
from knotflow.sandbox.egress import EgressSocket
from knotflow.sandbox.errors import CodeFailed
from knotflow.sandbox.jail import Jail

Runtime = Literal["python", "js"]
STDERR_TAIL = 4096


@dataclass(frozen=True)
class Call:
    id: str
    timeout: float
    body: bytes  # JSON {"code", "params"}


class SandboxProcess:
    """A template (Python or JavaScript): serves calls one after another, each in a fork of its own."""

    def __init__(self, runtime: Runtime, jail: Jail, proxy: ForwardProxy | None = None) -> None:
        self.runtime = runtime
        self.jail = jail
        self.options = jail.options
        # Egress is for Python code only: QuickJS has no network API.
        self._proxy = proxy if runtime == "python" else None
        self._egress: EgressSocket | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._stderr = b""
        self._stderr_task: asyncio.Task[None] | None = None
        self._info_fd: int | None = None  # bubblewrap's --info-fd, until it has told the init's PID
        self._info = b""
        self._init_pidfd: int | None = None
        # A reply holds the output plus the printed text JSON-escaped (up to 12 bytes a character).
        self.limit = self.options.max_output_bytes + 12 * self.options.max_stdout_chars + (64 << 10)

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def stderr_tail(self) -> str:
        return self._stderr.decode(errors="replace").strip()

    async def start(self) -> None:
        seccomp_fd = self.jail.seccomp_descriptor()
        info_read, info_write = os.pipe()
        os.set_blocking(info_read, False)
        self._info_fd = info_read
        try:
            if self._proxy is not None:
                self._egress = await EgressSocket.open(self._proxy)
            egress_directory = self._egress.directory if self._egress is not None else None
            command = self.jail.command(self.runtime, seccomp_fd, info_write, egress_directory)
            spawn = asyncio.ensure_future(
                asyncio.create_subprocess_exec(
                    *command,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    pass_fds=(seccomp_fd, info_write),
                    env={},  # nothing of the server's environment, not even to bubblewrap itself
                    start_new_session=True,  # a terminal's Ctrl-C reaches the server, not its sandboxes
                    limit=self.limit,
                )
            )
            try:
                self._process = await asyncio.shield(spawn)
            except asyncio.CancelledError:
                # Cancelled inside create_subprocess_exec, asyncio can lose track of the child; let the spawn
                # finish (milliseconds), then end the sandbox properly.
                with contextlib.suppress(OSError):
                    self._process = await spawn
                    await self.kill()
                raise
        except OSError as error:
            await self._close_egress()
            raise CodeFailed("sandbox", f"the {self.runtime} sandbox could not be started: {error}") from None
        finally:
            os.close(seccomp_fd)
            os.close(info_write)
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        try:
            ready = await asyncio.wait_for(self._read_message(None), self.options.start_timeout)
        except (CodeFailed, TimeoutError) as error:
            await self.kill()
            reason = "did not start in time" if isinstance(error, TimeoutError) else "did not start"
            raise CodeFailed("sandbox", f"the {self.runtime} sandbox {reason}: {self.stderr_tail}") from None
        except BaseException:  # cancelled (the pool is closing): leave no sandbox behind
            await self.kill()
            raise
        if ready.get("ready") is not True:
            await self.kill()
            raise CodeFailed("sandbox", f"the {self.runtime} sandbox said {ready!r} instead of being ready")
        await self._sandbox_init(0)  # written before the program inside started, so there by now

    async def call(self, call: Call, deadline: float) -> dict[str, Any]:
        """Send one call and return its reply; `deadline` seconds at most, then the sandbox is killed."""
        process = self._process
        if process is None or process.stdin is None or not self.alive:
            raise CodeFailed("sandbox", "the sandbox is not running")
        # The template reads the header; only the call's child reads the body.
        header = {"id": call.id, "timeout": call.timeout, "size": len(call.body)}
        try:
            process.stdin.write(json.dumps(header).encode() + b"\n" + call.body)
            await process.stdin.drain()
        except (OSError, RuntimeError) as error:
            await self.kill()
            raise CodeFailed("sandbox", f"the sandbox stopped taking requests: {error}") from None
        try:
            return await asyncio.wait_for(self._read_message(call.id), deadline)
        except TimeoutError:
            await self.kill()
            raise CodeFailed("timeout", f"Execution timed out after {call.timeout:g} seconds") from None
        except CodeFailed:
            await self.kill()
            raise

    async def _read_message(self, request_id: str | None) -> dict[str, Any]:
        """The next message: the ready notice (request_id None) or the reply to `request_id`."""
        assert self._process is not None and self._process.stdout is not None
        stdout = self._process.stdout
        while True:
            try:
                line = await stdout.readline()
            except ValueError:  # longer than the reader's limit: the template never writes such a line
                raise CodeFailed("sandbox", "the sandbox broke its protocol (an overlong line)") from None
            if not line:
                raise await self._died()
            try:
                message = json.loads(line)
            except ValueError:
                message = None
            if isinstance(message, dict) and (request_id is None or message.get("id") == request_id):
                if "size" in message:
                    return await self._read_outcome(stdout, message)
                return message
            # The template is alone on its stdout (the code's child has /dev/null there), so anything else there is
            # a broken sandbox.
            if line.strip():
                raise CodeFailed("sandbox", f"the {self.runtime} sandbox broke its protocol: {line[:200]!r}")

    async def _read_outcome(self, stdout: asyncio.StreamReader, header: dict[str, Any]) -> dict[str, Any]:
        """The outcome the call's child wrote, which follows the template's header line."""
        size = header["size"]
        if not isinstance(size, int) or not 0 < size <= self.limit:
            raise CodeFailed("sandbox", f"the {self.runtime} sandbox announced an outcome of {size!r} bytes")
        try:
            outcome = json.loads(await stdout.readexactly(size))
        except asyncio.IncompleteReadError:
            raise await self._died() from None
        except ValueError:
            outcome = None
        if not isinstance(outcome, dict) or not isinstance(outcome.get("ok"), bool):
            # Only the code can have spoiled it (say, by writing to its result pipe itself); the call fails.
            return {"id": header["id"], "ok": False, "kind": "invalid_output", "message": "the outcome is unreadable"}
        outcome["id"] = header["id"]
        return outcome

    async def _died(self) -> CodeFailed:
        """Why the sandbox ended before answering, read from its exit status and what it printed last."""
        assert self._process is not None
        if self._process.stdin is not None:
            self._process.stdin.close()  # asyncio's wait() returns only once every pipe is closed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._process.wait(), 5)
        if self._stderr_task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._stderr_task), 1)
        status = self._process.returncode
        tail = self.stderr_tail
        return CodeFailed("sandbox", f"the {self.runtime} sandbox ended (status {status}): {tail[-1000:]}")

    async def _drain_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        while chunk := await self._process.stderr.read(1 << 16):
            self._stderr = (self._stderr + chunk)[-STDERR_TAIL:]

    async def _sandbox_init(self, patience: float) -> int | None:
        """A pidfd of the sandbox's PID-namespace init, read from bubblewrap's --info-fd (waiting up to `patience`
        seconds for it). A pidfd, not a PID: signalling it can never hit an unrelated process that reused the PID."""
        deadline = asyncio.get_running_loop().time() + patience
        while self._init_pidfd is None and self._info_fd is not None:
            try:
                chunk = os.read(self._info_fd, 4096)
            except BlockingIOError:
                chunk = None
            if chunk:
                self._info += chunk
                with contextlib.suppress(ValueError):
                    pid = int(json.loads(self._info)["child-pid"])
                    with contextlib.suppress(OSError):  # already gone: nothing left to kill
                        self._init_pidfd = os.pidfd_open(pid)
                    self._close_info()
                    break
            elif chunk == b"" or asyncio.get_running_loop().time() >= deadline:
                break  # bubblewrap ended before saying, or is not saying yet
            else:
                await asyncio.sleep(0.005)
        return self._init_pidfd

    def _close_info(self) -> None:
        if self._info_fd is not None:
            os.close(self._info_fd)
            self._info_fd = None

    async def kill(self) -> None:
        """End the sandbox and everything in it, and release its pipes."""
        process = self._process
        # The namespace's init first: bubblewrap's own --die-with-parent leaves the inside running when bubblewrap
        # is killed early in its set-up, and asyncio's wait() returns only once every pipe is closed.
        pidfd = await self._sandbox_init(2.0)
        if pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.close(pidfd)
            self._init_pidfd = None
        self._close_info()
        if process is None:
            await self._close_egress()
            return
        if pidfd is None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        # asyncio closes a subprocess's transport once every pipe is closed or read to its end; left open, it
        # complains when garbage-collected after the loop is gone. (A reply still being awaited reads the end.)
        if process.stdin is not None:
            process.stdin.close()
        if process.stdout is not None:
            with contextlib.suppress(TimeoutError, RuntimeError, ValueError):
                await asyncio.wait_for(process.stdout.read(), 5)
        if self._stderr_task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._stderr_task, 5)  # reaches the end of stderr once the sandbox is gone
        # bubblewrap reaps the init and exits by itself (killing it first would leave the init a zombie for the
        # host's init to reap); only if it does not is it killed too.
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), 2)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 10)
        await self._close_egress()

    async def _close_egress(self) -> None:
        if self._egress is not None:
            egress, self._egress = self._egress, None
            await egress.close()
