"""Clear conversation history (38): start a new section of a conversation (messages stay; history reads only
the new section), as the open API's clear does. An unknown name gives `isSuccess: false`. In a chat's own
conversation the rest of the run reads and writes the new section."""

from __future__ import annotations

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.nodes._conversation import app_conversations, by_name, text


class ClearConversationHistoryNode(Node):
    type_id = "38"
    display_key = "ClearConversationHistory"

    async def run(self, ctx: NodeContext) -> NodeResult:
        svc = app_conversations(self, ctx)
        conversation_id = await by_name(svc, text(self, ctx.inputs, "conversationName"))
        if conversation_id is None:
            return NodeResult({"isSuccess": False})
        return NodeResult({"isSuccess": await svc.clear(conversation_id)})
