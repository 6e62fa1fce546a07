"""One exception hierarchy; each class carries the Coze open-API code it maps to."""

from __future__ import annotations


class KnotflowError(Exception):
    """Base of every error knotflow raises on purpose. `code` is the Coze open-API code."""

    code: int = 5000

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def internal_code(self) -> int:
        return self.code

    def stream_message(self) -> str:
        """The message of a stream `Error` event: the internal code in brackets, then the text."""
        return f"[{self.internal_code}] {self.message}"


class BadRequest(KnotflowError):
    code = 4000


class Unauthenticated(KnotflowError):
    code = 4100


class PermissionDenied(KnotflowError):
    code = 4101


class NotFound(KnotflowError):
    code = 4200


class RateLimited(KnotflowError):
    """Coze's 4013: the token's request or run limit was exceeded."""

    code = 4013


class CanvasError(BadRequest):
    """A canvas that cannot be imported, validated or compiled."""


class UnknownNodeType(CanvasError):
    def __init__(self, node_id: str, type_id: str, title: str = "") -> None:
        label = f"'{title}' ({node_id})" if title else node_id
        super().__init__(f"node {label} has type {type_id}, which knotflow does not implement yet")
        self.node_id = node_id
        self.type_id = type_id


class NodeError(KnotflowError):
    """A node failed while running. `internal_code` is Coze Studio's 9-digit code shown in brackets."""

    code = 5000

    def __init__(self, message: str, *, internal_code: int = 720701013, node_id: str = "") -> None:
        super().__init__(message)
        self._internal_code = internal_code
        self.node_id = node_id

    @property
    def internal_code(self) -> int:
        return self._internal_code


def size_text(size: int) -> str:
    """A byte count as people read it: `15.0 MB (15728640 bytes)`; MB are MiB, as the 20 MB limit is."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit} ({size} bytes)"
    return f"{size} bytes"


RUN_DATA_LIMIT_SETTING = "KNOTFLOW_MAX_RUN_BYTES"


class RunTooLarge(NodeError):
    """The run's data (its inputs, node outputs and messages) passed the run's size limit at `what`."""

    def __init__(self, limit: int, used: int, what: str, node_id: str = "") -> None:
        super().__init__(
            f"{what} brought the run's data to {size_text(used)}, over the limit of {size_text(limit)} "
            f"({RUN_DATA_LIMIT_SETTING}: the inputs, every node's output and every message count)",
            internal_code=720701005, node_id=node_id,
        )
        self.limit = limit
        self.used = used


class InterruptNotSupported(KnotflowError):
    code = 6039


class ConversationNotFound(NotFound):
    """Coze's 4001: the conversation does not exist (or the caller may not see it)."""

    code = 4001


class MessageNotFound(NotFound):
    """Coze's 4005: the message does not exist in that conversation."""

    code = 4005
