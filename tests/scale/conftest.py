"""Redis for the scale tests: `KNOTFLOW_TEST_REDIS_URL` (`.ci/run` starts one), else a throw-away `redis-server`
on a free loopback port when the binary is installed, else the tests are skipped, naming why."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.api.conftest import free_port
from tests.store.backends import database_url as database_url  # a migrated SQLite, and PostgreSQL if configured

REDIS_ENV = "KNOTFLOW_TEST_REDIS_URL"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get(REDIS_ENV)
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(f"neither {REDIS_ENV} nor redis-server (Debian package redis-server) is available")
    directory: Path = tmp_path_factory.mktemp("redis")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(directory)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    try:
        yield url
    finally:
        process.kill()
        process.wait(5)


@pytest.fixture()
def redis_url(redis_server: str) -> str:
    """The Redis, emptied: each test starts without another's run events, keys and queue."""
    redis.Redis.from_url(redis_server).flushall()
    return redis_server
