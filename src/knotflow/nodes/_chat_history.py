"""A conversation's earlier rounds, as a chatflow run hands them to its nodes (`RunServices.extra`).

Only a run that belongs to a conversation (`/v1/workflows/chat`) has a history; a plain workflow run has none,
and a node that asks for it gets nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from knotflow.models.client import Message
from knotflow.nodes._llm_params import LLMParams

CHAT_HISTORY = "chat_history"  # the key in RunServices.extra
MAX_ROUNDS = 30  # Coze Studio's editor allows 1 to 30 rounds
DEFAULT_ROUNDS = 3  # Coze Studio's editor default


@dataclass(slots=True)
class ChatHistory:
    """The rounds before the current one, oldest first; a round is the user's message and the answers to it."""

    rounds: Sequence[Sequence[Message]] = field(default_factory=list)

    def last(self, count: int) -> list[Message]:
        """The messages of the last `count` rounds, in order."""
        if count <= 0:
            return []
        return [message for round_ in self.rounds[-count:] for message in round_]


def chat_history_of(services: Any) -> ChatHistory | None:
    extra = getattr(services, "extra", None)
    history = extra.get(CHAT_HISTORY) if isinstance(extra, dict) else None
    return history if isinstance(history, ChatHistory) else None


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
    return min(rounds, MAX_ROUNDS) if rounds > 0 else DEFAULT_ROUNDS
