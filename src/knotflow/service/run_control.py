"""What a client does to a run beyond starting it, from any process: re-attach to its events (`stream_attach`),
cancel it (`POST /v1/workflow/cancel`), start it once per `Idempotency-Key`; and how a run whose process died
ends for the clients still attached to it.

Nothing here depends on which process runs the run: its state is in the database, its events in the run log
(run_log.py), and a cancel is a signal every process hears (signals.py); the process that runs the run cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from knotflow.config import Settings
from knotflow.errors import BadRequest, NotFound
from knotflow.ids import new_id
from knotflow.service.access import PERMISSION_READ, PERMISSION_RUN, check_permission, visible_run
from knotflow.service.idempotency import check_key
from knotflow.service.run_log import (
    DONE,
    ENDS_SEGMENT,
    LogEntry,
    failure_entries,
    interrupt_entry,
)
from knotflow.service.runs import CANCELLED, RunHandle, RunRequest, RunService
from knotflow.service.scale import Scale
from knotflow.service.signals import CANCEL, PUBLISHED
from knotflow.store.records import FAIL, INTERRUPTED, QUEUED, RUNNING, SUCCESS, Run, Token
from knotflow.store.repository import Store

CANCEL_CODE = 720701004  # the internal code of a run stopped before its end (as a disconnect's cancel)
STILL_RECORDING = 3.0  # seconds a repeated idempotency key waits for the first request's run record
JUST_STARTED = 1.0  # seconds a cancel or re-attach waits for the record of a run that just started


class RunControl:
    def __init__(self, runs: RunService, store: Store, settings: Settings, scale: Scale) -> None:
        self.runs, self.store, self.settings, self.scale = runs, store, settings, scale
        self.run_log = scale.run_log
        scale.signals.on(CANCEL, runs.cancel_here)
        scale.signals.on(PUBLISHED, runs.forget_workflow)

    async def _visible(self, token: Token, permission: str, workflow_id: str, execute_id: str,
                       connector_id: str) -> Run:
        check_permission(token, permission)
        run = await self._recorded(execute_id) if execute_id.isascii() and execute_id.isdigit() else None
        return visible_run(token, run, f"run {execute_id or '(none)'} of workflow {workflow_id}",
                           workflow_id=workflow_id, connector_id=connector_id)

    async def _recorded(self, execute_id: str) -> Run | None:
        """The run's record; a run that started a moment ago (its id is in its stream's first byte) may still
        be on its way to the database: an id not found is looked up again for up to a second."""
        deadline = time.monotonic() + JUST_STARTED
        while (run := await self.store.get_run(execute_id)) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return run

    async def segment_of(self, execute_id: str) -> str:
        """The run's latest stream: its resume of the latest answered question, else its start."""
        answered = await self.store.answered_interrupt(execute_id)
        return answered.event_id if answered is not None else ""

    # --- re-attach -----------------------------------------------------------------------------------
    async def attach(self, token: Token, workflow_id: str, execute_id: str, connector_id: str, after: int,
                     ) -> tuple[Run, AsyncIterator[LogEntry | None]]:
        """The run's latest stream from the event after `after` (-1: from its start): what the log holds, then
        the live events up to the one that ends it; None on each ping interval of silence."""
        run = await self._visible(token, PERMISSION_READ, workflow_id, execute_id, connector_id)
        return run, self._events(run, await self.segment_of(run.execute_id), after)

    def replay(self, run: Run) -> AsyncIterator[LogEntry | None]:
        """The run's first stream from its start (a repeated idempotency key of stream_run)."""
        return self._events(run, "", -1)

    async def _events(self, run: Run, segment: str, after: int) -> AsyncIterator[LogEntry | None]:
        position = after
        if run.status not in (RUNNING, QUEUED):  # ended or waiting: replay, and end as the record says
            for held in await self.run_log.entries(run.execute_id, segment):
                if held.id > position:
                    position = held.id
                    yield held
                    if held.kind in ENDS_SEGMENT:
                        return
            for ending in await self._ending(run, position + 1):
                yield ending
            return
        async for entry in self.run_log.follow(run.execute_id, segment, after, self.settings.ping_interval):
            if entry is not None:
                position = entry.id
                yield entry
                continue
            current = await self.store.get_run(run.execute_id)  # silence: did it end without a word in the log?
            if current is not None and current.status not in (RUNNING, QUEUED) \
                    and await self.segment_of(run.execute_id) == segment:
                await asyncio.sleep(0.5)  # its last events may be on their way to the log
                async for late in self._events(current, segment, position):
                    yield late
                return
            yield None

    async def _ending(self, run: Run, first: int) -> list[LogEntry]:
        """The end of a stream the log no longer holds (expired), from the run's record."""
        if run.status == SUCCESS:
            return [LogEntry(first, DONE)]
        if run.status == INTERRUPTED:
            asked = await self.store.pending_interrupt(run.execute_id)
            if asked is not None:
                return [interrupt_entry(first, f"{run.execute_id}/{asked.event_id}", asked.kind, asked.data,
                                        asked.node_title)]
        return failure_entries(first, f"[{run.error_code or 5000}] {run.error_message}")

    # --- ending runs -------------------------------------------------------------------------------------
    async def close_segment(self, execute_id: str, segment: str, entries_from: int | None = None,
                            *, reason: str = "", question: str | None = None) -> None:
        """Write the end of a segment whose process cannot (it died, or the run never reached one): `Error`
        with `reason` then `Done`, or the question `question` asked again. Nothing if it already ended."""
        held = await self.run_log.entries(execute_id, segment)
        if held and held[-1].kind in ENDS_SEGMENT:
            return
        first = entries_from if entries_from is not None else (held[-1].id + 1 if held else 0)
        if question is not None:
            asked = await self.store.get_interrupt(execute_id, question)
            if asked is None:
                return
            ending = [interrupt_entry(first, f"{execute_id}/{question}", asked.kind, asked.data, asked.node_title)]
        else:
            ending = failure_entries(first, f"[{CANCEL_CODE if reason == CANCELLED else 5000}] {reason}")
        self.run_log.append(execute_id, segment, ending)
        await self.run_log.flush()

    async def end_lapsed(self, execute_id: str, now: float, reason: str) -> str | None:
        """End a run whose process stopped renewing its lease (store's `end_lapsed_run`), and tell the clients
        attached to it: `Error` + `Done`, or, for a resume cut short, its question again."""
        segment = await self.segment_of(execute_id)
        ended = await self.store.end_lapsed_run(execute_id, now, reason)
        if ended == FAIL:
            await self.close_segment(execute_id, segment, reason=reason)
        elif ended == INTERRUPTED:
            await self.close_segment(execute_id, segment, question=segment)
        return ended

    # --- cancel ------------------------------------------------------------------------------------------
    async def cancel(self, token: Token, workflow_id: str, execute_id: str, connector_id: str) -> Run:
        """Cancel a Queued, Running or Interrupted run, wherever it runs; the run as recorded afterwards (`Fail`
        with "cancelled", unless it ended first). A finished run is refused (4000), an unknown one is 4200."""
        run = await self._visible(token, PERMISSION_RUN, workflow_id, execute_id, connector_id)
        for _ in range(3):  # a waiting run that starts meanwhile is cancelled as a running one
            if run.status in (SUCCESS, FAIL):
                raise BadRequest(f"run {execute_id} already ended ({run.status}): there is nothing to cancel")
            now = time.time()
            if run.status in (QUEUED, INTERRUPTED):
                if await self.store.end_waiting_run(execute_id, run.status, CANCELLED, now):
                    if run.status == QUEUED:
                        await self.close_segment(execute_id, "", reason=CANCELLED)
                    break
            elif run.lease_until is not None and run.lease_until < now:  # its process is gone
                await self.end_lapsed(execute_id, now, CANCELLED)
                break
            else:
                await self.scale.signals.announce(CANCEL, execute_id)
                await self._until_ended(execute_id, await self.segment_of(execute_id))
                break
            current = await self.store.get_run(execute_id)
            if current is None:
                raise NotFound(f"run {execute_id} of workflow {workflow_id} does not exist")
            run = current
        return await self.store.get_run(execute_id) or run

    async def _until_ended(self, execute_id: str, segment: str) -> None:
        """Wait (at most `KNOTFLOW_CANCEL_WAIT` seconds) for the segment's end in the log: the run's failure is
        committed before its last event is written."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.cancel_wait):
                async for entry in self.run_log.follow(execute_id, segment, -1, self.settings.cancel_wait):
                    if entry is not None and entry.kind in ENDS_SEGMENT:
                        return

    # --- idempotency ----------------------------------------------------------------------------------------
    async def begin_once(self, key: str | None, request: RunRequest, token: Token, run_mode: int, logid: str,
                         ) -> RunHandle | Run:
        """Start the run, or, when `key` already names a run of this token, that run (its record)."""
        if key is None:
            return await self.runs.begin(request, token, run_mode, logid)
        key = check_key(key)
        execute_id = new_id()
        existing = await self.scale.idempotency.claim(token.id, key, execute_id)
        if existing is None:
            try:
                return await self.runs.begin(request, token, run_mode, logid, execute_id=execute_id)
            except BaseException:
                await self.scale.idempotency.release(token.id, key, execute_id)
                raise
        deadline = time.monotonic() + STILL_RECORDING
        while (run := await self.store.get_run(existing)) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the first request is still committing its run's record
        if run is None or not token.can_access(run.space_id):
            raise BadRequest(f"Idempotency-Key {key!r} names a run that cannot be found; use another key")
        if run.workflow_id != request.workflow_id:
            raise BadRequest(f"Idempotency-Key {key!r} already names run {run.execute_id} of workflow "
                             f"{run.workflow_id}")
        return run

    async def outcome(self, run: Run) -> Run:
        """The run as recorded once it ended (a repeated key of a sync run waits as the first request does)."""
        async for _ in self._events(run, "", -1):  # its record is committed before its last event is logged
            pass
        return await self.store.get_run(run.execute_id) or run
