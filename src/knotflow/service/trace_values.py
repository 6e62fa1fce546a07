"""Values as a run's trace keeps them: readable, however large the run's data was.

A node's inputs and outputs are recorded for people reading the trace, not for the run (which keeps its own
values): a long text is cut to its beginning followed by its size, a long list to its first items followed by how
many were left out. Coze does the same to large histories (`is_output_trimmed`). Small values — nearly all of
them — are kept byte for byte without being parsed.
"""

from __future__ import annotations

from typing import Any

from knotflow.dsl import jsonutil
from knotflow.errors import size_text

KEEP_WHOLE = 64 * 1024  # a recorded value up to this many characters is kept as it is
TEXT_KEPT = 1024  # characters kept of a text that is cut
ITEMS_KEPT = 100  # items kept of a list that is cut


def _cut(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) <= TEXT_KEPT:
            return value
        return f"{value[:TEXT_KEPT]}… [cut: {size_text(len(value.encode()))} in all]"
    if isinstance(value, dict):
        return {key: _cut(item) for key, item in value.items()}
    if isinstance(value, list):
        kept = [_cut(item) for item in value[:ITEMS_KEPT]]
        if len(value) > ITEMS_KEPT:
            kept.append(f"… [cut: {len(value) - ITEMS_KEPT} more items]")
        return kept
    return value


def readable(recorded: str | bytes) -> str:
    """A recorded JSON value (text or bytes) with its large parts cut, as JSON text."""
    text = recorded.decode() if isinstance(recorded, bytes) else recorded
    if len(text) <= KEEP_WHOLE:
        return text
    try:
        return jsonutil.dumps(_cut(jsonutil.loads(text)))
    except jsonutil.JSONDecodeError:
        return str(_cut(text))
