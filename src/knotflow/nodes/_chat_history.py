"""How many of a conversation's earlier rounds a node sends its model (the rounds themselves come from
`RunServices.chat_history`, which only a run inside a conversation has)."""

from __future__ import annotations

from typing import Any

from knotflow.contract import MAX_HISTORY_ROUNDS
from knotflow.nodes._llm_params import LLMParams

DEFAULT_ROUNDS = 3  # Coze Studio's editor default


def history_rounds(llm: LLMParams, inputs: dict[str, Any]) -> int:
    """How many earlier rounds of the conversation an LLM node sends (0: none): `llmParam`'s
    enableChatHistory/chatHistoryRound when it has them, else the editor's `chatHistorySetting` (as Studio)."""
    raw = inputs.get("llmParam")
    names = {item.get("name") for item in raw if isinstance(item, dict)} if isinstance(raw, list) else set(raw or ())
    if "enableChatHistory" in names:
        return _rounds(llm.enable_chat_history, llm.chat_history_round)
    return setting_rounds(inputs.get("chatHistorySetting"))


def setting_rounds(setting: Any) -> int:
    """The rounds an editor's `chatHistorySetting` ({enableChatHistory, chatHistoryRound}) asks for (0: none)."""
    setting = setting if isinstance(setting, dict) else {}
    try:
        rounds = int(setting.get("chatHistoryRound") or 0)
    except (TypeError, ValueError):
        rounds = 0
    return _rounds(setting.get("enableChatHistory") is True, rounds)


def _rounds(enabled: bool, rounds: int) -> int:
    if not enabled:
        return 0
    return min(rounds, MAX_HISTORY_ROUNDS) if rounds > 0 else DEFAULT_ROUNDS
