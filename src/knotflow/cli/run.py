"""`knotflow run`: a published workflow run in this process, started like the server (the composition root,
sweeper included), with the same records, printed as Coze's SSE stream or as the result."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from knotflow.api.sse import frames
from knotflow.api.state import debug_url
from knotflow.config import get_settings
from knotflow.errors import KnotflowError
from knotflow.service.container import Container
from knotflow.service.runs import Finished, Paused, RunRequest, result_data
from knotflow.store.records import PERMISSION_RUN, RUN_MODE_STREAM, RUN_MODE_SYNC, Token

# The local operator owns the database, so a local run acts with every permission in every space.
LOCAL_OPERATOR = Token(id="0", name="local", permissions=[PERMISSION_RUN], space_ids=None, created_at=0)


async def _run(workflow_id: str, parameters: dict[str, Any], stream: bool) -> int:
    settings = get_settings()
    async with Container(settings) as app:
        return await _run_in(app, workflow_id, parameters, stream)


async def _run_in(app: Container, workflow_id: str, parameters: dict[str, Any], stream: bool) -> int:
    service = app.runs
    try:
        handle = await service.begin(
            RunRequest(workflow_id=workflow_id, parameters=parameters, connector_id="1024"),
            LOCAL_OPERATOR,
            RUN_MODE_STREAM if stream else RUN_MODE_SYNC,
        )
        run = handle.run
        trace = debug_url(app.settings, run)
        if stream:
            async for chunk in frames(service.events(handle, app.settings.ping_interval), trace):
                sys.stdout.write(chunk.decode())
                sys.stdout.flush()
        outcome = await service.wait(handle)
        if isinstance(outcome, Finished):
            if not stream:
                print(result_data(outcome.result))
            print(f"execute_id: {handle.execute_id}; trace (while a server runs): {trace}", file=sys.stderr)
            return 0
        if isinstance(outcome, Paused):
            print(f"run {handle.execute_id} waits for an answer: event_id {outcome.event_id}", file=sys.stderr)
            return 0
        print(f"run {handle.execute_id} failed: {outcome.error.stream_message()}", file=sys.stderr)
        return 1
    except KnotflowError as exc:
        print(f"error {exc.code}: {exc.message}", file=sys.stderr)
        return 1


def run_and_print(workflow_id: str, parameters: dict[str, Any], stream: bool) -> int:
    """Run and print the events (stream) or the result; return the process exit code."""
    return asyncio.run(_run(workflow_id, parameters, stream))
