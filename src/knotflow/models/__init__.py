"""Models a canvas can call: the registry (`models.yaml`) and an OpenAI-compatible streaming client."""

from knotflow.models.client import Chunk, Completion, ModelClient, ModelError, TokenUsage, approximate_tokens
from knotflow.models.registry import (
    MODELS_FILE_ENV,
    ModelEndpoint,
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
