"""The LLM node's chat history: which setting decides, how many rounds, and where they go in the prompt."""

from __future__ import annotations

from typing import Any

from knotflow.contract import ChatHistory, RunServices
from knotflow.engine.runner import Execution
from knotflow.nodes._llm_params import parse_llm_params
from knotflow.nodes.llm import history_rounds
from tests.fakes.model_server import FakeModelServer, Reply, model_server, registry_for
from tests.node_types import compile_canvas
from tests.nodes.test_llm import llm_node, through_llm

__all__ = ["model_server"]


def inputs(enable: bool | None, rounds: str = "3", setting: dict[str, Any] | None = None) -> dict[str, Any]:
    node = llm_node()
    history_flags = ("enableChatHistory", "chatHistoryRound")
    params = [p for p in node["data"]["inputs"]["llmParam"] if p["name"] not in history_flags]
    if enable is not None:
        params.append({"name": "enableChatHistory", "input": {"type": "boolean", "value": {"type": "literal",
                                                                                            "content": enable}}})
        params.append({"name": "chatHistoryRound", "input": {"type": "integer", "value": {"type": "literal",
                                                                                           "content": rounds}}})
    result: dict[str, Any] = {"llmParam": params}
    if setting is not None:
        result["chatHistorySetting"] = setting
    return result


def rounds_for(raw: dict[str, Any]) -> int:
    return history_rounds(parse_llm_params(raw["llmParam"], "test"), raw)


def test_llm_param_flags_decide_over_the_editor_setting() -> None:
    assert rounds_for(inputs(True, "5")) == 5
    assert rounds_for(inputs(False, "5", {"enableChatHistory": True, "chatHistoryRound": 4})) == 0
    assert rounds_for(inputs(None, setting={"enableChatHistory": True, "chatHistoryRound": 4})) == 4
    assert rounds_for(inputs(None)) == 0
    assert rounds_for(inputs(True, "0")) == 3  # Coze's default
    assert rounds_for(inputs(True, "99")) == 30  # Coze's editor maximum


async def test_history_goes_between_system_and_user_prompt(model_server: FakeModelServer) -> None:
    node = llm_node(system="sys")
    for param in node["data"]["inputs"]["llmParam"]:
        if param["name"] == "enableChatHistory":
            param["input"]["value"]["content"] = True
        elif param["name"] == "chatHistoryRound":
            param["input"]["value"]["content"] = "1"
    plan = compile_canvas(through_llm(node))
    history = ChatHistory([[{"role": "user", "content": "old"}, {"role": "assistant", "content": "older"}],
                           [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]])
    model_server.script(Reply(content="x"), Reply(content="y"))
    services = RunServices(models=registry_for(model_server), chat_history=history)
    await Execution(plan, services=services).run({"input": "now"})
    assert model_server.requests[-1]["messages"] == [
        {"role": "system", "content": "sys"}, {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a"}, {"role": "user", "content": "now"}]
    # Outside a conversation (a plain workflow run) there is no history to send.
    await Execution(plan, services=RunServices(models=registry_for(model_server))).run({"input": "now"})
    assert model_server.requests[-1]["messages"][1:] == [{"role": "user", "content": "now"}]
