"""The connection guard (`connections.py`) of a `serve --workers N` process, which uvicorn imports by name in each
spawned process: built from that process's settings (the environment the parent passed on)."""

from __future__ import annotations

from knotflow.api.connections import guarded_protocol
from knotflow.config import get_settings

_settings = get_settings()
GuardedProtocol = guarded_protocol(_settings.header_timeout, _settings.max_connections_per_client)
