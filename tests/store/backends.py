"""Database fixtures shared by the store and service tests.

Every test runs on SQLite (a file in a tmp dir) and, when `KNOTFLOW_TEST_POSTGRES_URL` is set (e.g.
postgresql+asyncpg://user@host:5432/knotflow_test), on PostgreSQL too. The PostgreSQL database is wiped
(migrated down to nothing) before each test: point it at a scratch database.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from knotflow.store.migrate import downgrade, upgrade
from knotflow.store.repository import Store

POSTGRES_ENV = "KNOTFLOW_TEST_POSTGRES_URL"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgres",
        id="postgres",
        marks=pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason=f"{POSTGRES_ENV} is not set"),
    ),
]


def sqlite_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / 'data' / 'knotflow.db'}"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
    else:
        url = os.environ[POSTGRES_ENV]
        downgrade(url, "base")
    upgrade(url)
    return url


@pytest.fixture()
def backend(database_url: str) -> str:
    return "postgres" if database_url.startswith("postgresql") else "sqlite"


@pytest.fixture()
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url)
    try:
        yield opened
    finally:
        await opened.close()
