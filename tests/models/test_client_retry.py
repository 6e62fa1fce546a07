"""Connection errors before the provider's answer are retried (a keep-alive connection closed as it is reused);
once the answer has started nothing is retried, so no token is delivered twice."""

from __future__ import annotations

import pytest

from knotflow.models import Chunk, ModelError
from knotflow.models.client import ModelClient
from knotflow.models.registry import ModelEntry, ModelRegistry
from tests.fakes.model_server import FakeModelServer, Reply, model_server

__all__ = ["model_server"]  # the fixture, imported so pytest finds it here

HI = [{"role": "user", "content": "hi"}]


def client_for(registry: ModelRegistry) -> ModelClient:
    client: ModelClient = registry.client(registry.resolve(1, None))
    return client


def registry_with_retries(server: FakeModelServer, max_retries: int | None) -> ModelRegistry:
    extra = {} if max_retries is None else {"max_retries": max_retries}
    return ModelRegistry([ModelEntry(model_type=1, base_url=server.base_url, model="fake-model", timeout=5.0,
                                     **extra)])


def test_two_retries_by_default() -> None:
    assert ModelEntry(model_type=1, base_url="http://127.0.0.1:1/v1", model="m").max_retries == 2


async def test_a_reused_connection_closed_by_the_provider_is_retried(model_server: FakeModelServer) -> None:
    # The first answer leaves its connection in the pool; the provider closes it when the next request arrives on
    # it, as a provider does when its idle timeout races the reuse.
    model_server.script(Reply(content="first"), Reply(drop_after=0), Reply(content="second", usage=(3, 1)),
                        Reply(drop_after=0), Reply(content=["str", "eamed"]))
    registry = registry_with_retries(model_server, None)
    client = client_for(registry)
    try:
        assert (await client.complete_chat(HI)).content == "first"
        completion = await client.complete_chat(HI)
        assert completion.content == "second"
        assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3, 1)
        chunks = [c async for c in client.stream_chat(HI)]
        assert "".join(c.content for c in chunks) == "streamed"
        assert len(model_server.requests) == 5
        assert model_server.requests[3] == model_server.requests[4]  # the same request, sent again
    finally:
        await registry.aclose()


async def test_retries_stop_at_max_retries(model_server: FakeModelServer) -> None:
    model_server.script(*[Reply(drop_after=0)] * 3, Reply(content="never asked"))
    registry = registry_with_retries(model_server, 1)
    client = client_for(registry)
    try:
        with pytest.raises(ModelError) as info:
            await client.complete_chat(HI)
        assert info.value.kind == "connection" and "cannot reach the model endpoint" in info.value.message
        assert len(model_server.requests) == 2  # the first try and one retry
    finally:
        await registry.aclose()


async def test_no_retry_when_configured_off(model_server: FakeModelServer) -> None:
    model_server.script(Reply(drop_after=0), Reply(content="never asked"))
    registry = registry_with_retries(model_server, 0)
    client = client_for(registry)
    try:
        with pytest.raises(ModelError) as info:
            _ = [c async for c in client.stream_chat(HI)]
        assert info.value.kind == "connection"
        assert len(model_server.requests) == 1
    finally:
        await registry.aclose()


async def test_a_connection_lost_mid_answer_is_not_retried(model_server: FakeModelServer) -> None:
    model_server.script(Reply(content=["one ", "two ", "three"], drop_after=2), Reply(content="must not be asked"))
    registry = registry_with_retries(model_server, 2)
    client = client_for(registry)
    received: list[Chunk] = []
    try:
        with pytest.raises(ModelError) as info:
            async for chunk in client.stream_chat(HI):
                received.append(chunk)
        assert info.value.kind == "connection"
        assert "".join(c.content for c in received) == "one two "
        assert len(model_server.requests) == 1
        assert model_server.streams == ["aborted"]
    finally:
        await registry.aclose()


async def test_a_refused_connection_is_retried_then_reported(model_server: FakeModelServer) -> None:
    model_server.stop()  # nothing listens on the port any more
    registry = registry_with_retries(model_server, 2)
    client = client_for(registry)
    try:
        with pytest.raises(ModelError) as info:
            await client.complete_chat(HI)
        assert info.value.kind == "connection" and "cannot reach the model endpoint" in info.value.message
    finally:
        await registry.aclose()
