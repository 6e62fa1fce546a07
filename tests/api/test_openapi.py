"""`/openapi.json` describes every route, and schemathesis fuzzes the real server from it: no internal error, no
dropped connection (a bounded pass here; bench/README has the longer one)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from starlette.routing import Route

from knotflow.api.app import create_app
from tests import canvases as c
from tests.api.conftest import LiveServer

# Checks that knotflow's design meets. Not `ignored_auth` and the like: as Coze, an error is HTTP 200 with the
# error in the envelope's `code` (4100 for a missing token), not an HTTP 401.
CHECKS = "not_a_server_error,content_type_conformance,response_schema_conformance,status_code_conformance"


def test_every_route_is_in_the_document(live: LiveServer) -> None:
    document = httpx.get(f"{live.base_url}/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    routes = [r for r in create_app(migrate=False).routes if isinstance(r, Route)]
    described = {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}
    assert described == {(method, r.path) for r in routes for method in (r.methods or set()) - {"HEAD"}}
    run = document["paths"]["/v1/workflow/stream_run"]["post"]
    assert run["requestBody"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/RunBody"
    assert "workflow_id" in document["components"]["schemas"]["RunBody"]["properties"]


def test_schemathesis_finds_no_server_error(live: LiveServer, token: str, tmp_path: Path) -> None:
    live.publish(c.greeting(), name="fuzzed")
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [str(schemathesis), "run", f"{live.base_url}/openapi.json", "-H", f"Authorization: Bearer {token}",
         "--checks", CHECKS, "--max-examples", "15", "--workers", "2", "--seed", "1",
         "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout, result.stdout[-6000:]
