"""Run published workflows: resolve the version, check the caller may run it, execute, record, report.

The API and the CLI call `RunService`; it is the only place that ties the engine to the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

from knotflow import logs
from knotflow.config import Settings
from knotflow.contract import ChatHistory, ChildPlan, CodeRunner, HttpClient, NodeTypes, RunLimits, RunServices
from knotflow.dsl import jsonutil
from knotflow.engine.checkpoint import Checkpoint, CheckpointError
from knotflow.engine.compiler import Plan, compile_canvas
from knotflow.engine.events import Event, NodeFinished, NodeMessage, RunInterrupted, RunResult
from knotflow.engine.runner import Execution, asking_node
from knotflow.errors import (
    RUN_DATA_LIMIT_SETTING,
    BadRequest,
    InterruptNotSupported,
    KnotflowError,
    NodeError,
    NotFound,
    size_text,
)
from knotflow.files.fetch import UrlFetcher
from knotflow.ids import new_id
from knotflow.models.registry import ReloadableModels
from knotflow.nodes.start import StartNode
from knotflow.service.access import PERMISSION_RUN, check_permission, visible_run, visible_workflow
from knotflow.service.conversations import RunConversation
from knotflow.service.file_parameters import FileParameters
from knotflow.service.leases import RunLeases
from knotflow.service.platform import PlatformServices
from knotflow.service.recorder import RunRecorder
from knotflow.service.run_log import DONE, LogEntry, RunLog, failure_entries, interrupt_entry, message_entry
from knotflow.service.scale import Scale
from knotflow.service.trace_values import readable
from knotflow.store.records import (
    FAIL,
    INTERRUPTED,
    QUEUED,
    RUN_MODE_ASYNC,
    RUN_MODE_SYNC,
    RUNNING,
    SUCCESS,
    InterruptRecord,
    NodeExecution,
    Run,
    Token,
    Workflow,
    WorkflowVersion,
)
from knotflow.store.repository import Store

log = logging.getLogger(__name__)

DEFAULT_CONNECTOR = "1024"
ALLOWED_EXT_KEYS = frozenset({"latitude", "longitude", "user_id"})
MAX_EXT_LENGTH = 255  # user_id is stored as the run's connector_uid
MAX_TITLE_LENGTH = 255  # a node title as the run records keep it (the canvas may hold a longer one)
CLIENT_DISCONNECTED = "client disconnected"
SERVER_STOPPED = "the server stopped"
CANCELLED = "cancelled"  # POST /v1/workflow/cancel


@dataclass(slots=True)
class RunRequest:
    workflow_id: str
    parameters: dict[str, Any] = field(default_factory=dict)
    bot_id: str | None = None
    app_id: str | None = None
    ext: dict[str, str] = field(default_factory=dict)
    workflow_version: str | None = None
    connector_id: str = DEFAULT_CONNECTOR
    chat_history: ChatHistory | None = None  # the conversation's earlier rounds, for a chat's run
    conversation: RunConversation | None = None  # a chat's own conversation, section and round


@dataclass(slots=True)
class Finished:
    result: RunResult


@dataclass(slots=True)
class Failed:
    error: KnotflowError

    def __post_init__(self) -> None:
        # The error's traceback holds the frames of the run that failed; their locals hold the run's data and this
        # very outcome: a reference cycle that only a full garbage collection frees, which big strings never
        # prompt (a failed 19 MB run stayed in memory). Nothing reads the traceback once the run has ended:
        # unexpected errors are logged where they are caught.
        error: BaseException | None = self.error
        seen: set[int] = set()
        while error is not None and id(error) not in seen:
            seen.add(id(error))
            error.__traceback__ = None
            error = error.__cause__ or error.__context__


@dataclass(slots=True)
class Paused:
    """The run waits for the user: resume it with `event_id` ("<execute_id>/<interrupt id>")."""

    interrupt: InterruptRecord

    @property
    def event_id(self) -> str:
        return f"{self.interrupt.execute_id}/{self.interrupt.event_id}"


@dataclass(slots=True)
class ResumeRequest:
    workflow_id: str
    event_id: str
    resume_data: str
    interrupt_type: int
    connector_id: str = DEFAULT_CONNECTOR
    chat_history: ChatHistory | None = None  # as RunRequest.chat_history
    conversation: RunConversation | None = None  # as RunRequest.conversation


@dataclass(slots=True)
class Detached:
    """Queued when the client left and the run goes on without it (KNOTFLOW_ON_DISCONNECT=continue)."""


Terminal = Finished | Failed | Paused
StreamItem = NodeMessage | Terminal


@dataclass(slots=True)
class RunHandle:
    run: Run
    workflow: Workflow
    queue: asyncio.Queue[StreamItem | Detached]
    task: asyncio.Task[Terminal] | None = None
    watched: bool = True  # someone reads `queue`; a run left to finish alone stops filling it
    stop_reason: str = CLIENT_DISCONNECTED  # recorded if the run's task is cancelled
    unread: int = 0  # bytes of messages in `queue` the reader has not taken yet
    room: asyncio.Event = field(default_factory=asyncio.Event)  # set when `unread` drops below the buffer
    token_id: str = ""  # whose run slot it holds (KNOTFLOW_MAX_CONCURRENT_RUNS)
    # The run's event log (run_log.py): this stream's segment ("" for the start, the question's id for a resume),
    # the next event id (the ids its first stream gives, PINGs included) and each node's next `node_seq_id`.
    segment: str = ""
    next_event_id: int = 0
    node_seqs: dict[str, int] = field(default_factory=dict)

    @property
    def execute_id(self) -> str:
        return self.run.execute_id


def check_input_size(size: int, limit: int) -> None:
    """Inputs that alone pass the run's data limit are the caller's mistake: refused before the run starts."""
    if size > limit:
        raise BadRequest(f"the parameters are {size_text(size)}, over the run's data limit of {size_text(limit)} "
                         f"({RUN_DATA_LIMIT_SETTING})")


def parse_parameters(raw: Any) -> dict[str, Any]:
    """`parameters` as an object, or as a JSON string of one (older clients and Coze Studio send that)."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = jsonutil.loads(raw)
        except jsonutil.JSONDecodeError as exc:
            raise BadRequest(f"parameters must be a JSON object or a string holding one ({exc})") from exc
    if not isinstance(raw, dict):
        raise BadRequest("parameters must be a JSON object or a string holding one")
    return raw


