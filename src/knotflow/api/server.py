"""Start the ASGI server (uvicorn) on the app, after seeding a demo into an empty database."""

from __future__ import annotations

import asyncio
import logging

import uvicorn
from starlette.types import ASGIApp

from knotflow.api.connections import guarded_protocol
from knotflow.config import Settings, get_settings

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


def serve(host: str, port: int) -> None:
    from knotflow.api.app import create_app
    from knotflow.store.migrate import upgrade

    settings = get_settings()
    settings.host, settings.port = host, port
    upgrade(settings.resolved_database_url())
    seeded = asyncio.run(_seed())
    if seeded:
        _print_demo(seeded[0], seeded[1], settings.base_url())
    else:
        print(TOKEN_HINT, flush=True)
    uvicorn.Server(server_config(create_app(settings, migrate=False), settings)).run()


def server_config(app: ASGIApp, settings: Settings, log_level: str | None = None) -> uvicorn.Config:
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
