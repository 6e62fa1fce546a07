"""models.yaml: validation, resolution, and the OpenAI-compatible client against the fake server."""

from __future__ import annotations

from pathlib import Path

import pytest

from knotflow.errors import CanvasError
from knotflow.models import Chunk, ModelError, load_registry
from knotflow.models.registry import MODELS_FILE_ENV, ModelEntry, ModelRegistry
from tests.fakes.model_server import FakeModelServer, Reply, model_server, registry_for

__all__ = ["model_server"]  # the fixture, imported so pytest finds it here

GOOD = """
models:
  - model_type: 1737521813
    name: doubao-pro
    base_url: http://127.0.0.1:9000/v1
    api_key_env: OPENAI_API_KEY
    model: gpt-4o-mini
  - name: local-llama
    base_url: http://127.0.0.1:9001/v1
    model: llama3
default: 1737521813
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_resolves_by_type_then_name_then_default(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path, GOOD))
    assert len(registry) == 2
    assert registry.resolve(1737521813, None).model == "gpt-4o-mini"
    assert registry.resolve(None, "local-llama").model == "llama3"
    assert registry.resolve(99, "local-llama").model == "llama3"
    endpoint = registry.resolve(42, "unknown")
    assert endpoint.model == "gpt-4o-mini"  # the default
    assert endpoint.base_url == "http://127.0.0.1:9000/v1"


def test_unlisted_model_without_default_names_model_and_setting(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path, GOOD.replace("default: 1737521813", "")))
    with pytest.raises(CanvasError) as info:
        registry.resolve(1741232583, "豆包·1.5·Lite·32k")
    message = str(info.value)
    assert "1741232583" in message and "豆包·1.5·Lite·32k" in message
    assert "models.yaml" in message and MODELS_FILE_ENV in message
    assert registry.missing([(1737521813, None), (7, "x")]) == ["'x' / modelType 7"]


def test_missing_file_is_an_empty_registry(tmp_path: Path) -> None:
    registry = load_registry(tmp_path / "nope.yaml")
    assert len(registry) == 0
    with pytest.raises(CanvasError, match="not configured"):
        registry.resolve(1, None)


def test_env_var_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    monkeypatch.setenv(MODELS_FILE_ENV, str(path))
    assert len(load_registry(None)) == 2


def test_default_location_is_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from knotflow.config import get_settings

    write(tmp_path, GOOD)
    monkeypatch.delenv(MODELS_FILE_ENV, raising=False)
    monkeypatch.setenv("KNOTFLOW_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert len(load_registry(None)) == 2
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(("text", "expected"), [
    ("models:\n  - model_type: 1\n    model: m\n", "models[0] (1).base_url"),
    ("models:\n  - base_url: http://x/v1\n    model: m\n", "needs model_type or name"),
    ("models:\n  - name: a\n    base_url: http://x/v1\n    model: m\n    colour: red\n", "models[0] (a).colour"),
    ("models:\n  - model_type: nope\n    base_url: http://x/v1\n    model: m\n", "model_type"),
    ("models: []\ndefault: 5\n", "default 5 matches no entry"),
    ("models: [unclosed\n", "not valid YAML"),
])
def test_bad_file_names_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CanvasError) as info:
        load_registry(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_clients_are_cached_per_endpoint() -> None:
    entry = ModelEntry(model_type=1, base_url="http://127.0.0.1:1/v1", model="m")
    registry = ModelRegistry([entry, ModelEntry(name="b", base_url="http://127.0.0.1:1/v1", model="m")])
    first = registry.client(registry.resolve(1, None))
    assert registry.client(registry.resolve(1, None)) is first


async def test_stream_chat_reports_deltas_and_usage(model_server: FakeModelServer) -> None:
    model_server.script(Reply(content=["Hel", "lo"], reasoning=["think"], usage=(11, 3)))
    registry = registry_for(model_server)
    client = registry.client(registry.resolve(1737521813, None))
    chunks: list[Chunk] = [c async for c in client.stream_chat([{"role": "user", "content": "hi"}],
                                                                temperature=0.5, max_tokens=10)]
    assert "".join(c.content for c in chunks) == "Hello"
    assert "".join(c.reasoning_content for c in chunks) == "think"
    final = chunks[-1].usage
    assert final is not None and (final.prompt_tokens, final.completion_tokens, final.estimated) == (11, 3, False)
    sent = model_server.requests[0]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["model"] == "fake-model" and sent["temperature"] == 0.5 and sent["max_tokens"] == 10
    await registry.aclose()


async def test_usage_is_estimated_when_the_provider_sends_none(model_server: FakeModelServer) -> None:
    model_server.script(Reply(content="12345678"), Reply(content=["abcd", "efgh"]))
    registry = registry_for(model_server)
    client = registry.client(registry.resolve(1737521813, None))
    messages = [{"role": "user", "content": "x" * 8}]
    completion = await client.complete_chat(messages)
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4 + 2, 2)
    assert completion.usage.estimated
    chunks = [c async for c in client.stream_chat(messages)]
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (6, 2)
    await registry.aclose()


async def test_provider_errors_become_model_errors(model_server: FakeModelServer) -> None:
    model_server.script(Reply(status=429, error="rate limited, slow down"), Reply(hang=3, content="late"),
                        Reply(malformed=True))
    registry = registry_for(model_server, timeout=0.5)
    client = registry.client(registry.resolve(1737521813, None))
    with pytest.raises(ModelError) as info:
        await client.complete_chat([{"role": "user", "content": "hi"}])
    assert info.value.kind == "status" and info.value.status == 429 and "rate limited" in info.value.message
    with pytest.raises(ModelError) as info:
        await client.complete_chat([{"role": "user", "content": "hi"}])
    assert info.value.kind == "timeout"
    with pytest.raises(ModelError) as info:
        _ = [c async for c in client.stream_chat([{"role": "user", "content": "hi"}])]
    assert info.value.kind == "response"
    await registry.aclose()