def check_ext(ext: Any) -> dict[str, str]:
    if ext is None:
        return {}
    if not isinstance(ext, dict):
        raise BadRequest("ext must be an object of strings")
    unknown = sorted(set(ext) - ALLOWED_EXT_KEYS)
    if unknown:
        raise BadRequest(f"ext accepts only latitude, longitude and user_id; got {', '.join(unknown)}")
    if not all(isinstance(v, str) for v in ext.values()):
        raise BadRequest("ext values must be strings")
    if any(len(v) > MAX_EXT_LENGTH for v in ext.values()):
        raise BadRequest(f"ext values are at most {MAX_EXT_LENGTH} characters")
    return ext


class ChildWorkflows:
    """The published workflows a run's Sub-workflow nodes may run: those of the run's own space."""

    def __init__(self, runs: RunService, space_id: str) -> None:
        self.runs = runs
        self.space_id = space_id

    async def load(self, workflow_id: str, version: str | None) -> ChildPlan:
        workflow = await self.runs.workflow(workflow_id)
        if workflow is None or workflow.space_id != self.space_id:
            raise NodeError(f"sub-workflow {workflow_id} does not exist in this workflow's space")
        wanted = version or workflow.latest_version
        if wanted is None:
            raise NodeError(f"sub-workflow {workflow_id} has not been published")
        try:
            _, plan = await self.runs.published(workflow_id, wanted)
        except NotFound as exc:
            raise NodeError(f"sub-workflow {workflow_id}: {exc.message}") from exc
        return ChildPlan(plan, wanted)


