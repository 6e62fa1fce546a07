"""deploy/docker-compose.yml (docker does not run here): every knotflow service runs a real CLI command with
settings knotflow knows, on the PostgreSQL and Redis services it defines."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from knotflow.cli import app
from knotflow.config import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "docker-compose.yml"


def test_compose_runs_servers_and_a_worker_on_postgres_and_redis() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert {"postgres", "redis", "migrate", "server", "worker"} <= set(services)
    known = {f"KNOTFLOW_{name.upper()}" for name in Settings.model_fields}
    for name in ("migrate", "server", "worker"):
        service = services[name]
        assert set(service["environment"]) <= known, name
        assert service["environment"]["KNOTFLOW_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert service["environment"]["KNOTFLOW_REDIS_URL"].startswith("redis://redis:")
        command = service["command"]
        assert command[0] == "knotflow"
        help_text = CliRunner().invoke(app, [*command[1:3 if command[1] == "db" else 2], "--help"]).output
        for option in (part for part in command[2:] if part.startswith("--")):
            assert option in help_text, f"{name}: knotflow {command[1]} has no {option}"
    assert "--workers" in services["server"]["command"]
