"""The console's pages: one HTML page (the built single-page app) for every `/console/…` path, and its assets.

The assets are built from `console/` (Vite) into the package's `console/static/` and committed, so a server
needs no front-end tool and loads nothing from elsewhere: the Content-Security-Policy allows this origin only.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).resolve().parent.parent / "console" / "static"
PAGE_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}


class _Assets(StaticFiles):
    """Built assets: their names carry a hash of their content, so a browser may keep them for good."""

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["cache-control"] = "public, max-age=31536000, immutable"
        response.headers["x-content-type-options"] = "nosniff"
        return response


async def page(request: Request) -> Response:
    if request.path_params.get("path", "").startswith("api/"):
        raise HTTPException(404)  # an unknown console API path: the usual JSON error, not the page
    index = STATIC / "index.html"
    if not index.is_file():
        return PlainTextResponse("the console's assets are missing from this installation (run `make console`)",
                                 status_code=503)
    return FileResponse(index, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


async def _to_console(request: Request) -> Response:
    return RedirectResponse("/console/", status_code=308)


def console_page_routes() -> list[BaseRoute]:
    """`/console` (sent on to `/console/`), the page at `/console/`, and below it the assets and the page again
    for every path the app routes itself (a Mount: pages are not API operations)."""
    below = Router(routes=[Mount("/assets", app=_Assets(directory=STATIC / "assets", check_dir=False)),
                           Route("/{path:path}", page, methods=["GET"])])
    return [
        Route("/console", _to_console, methods=["GET"]),
        Route("/console/", page, methods=["GET"]),
        Mount("/console", app=below),
    ]
