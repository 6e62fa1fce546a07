"""Start the ASGI server (uvicorn) on the app, after seeding a demo into an empty database."""

from __future__ import annotations

import asyncio
import logging

import uvicorn

from knotflow.config import get_settings

log = logging.getLogger("knotflow")


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
    uvicorn.run(
        create_app(settings, migrate=False),
        host=host,
        port=port,
        log_level=settings.log_level,
        access_log=False,
        lifespan="on",
    )
