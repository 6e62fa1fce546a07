"""Start the ASGI server (uvicorn) on the app, after seeding a demo into an empty database."""

from __future__ import annotations

import asyncio
import logging
import os

import uvicorn
from starlette.types import ASGIApp
from uvicorn.supervisors import Multiprocess

from knotflow import logs
from knotflow.api.connections import guarded_protocol
from knotflow.config import Settings, get_settings
from knotflow.errors import KnotflowError

log = logging.getLogger("knotflow")


# Printed on every start but the first (whose demo token is shown once): how to get a token.
TOKEN_HINT = (
    "knotflow: tokens are shown once, when created. Make one with `knotflow token create --name NAME` "
    "(`knotflow token list` shows the existing ones, `knotflow token revoke ID` ends one)."
)


def _print_demo(workflow_id: str, token: str, base_url: str) -> None:
    print(
        f"""
knotflow: seeded a demo workflow and a development token (shown once — keep it).

  workflow_id: {workflow_id}
  token:       {token}

Open the console at {base_url}/console and sign in with the token.

Run it with curl:
  curl -N -X POST '{base_url}/v1/workflow/stream_run' \\
    -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\
    -d '{{"workflow_id": "{workflow_id}", "parameters": {{"name": "George"}}}}'

Or with cozepy:
  from cozepy import Coze, TokenAuth
  coze = Coze(auth=TokenAuth("{token}"), base_url="{base_url}")
  for event in coze.workflows.runs.stream(workflow_id="{workflow_id}", parameters={{"name": "George"}}):
      print(event)
""",
        flush=True,
    )


async def _seed() -> tuple[str, str] | None:
    from knotflow.service.catalog import seed_demo
    from knotflow.service.container import Container

    async with Container(get_settings(), background=False) as app:
        seeded = await seed_demo(app.store)
    return (seeded[0].id, seeded[1]) if seeded else None


def serve(host: str, port: int, workers: int = 1) -> None:
    """Serve on `host`:`port`; with `workers` > 1, that many server processes share the port (uvicorn's
    supervisor restarts one that dies), which needs KNOTFLOW_REDIS_URL: a run's events, cancels, limits and
    idempotency keys must reach every process."""
    from knotflow.api.app import create_app
    from knotflow.store.migrate import upgrade

    settings = get_settings()
    if workers > 1 and not settings.redis_url:
        raise KnotflowError("--workers needs KNOTFLOW_REDIS_URL: the processes share runs through Redis")
    settings.host, settings.port = host, port
    upgrade(settings.resolved_database_url())
    seeded = asyncio.run(_seed())
    if seeded:
        _print_demo(seeded[0], seeded[1], settings.base_url())
    else:
        print(TOKEN_HINT, flush=True)
    if workers <= 1:
        uvicorn.Server(server_config(create_app(settings, migrate=False), settings)).run()
        return
    # The worker processes are spawned: they read the same settings from the environment, host and port too.
    os.environ["KNOTFLOW_HOST"], os.environ["KNOTFLOW_PORT"] = host, str(port)
    config = server_config("knotflow.api.server:worker_app", settings)
    config.factory, config.workers = True, workers
    config.http = "knotflow.api.worker_protocol:GuardedProtocol"
    socket = config.bind_socket()
    Multiprocess(config, sockets=[socket]).run()


def worker_app() -> ASGIApp:
    """The application of one of `serve --workers N`'s processes (the parent migrated and seeded already)."""
    from knotflow.api.app import create_app

    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)  # a spawned process starts without the parent's
    return create_app(settings, migrate=False)


def server_config(app: ASGIApp | str, settings: Settings, log_level: str | None = None) -> uvicorn.Config:
    """How knotflow serves `app`: on the settings' host and port, with the connection limits (`connections.py`:
    header timeout, per-client cap; uvicorn's `limit_concurrency` for all connections together)."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level or settings.log_level,
        log_config=None,  # uvicorn logs through knotflow's handler (knotflow.logs), in its format
        access_log=False,  # knotflow.api.request_log writes one line per request instead
        lifespan="on",
        http=guarded_protocol(settings.header_timeout, settings.max_connections_per_client),
        limit_concurrency=settings.max_connections or None,
    )
