"""Run published workflows: resolve the version, check the caller may run it, execute, record, report.

The API and the CLI call `RunService`; it is the only place that ties the engine to the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from knotflow import jsonutil
from knotflow.config import Settings
from knotflow.engine.compiler import Plan, compile_canvas
from knotflow.engine.events import Event, NodeFinished, NodeMessage, RunResult
from knotflow.engine.runner import Execution, RunServices
from knotflow.errors import BadRequest, KnotflowError, NodeError, NotFound, PermissionDenied
from knotflow.ids import new_id
from knotflow.models.registry import ModelRegistry, load_registry
from knotflow.nodes.start import StartNode
from knotflow.service.recorder import RunRecorder
from knotflow.store.records import (
    FAIL,
    PERMISSION_RUN,
    RUN_MODE_ASYNC,
    RUNNING,
    SUCCESS,
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
CLIENT_DISCONNECTED = "client disconnected"


@dataclass(slots=True)
class RunRequest:
    workflow_id: str
    parameters: dict[str, Any] = field(default_factory=dict)
    bot_id: str | None = None
    app_id: str | None = None
    ext: dict[str, str] = field(default_factory=dict)
    workflow_version: str | None = None
    connector_id: str = DEFAULT_CONNECTOR


@dataclass(slots=True)
class Finished:
    result: RunResult


@dataclass(slots=True)
class Failed:
    error: KnotflowError


Terminal = Finished | Failed
StreamItem = NodeMessage | Terminal


@dataclass(slots=True)
class RunHandle:
    run: Run
    workflow: Workflow
    queue: asyncio.Queue[StreamItem]
    task: asyncio.Task[Terminal] | None = None

    @property
    def execute_id(self) -> str:
        return self.run.execute_id


def parse_parameters(raw: Any) -> dict[str, Any]:
    """`parameters` as an object, or as a JSON string of one (older clients and Coze Studio send that)."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = jsonutil.loads(raw)
        except jsonutil.JSONDecodeError as exc:
            raise BadRequest("parameters must be a JSON object or a string holding one") from exc
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
    return ext


