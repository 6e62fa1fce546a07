"""Conversation history (54): the messages of a conversation's last `rounds` rounds in its current section.

As Coze Studio: only in an app's run; the name is resolved without creating anything (unknown: 720702201);
`rounds` 0 (or missing) means every round; a chat's own round, and rounds started after it, are not history.
Each message is `{role, content}`, content as text (a multimodal message's texts, then its files' URLs).
"""

from __future__ import annotations

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.nodes._conversation import (
    CONVERSATION_NOT_FOUND,
    INVALID_PARAMETER,
    app_conversations,
    by_name,
    fail,
    text,
)


class ConversationHistoryNode(Node):
    type_id = "54"
    display_key = "ConversationHistory"

    async def run(self, ctx: NodeContext) -> NodeResult:
        svc = app_conversations(self, ctx)
        name = text(self, ctx.inputs, "conversationName")
        rounds = ctx.inputs.get("rounds") or 0
        if not isinstance(rounds, int) or isinstance(rounds, bool):
            raise fail(self, INVALID_PARAMETER, "rounds must be an integer")
        conversation_id = await by_name(svc, name)
        if conversation_id is None:
            raise fail(self, CONVERSATION_NOT_FOUND, f"the conversation name does not exist: {name!r}")
        messages = await svc.history(conversation_id, rounds if rounds > 0 else None)
        return NodeResult({"messageList": [{"role": m.role, "content": m.content} for m in messages]})
