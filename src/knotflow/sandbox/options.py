"""The sandbox's settings: a plain dataclass the service fills from KNOTFLOW_CODE_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass

from knotflow.contract import CODE_EGRESS_PACKAGES, CODE_PYTHON_PACKAGES

# Coze Studio's defaults (CODE_RUNNER_TIMEOUT_SECONDS, CODE_RUNNER_MEMORY_LIMIT_MB).
COZE_TIMEOUT_SECONDS = 60.0
COZE_MEMORY_LIMIT_MB = 100


@dataclass(frozen=True)
class SandboxOptions:
    """Each field's comment names the environment variable proposed for it."""

    # Warm sandboxes (templates) kept per language, which is also how many calls of that language run at once (more
    # wait). 0 means no warm pool: every call starts a fresh sandbox and pays the cold start.
    python_workers: int = 2  # KNOTFLOW_CODE_PYTHON_WORKERS
    js_workers: int = 2  # KNOTFLOW_CODE_JS_WORKERS
    # Per call, unless the request gives its own; wall clock, from the moment the code is handed over.
    timeout: float = COZE_TIMEOUT_SECONDS  # KNOTFLOW_CODE_TIMEOUT
    # Requests asking for more are cut to this.
    max_timeout: float = 600.0  # KNOTFLOW_CODE_MAX_TIMEOUT
    # Python: address space the code may add to the template's; JavaScript: QuickJS's memory limit (everything the
    # code allocates, buffers included).
    memory_mb: int = COZE_MEMORY_LIMIT_MB  # KNOTFLOW_CODE_MEMORY_MB
    # Processes + threads one sandbox may have (RLIMIT_NPROC, counted per sandbox): the template, its call's child
    # and the janitor. The code itself may create none at all (seccomp).
    max_tasks: int = 64  # KNOTFLOW_CODE_MAX_TASKS
    # The JSON of what `main` returns; more is the error output_too_large.
    max_output_bytes: int = 1 << 20  # KNOTFLOW_CODE_MAX_OUTPUT_BYTES
    # Printed text kept per call (characters); the rest is cut, not an error.
    max_stdout_chars: int = 64 << 10  # KNOTFLOW_CODE_MAX_STDOUT_CHARS
    # The private scratch directory (/tmp inside the sandbox, a tmpfs emptied after every call).
    scratch_mb: int = 16  # KNOTFLOW_CODE_SCRATCH_MB
    # Top-level Python packages, from the server's environment, that code may import besides the standard library
    # (read-only), with the packages they require. Coze Studio offers numpy and httpx; httpx is added with egress.
    python_packages: tuple[str, ...] = CODE_PYTHON_PACKAGES  # KNOTFLOW_CODE_PYTHON_PACKAGES (comma-separated)
    # Network egress for Python code (egress.py): an HTTP(S) proxy whose every connection passes the outbound address
    # guard, which permits public addresses and what `egress_allow` names (hosts and CIDRs).
    egress: bool = False  # KNOTFLOW_CODE_EGRESS
    egress_allow: str = ""  # KNOTFLOW_URL_FETCH_ALLOW
    # Each of them in every sandbox: seconds to connect, seconds a connection may pass no byte, connections at once.
    egress_connect_timeout: float = 10.0
    egress_idle_timeout: float = 60.0
    egress_max_connections: int = 16
    # Tools; None finds them: bwrap on PATH, the interpreter running the server (which also runs JavaScript, with
    # the QuickJS of the `quickjs-ng` package).
    bwrap: str | None = None  # KNOTFLOW_CODE_BWRAP
    python: str | None = None  # KNOTFLOW_CODE_PYTHON
    # When the server runs as root, sandboxes run as unprivileged uids from here on (one per sandbox).
    sandbox_uid_base: int = 200_000  # KNOTFLOW_CODE_SANDBOX_UID_BASE
    # How long a sandbox may take to start before the call fails with kind "sandbox".
    start_timeout: float = 30.0  # KNOTFLOW_CODE_START_TIMEOUT

    @property
    def offered_packages(self) -> tuple[str, ...]:
        """What Python code may import besides the standard library: httpx too when egress is on."""
        extra = CODE_EGRESS_PACKAGES if self.egress else ()
        return tuple(dict.fromkeys((*self.python_packages, *extra)))

    def __post_init__(self) -> None:
        if self.python_workers < 0 or self.js_workers < 0:
            raise ValueError("worker counts cannot be negative")
        if not 0 < self.timeout <= self.max_timeout:
            raise ValueError("timeout must be positive and at most max_timeout")
        if self.memory_mb < 16 or self.max_tasks < 16 or self.scratch_mb < 1:
            raise ValueError("memory_mb and max_tasks must be at least 16, scratch_mb at least 1")
        if self.max_output_bytes < 2 or self.max_stdout_chars < 0:
            raise ValueError("max_output_bytes must be at least 2, max_stdout_chars not negative")
        if self.egress_connect_timeout <= 0 or self.egress_idle_timeout <= 0 or self.egress_max_connections < 1:
            raise ValueError("the egress timeouts must be positive and egress_max_connections at least 1")
