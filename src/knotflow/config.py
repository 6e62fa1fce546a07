"""Settings from the environment (KNOTFLOW_*), read once per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KNOTFLOW_", extra="ignore")

    data_dir: Path = Path(".knotflow")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    ping_interval: float = 30.0
    max_request_bytes: int = 20 * 1024 * 1024
    max_bodies_bytes: int = Field(default=64 * 1024 * 1024, ge=0)  # big request bodies handled at once; 0: no cap
    header_timeout: float = Field(default=10.0, gt=0)  # seconds for a request's line and headers to arrive
    body_timeout: float = Field(default=30.0, gt=0)  # seconds a request body may go without a byte arriving
    max_connections: int = Field(default=16_384, ge=0)  # all open connections and requests together; 0: no cap
    max_connections_per_client: int = Field(default=0, ge=0)  # connections from one address; 0: no cap
    stream_buffer_bytes: int = Field(default=1024 * 1024, ge=64 * 1024)  # a stream's unread messages
    stream_send_timeout: float = Field(default=30.0, gt=0)  # seconds a stream's client may take to read
    max_run_bytes: int = 20 * 1024 * 1024
    max_upload_bytes: int = 512 * 1024 * 1024  # one uploaded file (POST /v1/files/upload)
    file_url_ttl: float = 7 * 86_400.0  # how long a file link a run hands out stays valid (Coze: 7 days)
    file_url_secret: str | None = None  # signs file links; default: a random secret kept in the data dir
    url_fetch_max_bytes: int = 100 * 1024 * 1024  # the largest file a node may fetch from a URL
    url_fetch_timeout: float = 60.0  # seconds one URL fetch may take, redirects included
    url_fetch_allow: str = ""  # hosts and CIDRs a fetch may reach although private, e.g. "10.0.0.0/8,intranet"
    http_timeout: float = 120.0  # seconds an HTTP request node's attempt may take when its canvas sets none
    http_max_response_bytes: int = 20 * 1024 * 1024  # the largest response body an HTTP request node reads
    # The Code node's sandboxes (README, "Code isolation"): warm ones kept per language (0: a new one per call), the
    # time a call may take unless its node sets its own (Coze's 60 s) and the most a node may set, the memory a
    # call may add (Coze's 100 MB), the JSON a call may return, the call's private scratch directory.
    code_python_workers: int = Field(default=2, ge=0)
    code_js_workers: int = Field(default=2, ge=0)
    code_timeout: float = Field(default=60.0, gt=0)
    code_max_timeout: float = Field(default=600.0, gt=0)
    code_max_memory_bytes: int = Field(default=100 * 1024 * 1024, ge=16 * 1024 * 1024)
    code_max_output_bytes: int = Field(default=1024 * 1024, ge=2)
    code_max_scratch_bytes: int = Field(default=16 * 1024 * 1024, ge=1024 * 1024)
    # Network egress for Python code (off: no network at all): HTTP(S) through a proxy whose every connection passes
    # the HTTP request node's address guard (public addresses, and what KNOTFLOW_URL_FETCH_ALLOW names).
    code_egress: bool = False
    sync_run_timeout: float = 600.0
    async_run_timeout: float = 86_400.0
    # Seconds a process holds a run without renewing; a run whose process died ends within 1.5 × this.
    run_lease: float = Field(default=30.0, ge=0.5)
    max_loop_iterations: int = Field(default=10_000, ge=1)  # a Loop's iterations before the node fails
    max_workflow_depth: int = Field(default=10, ge=1)  # sub-workflows inside sub-workflows at run time
    interrupt_ttl: float = 7 * 86_400.0  # an unanswered question fails its run after this many seconds
    # A run reads its workflow row from a per-process cache at most this old, so a publish from another process
    # (the CLI) is seen within this many seconds; 0 reads the row on every run.
    workflow_cache_seconds: float = 1.0
    # A server reuses a token it has looked up for this long, so a revocation from another process (the CLI) is
    # refused within this many seconds (with Redis at once); 0 looks the token up on every request.
    token_cache_seconds: float = 5.0
    console_session_ttl: float = 86_400.0  # seconds a console sign-in lasts
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"  # KNOTFLOW_LOG_FORMAT: json writes one JSON object per line
    models_file: Path | None = None  # KNOTFLOW_MODELS_FILE; default: <data dir>/models.yaml
    on_disconnect: Literal["cancel", "continue"] = "cancel"  # what a stream's run does when its client leaves
    # Beyond one process (README "Many processes"): Redis carries run events, cancel signals, cache invalidation,
    # limits, idempotency keys and the async-run queue. Without it all of these work within one process.
    redis_url: str | None = None
    run_events_ttl: float = Field(default=3600.0, gt=0)  # seconds a run's events stay re-attachable after the last
    run_events_maxlen: int = Field(default=10_000, ge=10)  # the events kept per run (and per resume)
    max_concurrent_runs: int = Field(default=0, ge=0)  # per token, across processes; 0: no limit
    requests_per_second: int = Field(default=0, ge=0)  # per token, across processes; 0: no limit
    idempotency_ttl: float = Field(default=86_400.0, gt=0)  # seconds an Idempotency-Key names its run
    cancel_wait: float = Field(default=5.0, ge=0)  # seconds a cancel waits for the run's end before answering
    # Seconds an async run's queue message may stay unacknowledged before another worker takes it over.
    queue_redelivery: float = Field(default=60.0, gt=0)
    # Seconds a stopping worker (SIGTERM) lets the runs it holds finish, taking no new ones, before it cancels them.
    worker_drain_seconds: float = Field(default=30.0, ge=0)

    @model_validator(mode="after")
    def _code_timeouts(self) -> Settings:
        if self.code_timeout > self.code_max_timeout:
            raise ValueError("KNOTFLOW_CODE_TIMEOUT must not be above KNOTFLOW_CODE_MAX_TIMEOUT")
        return self

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'knotflow.db').resolve()}"

    def resolved_models_file(self) -> Path:
        return self.models_file or self.data_dir / "models.yaml"

    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
