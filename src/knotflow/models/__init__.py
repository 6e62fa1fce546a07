"""Models a canvas can call: the registry (`models.yaml`) and an OpenAI-compatible streaming client."""

from knotflow.contract import MODELS_FILE_ENV, Chunk, Completion, ModelError, TokenUsage
from knotflow.models.client import ModelClient, approximate_tokens
from knotflow.models.endpoint import ModelEndpoint
from knotflow.models.registry import (
    ModelEntry,
    ModelRegistry,
    default_models_path,
    load_registry,
)

__all__ = [
    "MODELS_FILE_ENV",
    "Chunk",
    "Completion",
    "ModelClient",
    "ModelEndpoint",
    "ModelEntry",
    "ModelError",
    "ModelRegistry",
    "TokenUsage",
    "approximate_tokens",
    "default_models_path",
    "load_registry",
]
