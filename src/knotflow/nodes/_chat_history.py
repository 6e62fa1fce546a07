"""A conversation's earlier rounds, as a chatflow run hands them to its nodes (`RunServices.extra`).

Only a run that belongs to a conversation (`/v1/workflows/chat`) has a history; a plain workflow run has none,
and a node that asks for it gets nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from knotflow.models.client import Message

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
