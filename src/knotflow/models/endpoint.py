"""A resolved model endpoint: where a request goes and how it is sent."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelEndpoint:
    """A resolved model: where to send the request and what to call the model there. Hashable: the client
    cache key."""

    base_url: str
    model: str
    api_key_env: str | None = None
    timeout: float = 120.0
    max_retries: int = 2
    json_retries: int = 2
    label: str = ""  # how the canvas named it, for messages

    def api_key(self) -> str:
        """The key from `api_key_env`, or "" (no Authorization header): local servers often need none."""
        return os.environ.get(self.api_key_env, "") if self.api_key_env else ""