class RunService:
    """Runs published workflows; built by the composition root (`knotflow.service.container`) with what a run
    needs: the store, its recorder, the models, the file services and the node types."""

    def __init__(self, store: Store, settings: Settings, *, recorder: RunRecorder, leases: RunLeases,
                 models: ReloadableModels, files: UrlFetcher, file_parameters: FileParameters,
                 node_types: NodeTypes, http: HttpClient | None = None, code: CodeRunner | None = None,
                 platform: PlatformServices | None = None, scale: Scale | None = None) -> None:
        self.store = store
        self.leases = leases
        self.settings = settings
        self.recorder = recorder
        self.models = models
        self.files = files
        self.http = http
        self.code = code
        self.file_parameters = file_parameters
        self.node_types = node_types
        self.limits = RunLimits(max_loop_iterations=settings.max_loop_iterations,
                                max_workflow_depth=settings.max_workflow_depth)
        self.platform = platform  # conversations and tables for the platform nodes
        # Published versions never change, so (workflow id, version) → version and plan is cached for good;
        # only the workflow row (a light read without the draft canvas) is read per run.
        self._versions: OrderedDict[tuple[str, str], tuple[WorkflowVersion, Plan]] = OrderedDict()
        self._workflows: dict[str, tuple[float, Workflow]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        # Beyond one process (scale.py): the run event log, run slots, the async-run queue; in-process defaults.
        self.scale = scale or Scale.local(settings)
        self.run_log: RunLog = self.scale.run_log
        self._live: dict[str, RunHandle] = {}  # the runs this process runs now, by execute_id
        self._chores: set[asyncio.Task[Any]] = set()

    async def drain(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for the runs left to finish in the background; how many still run."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout)
        return len(self._background)

    async def close(self) -> None:
        """Cancel the runs left to finish in the background; each records itself as failed."""
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    # --- resolution ----------------------------------------------------------------------------------
    async def published(self, workflow_id: str, version: str) -> tuple[WorkflowVersion, Plan]:
        """A published version and its compiled plan: read and compiled once, then served from memory."""
        key = (workflow_id, version)
        cached = self._versions.get(key)
        if cached is not None:
            self._versions.move_to_end(key)
            return cached
        record = await self.store.get_version(workflow_id, version)
        if record is None:
            raise NotFound(f"workflow {workflow_id} has no published version {version}")
        cached = self._versions[key] = (record, compile_canvas(record.canvas, self.node_types))
        if len(self._versions) > 512:
            self._versions.popitem(last=False)
        return cached

    async def workflow(self, workflow_id: str) -> Workflow | None:
        """The workflow row (without its draft canvas), read at most every `workflow_cache_seconds`: on the hot
        path the read cost more than the whole run of a small workflow."""
        now = time.monotonic()
        cached = self._workflows.get(workflow_id)
        if cached is not None and now - cached[0] < self.settings.workflow_cache_seconds:
            return cached[1]
        workflow = await self.store.get_workflow(workflow_id, with_canvas=False)
        if workflow is not None and self.settings.workflow_cache_seconds > 0:
            if len(self._workflows) >= 4096:
                self._workflows.clear()
            self._workflows[workflow_id] = (now, workflow)
        return workflow

    def forget_workflow(self, workflow_id: str) -> None:
        """A new version was published (a signal from any process): read the workflow's row again."""
        self._workflows.pop(workflow_id, None)

    async def resolve(self, request: RunRequest, token: Token) -> tuple[Workflow, WorkflowVersion, Plan]:
        if request.bot_id and request.app_id:
            raise BadRequest("bot_id and app_id cannot be set at the same time")
        check_permission(token, PERMISSION_RUN)
        workflow = visible_workflow(token, await self.workflow(request.workflow_id), request.workflow_id)
        if workflow.app_id and request.app_id != workflow.app_id:
            raise BadRequest(
                f"workflow {workflow.id} belongs to app {workflow.app_id}: pass app_id={workflow.app_id}"
                if not request.app_id
                else f"workflow {workflow.id} does not belong to app {request.app_id}"
            )
        if workflow.requires_bot and not (request.bot_id or request.app_id):
            raise BadRequest(f"workflow {workflow.id} writes bot-scoped data (database or variables): pass bot_id "
                             "or app_id")
        if self.platform is not None:
            await self.platform.check_owner(token, request.bot_id, request.app_id)
        wanted = request.workflow_version or workflow.latest_version
        if wanted is None:
            raise NotFound(f"workflow {workflow.id} has not been published")
        version, plan = await self.published(workflow.id, wanted)
        return workflow, version, plan

    # --- running -------------------------------------------------------------------------------------
    async def begin(self, request: RunRequest, token: Token, run_mode: int, logid: str = "",
                    execute_id: str | None = None) -> RunHandle:
        """Check everything that can be checked before answering, record the run, and start it (an async run
        with Redis: queue it for a worker). `execute_id` is the run's id when the caller chose it (an
        idempotency key's run): its record is then committed before this returns, so that any process finds
        it."""
        workflow, version, plan = await self.resolve(request, token)
        inputs = jsonutil.dumps(request.parameters)
        check_input_size(len(inputs.encode()), self.settings.max_run_bytes)
        entry = plan.entry
        assert isinstance(entry, StartNode)
        parameters = await self.file_parameters.resolve(entry.parameters, entry.prepare(request.parameters), token)
        now = time.time()
        run = Run(
            execute_id=execute_id or new_id(),
            workflow_id=workflow.id,
            version=version.version,
            space_id=workflow.space_id,
            run_mode=run_mode,
            status=RUNNING,
            connector_id=request.connector_id,
            connector_uid=request.ext.get("user_id", ""),
            bot_id=request.bot_id or "",
            app_id=request.app_id or "",
            inputs=inputs,
            logid=logid,
            created_at=now,
            updated_at=now,
            owner=self.leases.owner,
            lease_until=self.leases.until(),
        )
        handle = RunHandle(run, workflow, asyncio.Queue(), token_id=token.id)
        undeclared = entry.undeclared(request.parameters)
        queued = run_mode == RUN_MODE_ASYNC and self.scale.queue is not None
        await self.scale.limits.acquire(token.id, run.execute_id,
                                        hold=self.settings.async_run_timeout if queued else None)
        if queued:
            await self._enqueue(handle, parameters, undeclared)
            return handle
        self.recorder.run_started(run)
        timeout = self.settings.async_run_timeout if run_mode == RUN_MODE_ASYNC else self.settings.sync_run_timeout
        execution = await self._execution(handle, plan, chat_history=request.chat_history,
                                          conversation=request.conversation)
        self._launch(handle, self._drive(handle, execution, execution.run(parameters, undeclared), timeout))
        if run_mode == RUN_MODE_ASYNC or execute_id is not None:
            # The caller may ask for the run at once, on any process: commit the record first.
            await self.recorder.flush()
        if run_mode == RUN_MODE_ASYNC:
            self._keep_in_background(handle)
        return handle

    async def _enqueue(self, handle: RunHandle, parameters: dict[str, Any], undeclared: list[str]) -> None:
        """Record the run as Queued (committed: a worker may take it at once) and send it to the queue."""
        assert self.scale.queue is not None
        run = handle.run
        run.status, run.owner, run.lease_until = QUEUED, None, None
        self.recorder.run_started(run)
        await self.recorder.flush()
        try:
            await self.scale.queue.enqueue(run.execute_id, parameters, undeclared, handle.token_id)
        except Exception as exc:
            log.exception("run %s could not be queued", run.execute_id)
            run.status, run.error_code, run.error_message = FAIL, 5000, f"the run could not be queued: {exc}"
            await self.recorder.run_finished(run)
            await self.scale.limits.release(handle.token_id, run.execute_id)
            raise KnotflowError("the async run could not be queued; try again") from exc

    async def run_queued(self, execute_id: str, parameters: dict[str, Any], undeclared: list[str],
                         token_id: str) -> None:
        """A worker's part of an async run (queue.py): start it unless another delivery of its message already
        did — the Queued → Running compare-and-swap lets one start win — and return when it ended."""
        now = time.time()
        if not await self.store.claim_queued_run(execute_id, self.leases.owner, self.leases.until(), now):
            log.info("run %s was delivered again: already started or ended, nothing to do", execute_id)
            current = await self.store.get_run(execute_id)
            if current is not None and current.status not in (RUNNING, QUEUED):  # cancelled or swept while queued
                await self.scale.limits.release(token_id, execute_id)
            return
        run = await self.store.get_run(execute_id)
        if run is None:
            return
        self.scale.limits.adopt(token_id, execute_id)
        try:
            workflow = await self.workflow(run.workflow_id)
            if workflow is None:
                raise NotFound(f"workflow {run.workflow_id} does not exist any more")
            _, plan = await self.published(run.workflow_id, run.version)
        except KnotflowError as exc:
            run.status, run.error_code, run.error_message = FAIL, exc.code, exc.message
            run.owner = run.lease_until = None
            await self.recorder.run_finished(run)
            await self.scale.limits.release(token_id, execute_id)
            return
        handle = RunHandle(run, workflow, asyncio.Queue(), watched=False, token_id=token_id)
        execution = await self._execution(handle, plan)
        self._launch(handle, self._drive(handle, execution, execution.run(parameters, undeclared),
                                         self.settings.async_run_timeout))
        self._keep_in_background(handle)  # stopping the worker cancels it, recorded as failed
        assert handle.task is not None
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(handle.task)

    def _launch(self, handle: RunHandle, work: Coroutine[Any, Any, Terminal]) -> None:
        """Run `work` as the run's task, known to this process (cancel reaches it) until it ends."""
        handle.task = task = asyncio.create_task(work)
        self._live[handle.execute_id] = handle
        task.add_done_callback(lambda _: self._landed(handle))

    def _landed(self, handle: RunHandle) -> None:
        if self._live.get(handle.execute_id) is handle:
            del self._live[handle.execute_id]
        if handle.token_id and self.scale.limits.counts_runs:
            chore = asyncio.create_task(self.scale.limits.release(handle.token_id, handle.execute_id))
            self._chores.add(chore)
            chore.add_done_callback(self._chores.discard)

    def cancel_here(self, execute_id: str) -> bool:
        """Cancel the run if this process runs it (a cancel signal): it is recorded `Fail` with "cancelled", its
        stream gets `Error` then `Done`, its provider requests are closed."""
        handle = self._live.get(execute_id)
        if handle is None or handle.task is None or handle.task.done():
            return False
        handle.stop_reason = CANCELLED
        handle.task.cancel()
        return True

    def _keep_in_background(self, handle: RunHandle) -> None:
        """Let the run finish with nobody waiting for it; on shutdown it is cancelled and recorded as failed."""
        assert handle.task is not None
        handle.stop_reason = SERVER_STOPPED
        self._background.add(handle.task)
        handle.task.add_done_callback(self._background.discard)

    def keep_running(self, handle: RunHandle) -> None:
        """The client left but the run's reader stays (a chat recording its answers): the run goes on in the
        background, its messages still queued for that reader."""
        if handle.task is not None and not handle.task.done() and handle.task not in self._background:
            self._keep_in_background(handle)

    def abandon(self, handle: RunHandle) -> None:
        """The stream's client left: cancel the run, or with `on_disconnect=continue` let it finish in the
        background, recorded as usual. Only the first call for a run counts."""
        task = handle.task
        if not handle.watched or task is None or task.done():
            return
        handle.watched = False
        if self.settings.on_disconnect == "continue":
            self._keep_in_background(handle)
            while not handle.queue.empty():  # nobody will read what waits there: let it go
                handle.queue.get_nowait()
            handle.unread = 0
            handle.room.set()
            handle.queue.put_nowait(Detached())  # ends the stream at once instead of at the next ping
        else:
            task.cancel()

    async def _wait_for_reader(self, handle: RunHandle) -> None:
        """Back-pressure, asked by the engine before it starts a node: while the stream's client has more than
        `KNOTFLOW_STREAM_BUFFER_BYTES` of messages unread, the run waits for it to read; a client that reads
        nothing for `KNOTFLOW_STREAM_SEND_TIMEOUT` seconds is treated as gone (see `abandon`)."""
        limit = self.settings.stream_buffer_bytes
        if handle.unread <= limit or not handle.watched:
            return
        handle.room.clear()
        try:
            async with asyncio.timeout(self.settings.stream_send_timeout):
                while handle.unread > limit and handle.watched:
                    await handle.room.wait()
                    handle.room.clear()
        except TimeoutError:
            handle.stop_reason = (f"the client read nothing of its stream for {self.settings.stream_send_timeout:g} s "
                                  f"({handle.unread} bytes waiting)")
            self.abandon(handle)

    def _sink(self, handle: RunHandle) -> Any:
        run = handle.run
        queue = handle.queue
        recorder = self.recorder
        shown: dict[str, list[str]] = {}  # an Output node's text so far: it may come in many messages
        run_log, seqs = self.run_log, handle.node_seqs

        def sink(event: Event) -> None:
            if isinstance(event, NodeMessage):
                event_id = handle.next_event_id
                handle.next_event_id = event_id + 1
                seq = seqs.get(event.node_id, 0)
                seqs[event.node_id] = seq + 1
                run_log.append(run.execute_id, handle.segment, [message_entry(event_id, seq, event)])
                if handle.watched:
                    queue.put_nowait(event)
                    handle.unread += len(event.content)
                if event.node_type == "Message":
                    parts = shown.setdefault(event.node_id, [])
                    parts.append(event.content)
                    if event.is_finish:
                        run.extra[history_key(run.extra, event.node_title, event.node_id)] = "".join(parts)
                        del shown[event.node_id]
            elif isinstance(event, NodeFinished):
                recorder.node_finished(
                    NodeExecution(
                        id=new_id(),
                        execute_id=run.execute_id,
                        node_id=event.node_id,
                        node_type=event.node_type,
                        node_title=event.node_title[:MAX_TITLE_LENGTH],
                        status=event.status,
                        inputs=_text(event.inputs),
                        outputs=_text(event.outputs),
                        error=event.error,
                        started_at=event.started_at,
                        finished_at=event.finished_at,
                        warnings=event.warnings or [],
                        parent_node_id=event.parent_node_id or None,
                        iteration=event.iteration,
                        input_tokens=event.usage.input_count if event.usage is not None else None,
                        output_tokens=event.usage.output_count if event.usage is not None else None,
                    )
                )

        return sink

    async def _execution(self, handle: RunHandle, plan: Plan, checkpoint: Checkpoint | None = None,
                         chat_history: ChatHistory | None = None,
                         conversation: RunConversation | None = None) -> Execution:
        services = RunServices(models=self.models.current, files=self.files, http=self.http, code=self.code,
                               chat_history=chat_history, workflows=ChildWorkflows(self, handle.run.space_id),
                               limits=self.limits)
        if self.platform is not None:
            services.conversations, services.database = self.platform.for_run(handle.run, conversation)
            services.variables = await self.platform.variables_for_run(handle.run, conversation)
            services.global_variables = services.variables
        if conversation is not None:
            services.user_message = conversation.user_message
        options: dict[str, Any] = {
            "sink": self._sink(handle),
            "services": services,
            "max_bytes": self.settings.max_run_bytes,
            "backpressure": functools.partial(self._wait_for_reader, handle),
        }
        if checkpoint is not None:
            return Execution.restore(plan, checkpoint, **options)
        return Execution(plan, **options)

    async def _pause(self, handle: RunHandle, paused: RunInterrupted, execution: Execution) -> Terminal:
        """Commit the checkpoint and the run's Interrupted state before anyone is told the run waits."""
        run = handle.run
        if run.run_mode == RUN_MODE_SYNC:
            return Failed(InterruptNotSupported(
                f"node '{paused.node_title}' ({paused.node_id}) asks the user something, which a sync run cannot "
                "do: run the workflow with stream_run and answer with stream_resume"
            ))
        record = InterruptRecord(
            execute_id=run.execute_id,
            event_id=new_id(),
            node_id=paused.node_id,
            node_title=paused.node_title[:MAX_TITLE_LENGTH],
            node_type=paused.node_type,
            kind=paused.request.kind,
            data=paused.request.data,
            checkpoint=paused.checkpoint.dumps(),
            created_at=time.time(),
        )
        # Everything recorded so far first (the run's start among it, as Running): the Interrupted state then
        # reaches the database only in the one transaction that also stores the question and its checkpoint.
        await self.recorder.flush()
        _settle(run, INTERRUPTED, execution)
        await self.store.save_interrupt(run, record)
        return Paused(record)

    async def _drive(
        self, handle: RunHandle, execution: Execution, work: Coroutine[Any, Any, RunResult], timeout: float,
        *, resumed: bool = False,
    ) -> Terminal:
        run = handle.run
        started = time.monotonic()
        logs.bind_task(execute_id=run.execute_id)  # every line this run's task (and its nodes) logs names it
        log.info("run resumed" if resumed else "run started", extra=_run_fields(run))
        outcome: Terminal
        try:
            async with asyncio.timeout(timeout):
                result = await work
            run.output = result_data(result)
            outcome = Finished(result)
        except RunInterrupted as paused:
            try:
                outcome = await self._pause(handle, paused, execution)
            except Exception as exc:
                log.exception("run %s: its checkpoint could not be saved", run.execute_id)
                outcome = Failed(NodeError(f"the run's checkpoint could not be saved: {exc}",
                                           internal_code=720700002))
            if isinstance(outcome, Paused):
                _log_end(run, started)
                self._finish(handle, outcome)
                return outcome
        except asyncio.CancelledError:
            _settle(run, FAIL, execution)
            run.error_code = 5000
            run.error_message = handle.stop_reason
            # Record the cancellation even though this task is being cancelled: shield the commit.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.recorder.run_finished(run))
            _log_end(run, started)
            self._finish(handle, Failed(NodeError(run.error_message, internal_code=720701004)))
            raise
        except TimeoutError:
            outcome = Failed(NodeError(f"the run exceeded its time limit of {timeout:g} s", internal_code=720701003))
        except KnotflowError as exc:
            outcome = Failed(exc)
        except Exception as exc:  # a bug must still end the run with a record and a terminal event
            log.exception("run %s crashed", run.execute_id)
            outcome = Failed(NodeError(f"internal error: {exc}", internal_code=720700001))
        if isinstance(outcome, Failed):
            error = outcome.error
            run.error_code = error.internal_code
            run.error_message = error.message
        _settle(run, FAIL if isinstance(outcome, Failed) else SUCCESS, execution)
        try:
            await self.recorder.run_finished(run)
        except Exception as exc:
            log.error("run %s: its final record could not be written: %s", run.execute_id, exc)
            if isinstance(outcome, Finished):
                outcome = Failed(NodeError("the run's record could not be saved", internal_code=720700002))
        _log_end(run, started)
        self._finish(handle, outcome)
        return outcome

    def _finish(self, handle: RunHandle, outcome: Terminal) -> None:
        """The run's last events: to its log (with the ids its stream gives them), then to its stream."""
        first = handle.next_event_id
        if isinstance(outcome, Failed):
            entries = failure_entries(first, outcome.error.stream_message())
        elif isinstance(outcome, Paused):
            asked = outcome.interrupt
            entries = [interrupt_entry(first, outcome.event_id, asked.kind, asked.data, asked.node_title)]
        else:
            entries = [LogEntry(first, DONE)]
        handle.next_event_id = first + len(entries)
        self.run_log.append(handle.execute_id, handle.segment, entries)
        handle.queue.put_nowait(outcome)

    async def events(self, handle: RunHandle, ping_interval: float) -> AsyncIterator[StreamItem | None]:
        """The run's messages, then its terminal item; `None` after each `ping_interval` of silence.

        If the consumer stops early (client gone), the run is abandoned (see `abandon`); a cancelled run is
        awaited so that its failure is recorded before this returns.
        """
        queue = handle.queue
        try:
            while True:
                if queue.empty():
                    try:
                        item = await asyncio.wait_for(queue.get(), ping_interval)
                    except TimeoutError:
                        if queue.empty():  # else what came meanwhile goes first: the ids stay in order
                            handle.next_event_id += 1  # a PING takes an id in the run's first stream too
                            yield None
                        continue
                else:
                    item = queue.get_nowait()
                if isinstance(item, Detached):
                    return
                if isinstance(item, NodeMessage):
                    handle.unread -= len(item.content)
                    if handle.unread <= self.settings.stream_buffer_bytes:
                        handle.room.set()
                yield item
                if isinstance(item, Finished | Failed | Paused):
                    return
        finally:
            self.abandon(handle)
            task = handle.task
            if task is not None and not task.done() and task not in self._background:
                with contextlib.suppress(BaseException):
                    await task

    async def resume(self, request: ResumeRequest, token: Token, logid: str = "") -> RunHandle:
        """Check the event may be resumed with this answer, claim it (one resume wins), and go on."""
        try:
            return await self._resume(request, token, logid)
        except KnotflowError as refused:
            log.warning("resume refused", extra={
                "event_id": request.event_id, "workflow_id": request.workflow_id, "code": refused.code,
                "error": refused.message, "logid": logid})
            raise

    async def _resume(self, request: ResumeRequest, token: Token, logid: str) -> RunHandle:
        execute_id, _, event = request.event_id.partition("/")
        if not (execute_id.isdigit() and event.isdigit()):
            raise BadRequest(f"event_id {request.event_id!r} is not of the form <execute_id>/<event id>")
        check_permission(token, PERMISSION_RUN)
        run = visible_run(token, await self.store.get_run(execute_id),
                          f"event {request.event_id} of workflow {request.workflow_id}",
                          workflow_id=request.workflow_id, connector_id=request.connector_id)
        interrupt = await self.store.get_interrupt(execute_id, event)
        if interrupt is None:
            raise NotFound(f"event {request.event_id} does not exist for workflow {request.workflow_id}")
        if interrupt.resumed_at is not None or run.status != INTERRUPTED:
            raise BadRequest(f"event {request.event_id} was already resumed (the run is {run.status})")
        if request.interrupt_type != interrupt.kind:
            raise BadRequest(f"event {request.event_id} has interrupt_type {interrupt.kind}, "
                             f"not {request.interrupt_type}")
        _, plan = await self.published(run.workflow_id, run.version)
        checkpoint = Checkpoint.loads(interrupt.checkpoint)  # before the claim: a bad one leaves the run waiting
        if not checkpoint.fits(len(plan.nodes)):
            raise CheckpointError(f"the checkpoint of event {request.event_id} does not belong to version "
                                  f"{run.version}")
        services = RunServices(workflows=ChildWorkflows(self, run.space_id))
        asker = await asking_node(plan, checkpoint, interrupt.node_id, services)
        if asker is None:
            raise NotFound(f"node {interrupt.node_id} is not in version {run.version}")
        asker.check_resume(request.resume_data)
        run.owner, run.lease_until = self.leases.owner, self.leases.until()
        await self.scale.limits.acquire(token.id, execute_id)
        if not await self.store.claim_interrupt(execute_id, event, run.owner, run.lease_until):
            await self.scale.limits.release(token.id, execute_id)
            raise BadRequest(f"event {request.event_id} was already resumed")
        workflow = await self.store.get_workflow(run.workflow_id, with_canvas=False)
        assert workflow is not None
        run.status = RUNNING
        run.logid = logid or run.logid
        run.updated_at = time.time()
        handle = RunHandle(run, workflow, asyncio.Queue(), token_id=token.id, segment=event)
        execution = await self._execution(handle, plan, checkpoint, request.chat_history, request.conversation)
        timeout = self.settings.async_run_timeout if run.run_mode == RUN_MODE_ASYNC else self.settings.sync_run_timeout
        self._launch(handle, self._drive(handle, execution, execution.resume(request.resume_data), timeout,
                                         resumed=True))
        return handle

    async def wait(self, handle: RunHandle) -> Terminal:
        assert handle.task is not None
        try:
            return await asyncio.shield(handle.task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if handle.task.cancelled() and (current is None or not current.cancelling()):
                # The run was cancelled (POST /v1/workflow/cancel), not this caller: it recorded its failure.
                return Failed(NodeError(handle.stop_reason, internal_code=720701004))
            handle.task.cancel()
            raise


def _run_fields(run: Run) -> dict[str, Any]:
    return {"execute_id": run.execute_id, "workflow_id": run.workflow_id, "version": run.version,
            "run_mode": run.run_mode, "connector_id": run.connector_id, "logid": run.logid}


def _log_end(run: Run, started: float) -> None:
    """One line when a run stops: finished, failed, cancelled or paused at a question."""
    fields = {**_run_fields(run), "status": run.status, "duration_ms": round((time.monotonic() - started) * 1000, 1)}
    if run.status == FAIL:
        fields.update(error_code=run.error_code, error=run.error_message)
    log.log(logging.WARNING if run.status == FAIL else logging.INFO, "run ended", extra=fields)


# The keys a run history's `output` holds besides the Output nodes' texts (Coze's documented shape).
HISTORY_RESERVED_KEYS = frozenset({"Output", "node_status"})


def history_key(texts: dict[str, Any], title: str, node_id: str) -> str:
    """Where a run history keeps an Output node's text: under its title, as Coze does, unless the title is taken
    by the End node's result ("Output"), by "node_status" or by another Output node: then "<title> (<node id>)"."""
    key = title or node_id
    if key in HISTORY_RESERVED_KEYS or key in texts:
        return f"{key} ({node_id})"
    return key


def _settle(run: Run, status: str, execution: Execution) -> None:
    """The run's state as it stops running (finished, failed, or waiting for an answer): no lease to hold."""
    run.status = status
    run.input_tokens, run.output_tokens = execution.usage.input_count, execution.usage.output_count
    run.updated_at = time.time()
    run.owner = run.lease_until = None


def result_data(result: RunResult) -> str:
    """What `/v1/workflow/run` returns in `data`: the output object, or in answer mode Coze's answer wrapper."""
    if result.answer is not None:
        return jsonutil.dumps({"content_type": 1, "data": result.answer, "type_for_model": 2})
    return jsonutil.dumps(result.output)


def _text(value: Any) -> str:
    return readable(value if isinstance(value, bytes) else jsonutil.dumps(value))
