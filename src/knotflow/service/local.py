"""Run a published workflow in this process, for `knotflow run`."""

from __future__ import annotations

from typing import Any


def run_and_print(workflow_id: str, parameters: dict[str, Any], stream: bool) -> int:
    """Run and print the events (stream) or the result; return the process exit code."""
    raise NotImplementedError("being written")
