"""Language models as nodes see them: chat messages, answers, usage, errors, and the provider that serves the
model a canvas names. `knotflow.models` implements these for OpenAI-compatible endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from knotflow.contract.node import ModelKey

# {"role": ..., "content": ...}: the content is text, or a list of OpenAI content parts for a multimodal message
# ({"type": "text", "text"}, {"type": "image_url", "image_url": {"url"}}, {"type": "file", "file": {...}}).
Message = dict[str, Any]

MODELS_FILE_ENV = "KNOTFLOW_MODELS_FILE"
MODELS_SETTING_HINT = f"models.yaml in the data directory, or the file named by {MODELS_FILE_ENV}"


class ModelError(Exception):
    """The provider failed. `kind`: "timeout", "connection", "status" or "response"."""

    def __init__(self, message: str, kind: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status


@dataclass(slots=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False


@dataclass(slots=True)
class Chunk:
    content: str = ""
    reasoning_content: str = ""
    usage: TokenUsage | None = None  # only on the final chunk


@dataclass(slots=True)
class Completion:
    content: str = ""
    reasoning_content: str = ""
    usage: TokenUsage = field(default_factory=TokenUsage)


def describe_model(model_type: int | None, name: str | None) -> str:
    """How a canvas names a model, for messages: `'doubao' / modelType 1737521813`."""
    parts = []
    if name:
        parts.append(repr(name))
    if model_type is not None:
        parts.append(f"modelType {model_type}")
    return " / ".join(parts) or "(no model named)"


class ChatModel(Protocol):
    """One configured model endpoint."""

    @property
    def json_retries(self) -> int:
        """Extra calls a node makes when an answer asked for as JSON does not parse."""
        ...

    def stream_chat(self, messages: Sequence[Message], *, temperature: float | None = None,
                    max_tokens: int | None = None, top_p: float | None = None,
                    json_mode: bool = False) -> AsyncIterator[Chunk]:
        """Content deltas as they arrive; the last chunk carries the usage (reported or estimated)."""
        ...

    async def complete_chat(self, messages: Sequence[Message], *, temperature: float | None = None,
                            max_tokens: int | None = None, top_p: float | None = None,
                            json_mode: bool = False) -> Completion: ...


class ModelProvider(Protocol):
    """The models this server is configured with (models.yaml)."""

    def chat_model(self, key: ModelKey) -> ChatModel:
        """The model a canvas names; a CanvasError naming the model and the setting when none serves it."""
        ...

    def serves(self, key: ModelKey) -> bool:
        """Whether a configured endpoint serves the model a canvas names."""
        ...