class RunService:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.recorder = RunRecorder(store)
        self._plans: OrderedDict[str, Plan] = OrderedDict()
        self._background: set[asyncio.Task[Any]] = set()
        self.models = ModelRegistry(source=settings.resolved_models_file())

    def reload_models(self) -> None:
        """Read the models file again (at start and on SIGHUP); a broken file keeps the previous registry."""
        try:
            self.models = load_registry(self.settings.resolved_models_file())
        except KnotflowError as exc:
            log.error("models file not reloaded: %s", exc.message)
            return
        log.info("models: %d configured from %s", len(self.models), self.models.source)

    async def start(self) -> None:
        self.reload_models()
        self.recorder.start()
        stale = time.time() - self.settings.async_run_timeout
        swept = await self.store.mark_orphaned_runs(stale, "the run outlived its time limit")
        if swept:
            log.info("marked %d orphaned runs as failed", swept)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.recorder.close()
        await self.models.aclose()

    # --- resolution ----------------------------------------------------------------------------------
    def plan_for(self, version: WorkflowVersion) -> Plan:
        plan = self._plans.get(version.id)
        if plan is None:
            plan = compile_canvas(version.canvas)
            self._plans[version.id] = plan
            if len(self._plans) > 512:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(version.id)
        return plan

    async def resolve(self, request: RunRequest, token: Token) -> tuple[Workflow, WorkflowVersion, Plan]:
        if request.bot_id and request.app_id:
            raise BadRequest("bot_id and app_id cannot be set at the same time")
        workflow = await self.store.get_workflow(request.workflow_id)
        if workflow is None:
            raise NotFound(f"workflow {request.workflow_id} does not exist")
        if not token.can_access(workflow.space_id):
            raise PermissionDenied(f"the token has no access to the space of workflow {workflow.id}")
        if not token.can(PERMISSION_RUN):
            raise PermissionDenied("the token lacks the 'run' permission")
        if workflow.app_id and request.app_id != workflow.app_id:
            raise BadRequest(
                f"workflow {workflow.id} belongs to app {workflow.app_id}: pass app_id={workflow.app_id}"
                if not request.app_id
                else f"workflow {workflow.id} does not belong to app {request.app_id}"
            )
        if workflow.requires_bot and not request.bot_id:
            raise BadRequest(f"workflow {workflow.id} uses bot-scoped data (database or variables): pass bot_id")
        version = await self.store.get_version(workflow.id, request.workflow_version)
        if version is None:
            if request.workflow_version:
                raise NotFound(f"workflow {workflow.id} has no published version {request.workflow_version}")
            raise NotFound(f"workflow {workflow.id} has not been published")
        return workflow, version, self.plan_for(version)

    # --- running -------------------------------------------------------------------------------------
    async def begin(self, request: RunRequest, token: Token, run_mode: int, logid: str = "") -> RunHandle:
        """Check everything that can be checked before answering, record the run, and start it."""
        workflow, version, plan = await self.resolve(request, token)
        entry = plan.entry
        assert isinstance(entry, StartNode)
        parameters = entry.prepare(request.parameters)
        now = time.time()
        run = Run(
            execute_id=new_id(),
            workflow_id=workflow.id,
            version=version.version,
            space_id=workflow.space_id,
            run_mode=run_mode,
            status=RUNNING,
            connector_id=request.connector_id,
            connector_uid=request.ext.get("user_id", ""),
            bot_id=request.bot_id or "",
            app_id=request.app_id or "",
            inputs=jsonutil.dumps(request.parameters),
            logid=logid,
            created_at=now,
            updated_at=now,
        )
        self.recorder.run_started(run)
        handle = RunHandle(run, workflow, asyncio.Queue())
        timeout = self.settings.async_run_timeout if run_mode == RUN_MODE_ASYNC else self.settings.sync_run_timeout
        handle.task = asyncio.create_task(self._drive(handle, plan, parameters, timeout))
        if run_mode == RUN_MODE_ASYNC:
            # The caller gets only the execute_id and may ask for the history at once: commit the record first.
            await self.recorder.flush()
            self._background.add(handle.task)
            handle.task.add_done_callback(self._background.discard)
        return handle

    def _sink(self, handle: RunHandle) -> Any:
        run = handle.run
        queue = handle.queue
        recorder = self.recorder

        def sink(event: Event) -> None:
            if isinstance(event, NodeMessage):
                queue.put_nowait(event)
                if event.node_type == "Message" and event.is_finish:
                    run.extra[event.node_title or event.node_id] = event.content
            elif isinstance(event, NodeFinished):
                recorder.node_finished(
                    NodeExecution(
                        id=new_id(),
                        execute_id=run.execute_id,
                        node_id=event.node_id,
                        node_type=event.node_type,
                        node_title=event.node_title,
                        status=event.status,
                        inputs=_text(event.inputs),
                        outputs=_text(event.outputs),
                        error=event.error,
                        started_at=event.started_at,
                        finished_at=event.finished_at,
                    )
                )

        return sink

    async def _drive(self, handle: RunHandle, plan: Plan, parameters: dict[str, Any], timeout: float) -> Terminal:
        run = handle.run
        execution = Execution(
            plan,
            sink=self._sink(handle),
            services=RunServices(models=self.models),
            max_bytes=self.settings.max_run_bytes - len(run.inputs),
        )
        outcome: Terminal
        try:
            async with asyncio.timeout(timeout):
                result = await execution.run(parameters)
            run.status = SUCCESS
            run.output = result_data(result)
            outcome = Finished(result)
        except asyncio.CancelledError:
            run.status = FAIL
            run.error_code = 5000
            run.error_message = CLIENT_DISCONNECTED if run.run_mode != RUN_MODE_ASYNC else "the server stopped"
            run.input_tokens, run.output_tokens = execution.usage.input_count, execution.usage.output_count
            run.updated_at = time.time()
            # Record the cancellation even though this task is being cancelled: shield the commit.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.recorder.run_finished(run))
            handle.queue.put_nowait(Failed(NodeError(run.error_message, internal_code=720701004)))
            raise
        except TimeoutError:
            outcome = Failed(NodeError(f"the run exceeded its time limit of {timeout:g} s", internal_code=720701003))
        except KnotflowError as exc:
            outcome = Failed(exc)
        except Exception as exc:  # a bug must still end the run with a record and a terminal event
            log.exception("run %s crashed", run.execute_id)
            outcome = Failed(NodeError(f"internal error: {exc}", internal_code=720700001))
        if isinstance(outcome, Failed):
            run.status = FAIL
            error = outcome.error
            run.error_code = error.internal_code
            run.error_message = error.message
        run.input_tokens, run.output_tokens = execution.usage.input_count, execution.usage.output_count
        run.updated_at = time.time()
        try:
            await self.recorder.run_finished(run)
        except Exception as exc:
            log.error("run %s: its final record could not be written: %s", run.execute_id, exc)
            if isinstance(outcome, Finished):
                outcome = Failed(NodeError("the run's record could not be saved", internal_code=720700002))
        handle.queue.put_nowait(outcome)
        return outcome

    async def events(self, handle: RunHandle, ping_interval: float) -> AsyncIterator[StreamItem | None]:
        """The run's messages, then its terminal item; `None` after each `ping_interval` of silence.

        If the consumer stops early (client gone), the run is cancelled and recorded as failed.
        """
        queue = handle.queue
        try:
            while True:
                if queue.empty():
                    try:
                        item = await asyncio.wait_for(queue.get(), ping_interval)
                    except TimeoutError:
                        yield None
                        continue
                else:
                    item = queue.get_nowait()
                yield item
                if isinstance(item, Finished | Failed):
                    return
        finally:
            task = handle.task
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def wait(self, handle: RunHandle) -> Terminal:
        assert handle.task is not None
        try:
            return await asyncio.shield(handle.task)
        except asyncio.CancelledError:
            handle.task.cancel()
            raise


def result_data(result: RunResult) -> str:
    """What `/v1/workflow/run` returns in `data`: the output object, or in answer mode Coze's answer wrapper."""
    if result.answer is not None:
        return jsonutil.dumps({"content_type": 1, "data": result.answer, "type_for_model": 2})
    return jsonutil.dumps(result.output)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return jsonutil.dumps(value)
