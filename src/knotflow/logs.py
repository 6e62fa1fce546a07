"""The server's log: the one place logging is configured, the fields every line carries, and what it never writes.

Everything logs through the standard `logging` module (uvicorn included). `configure` installs one handler on
stderr: plain lines by default, one JSON object per line when `KNOTFLOW_LOG_FORMAT=json` (python-json-logger),
each with `time`, `level`, `logger`, `message` and the line's own fields (`extra=`). Lines written while a run
executes carry its `execute_id` (see `bind`), so a provider failure can be traced to its run.

Secrets never reach the output: tokens (`pat_…`, `Bearer …`), API keys (`sk-…`, and every key value registered
with `register_secret`, e.g. a model's key read from its environment variable) and signed links (`signature=…`)
are masked in the formatted line, whatever logged them.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import sys
from collections.abc import Iterator
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

MASK = "***"
LOG_FORMATS = ("text", "json")
_PATTERNS = (
    (re.compile(r"\bpat_[A-Za-z0-9_\-]+"), "pat_" + MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), "sk-" + MASK),
    (re.compile(r"(?i)(\bbearer\s+)[^\s\"',;]+"), r"\1" + MASK),
    (re.compile(r"(?i)([?&](?:signature|sig|token|access_token|api_key|apikey|key)=)[^&\s\"'#]+"), r"\1" + MASK),
)
# A LogRecord's own attributes, not fields of the line; uvicorn adds `color_message` (the message with colours).
_NOT_FIELDS = frozenset(RESERVED_ATTRS) | {"taskName", "color_message"}
_MIN_SECRET = 6  # shorter values would mask ordinary words
_secrets: set[str] = set()
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("knotflow_log_context",
                                                                                 default=None)


def register_secret(value: str | None) -> None:
    """Mask this value wherever it would appear in a log line (an API key read from the environment)."""
    if value and len(value) >= _MIN_SECRET:
        _secrets.add(value)


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add `fields` to every line logged in this context (asyncio tasks started inside inherit them)."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def bind_task(**fields: Any) -> None:
    """`bind` for the rest of the current asyncio task (a run's task: set once, dropped with the task)."""
    _context.set({**(_context.get() or {}), **fields})


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class _TextFormatter(logging.Formatter):
    """`time level logger: message key=value …` with the line's own fields, secrets masked."""

    _standard = _NOT_FIELDS

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(f"{key}={value}" for key, value in record.__dict__.items()
                          if key not in self._standard and not key.startswith("_") and value not in (None, ""))
        if fields:
            first, newline, rest = line.partition("\n")
            line = f"{first} {fields}{newline}{rest}"
        return redact(line)


class _JsonFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return _JsonFormatter(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",  # ISO 8601, UTC
            json_ensure_ascii=False,
            reserved_attrs=[*_NOT_FIELDS],
        )
    return _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a line is logged (a test's captured stream, a replaced one)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(level: str = "info", log_format: str = "text") -> logging.Handler:
    """Log to stderr at `level` in `log_format` ("text" or "json"); calling it again replaces the set-up."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"KNOTFLOW_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    handler = _StderrHandler()
    handler.setFormatter(formatter(log_format))
    handler.addFilter(_ContextFilter())
    handler.set_name("knotflow")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "knotflow"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's own lines go through this handler too (it is started without a log config of its own).
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    return handler
