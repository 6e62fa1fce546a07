"""`models.yaml`: which OpenAI-compatible endpoint serves the model a canvas names.

A Coze canvas names its model by `llmParam.modelType` (an int id from Coze's model catalogue) and
`modleName`/`modelName` (a display name). Self-hosted, those ids mean nothing, so the operator maps them:

    models:
      - model_type: 1737521813
        name: doubao-pro
        base_url: http://127.0.0.1:9000/v1
        api_key_env: OPENAI_API_KEY
        model: gpt-4o-mini
    default: 1737521813

Resolution order: an entry whose `model_type` equals the canvas's id; else an entry whose `name` equals the
canvas's name; else the `default` entry; else an error naming the model and where to configure it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from knotflow.contract import MODELS_FILE_ENV, ModelKey
from knotflow.contract import MODELS_SETTING_HINT as SETTING_HINT
from knotflow.contract import describe_model as describe
from knotflow.errors import CanvasError
from knotflow.models.client import ModelClient
from knotflow.models.endpoint import ModelEndpoint


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_type: int | None = None
    name: str | None = None
    base_url: str = Field(min_length=1)
    api_key_env: str | None = None
    model: str = Field(min_length=1)
    timeout: float = Field(default=120.0, gt=0)  # seconds per request (streaming: per read)
    # Retries of a connection error before the provider sent any byte of its answer (e.g. a keep-alive connection
    # the provider closed as it was reused); never once the answer has started.
    max_retries: int = Field(default=2, ge=0)
    json_retries: int = Field(default=2, ge=0)  # extra calls when a JSON-format answer does not parse

    @model_validator(mode="after")
    def _named(self) -> ModelEntry:
        if self.model_type is None and not self.name:
            raise ValueError("an entry needs model_type or name (what canvases use to pick it)")
        return self


class ModelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[ModelEntry] = Field(default_factory=list)
    default: int | str | None = None

    @model_validator(mode="after")
    def _default_exists(self) -> ModelsFile:
        if self.default is not None and _find(self.models, self.default) is None:
            raise ValueError(f"default {self.default!r} matches no entry's model_type or name")
        return self


def _find(entries: list[ModelEntry], key: int | str) -> ModelEntry | None:
    for entry in entries:
        if isinstance(key, int) and entry.model_type == key:
            return entry
        if isinstance(key, str) and (entry.name == key or (key.isdigit() and entry.model_type == int(key))):
            return entry
    return None


class ModelRegistry:
    def __init__(self, entries: list[ModelEntry] | None = None, default: int | str | None = None,
                 source: Path | None = None) -> None:
        self.entries = list(entries or [])
        self.default = default
        self.source = source
        self._clients: dict[ModelEndpoint, ModelClient] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def find(self, model_type: int | None, name: str | None) -> ModelEntry | None:
        if model_type is not None:
            entry = _find(self.entries, int(model_type))
            if entry is not None:
                return entry
        if name:
            entry = next((e for e in self.entries if e.name == name), None)
            if entry is not None:
                return entry
        if self.default is not None:
            return _find(self.entries, self.default)
        return None

    def resolve(self, model_type: int | None, name: str | None) -> ModelEndpoint:
        entry = self.find(model_type, name)
        if entry is None:
            where = f" ({self.source})" if self.source else ""
            raise CanvasError(
                f"model {describe(model_type, name)} is not configured: add it to {SETTING_HINT}{where}"
            )
        return ModelEndpoint(entry.base_url, entry.model, entry.api_key_env, entry.timeout, entry.max_retries,
                             entry.json_retries, describe(model_type, name))

    def client(self, endpoint: ModelEndpoint) -> ModelClient:
        """The cached `ModelClient` for an endpoint: one HTTP connection pool per endpoint, not per run."""
        client = self._clients.get(endpoint)
        if client is None:
            client = self._clients[endpoint] = ModelClient(endpoint)
        return client

    def chat_model(self, key: ModelKey) -> ModelClient:
        return self.client(self.resolve(*key))

    def serves(self, key: ModelKey) -> bool:
        return self.find(*key) is not None

    def missing(self, wanted: list[ModelKey]) -> list[str]:
        """Descriptions of the wanted models this registry cannot serve (for the publish-time check)."""
        return [describe(t, n) for t, n in wanted if self.find(t, n) is None]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


def default_models_path() -> Path:
    configured = os.environ.get(MODELS_FILE_ENV)
    if configured:
        return Path(configured)
    from knotflow.config import get_settings

    return get_settings().data_dir / "models.yaml"


def _field_path(loc: tuple[Any, ...], raw: Any) -> str:
    parts: list[str] = []
    node = raw
    for step in loc:
        if isinstance(step, int):
            label = ""
            if isinstance(node, list) and 0 <= step < len(node) and isinstance(node[step], dict):
                named = node[step].get("name") or node[step].get("model_type")
                label = f" ({named})" if named else ""
            parts.append(f"[{step}]{label}")
            node = node[step] if isinstance(node, list) and 0 <= step < len(node) else None
        else:
            parts.append(("." if parts else "") + str(step))
            node = node.get(step) if isinstance(node, dict) else None
    return "".join(parts)


def load_registry(path: Path | None = None) -> ModelRegistry:
    """Read the models file. `path` None: the default location; a missing file is an empty registry."""
    path = path if path is not None else default_models_path()
    if not path.exists():
        return ModelRegistry(source=path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CanvasError(f"cannot read models file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise CanvasError(f"models file {path} is not valid YAML: {exc}") from exc
    if raw is None:
        return ModelRegistry(source=path)
    try:
        parsed = ModelsFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_field_path(tuple(err['loc']), raw) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise CanvasError(f"models file {path} is invalid: {problems}") from exc
    return ModelRegistry(parsed.models, parsed.default, path)


class ReloadableModels:
    """The registry this process serves runs with, read again from its file on demand (SIGHUP). A run keeps
    the registry it started with; registries replaced by a reload stay open until `aclose`, since runs still
    stream through their connections."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.current = ModelRegistry(source=source)
        self._retired: list[ModelRegistry] = []

    def reload(self) -> ModelRegistry:
        """Read the file again; a file that cannot be read keeps the current registry (the error is raised)."""
        fresh = load_registry(self.source)
        self._retired.append(self.current)
        self.current = fresh
        return fresh

    async def aclose(self) -> None:
        for registry in [*self._retired, self.current]:
            await registry.aclose()
        self._retired.clear()
