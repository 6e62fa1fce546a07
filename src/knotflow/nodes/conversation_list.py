"""Conversation list (53): the app's conversations by name, as Coze Studio lists them: every template first
(its conversation's id, "0" while it was never used), then every name a node (or a chat) created."""

from __future__ import annotations

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.nodes._conversation import app_conversations


class ConversationListNode(Node):
    type_id = "53"
    display_key = "ConversationList"

    async def run(self, ctx: NodeContext) -> NodeResult:
        svc = app_conversations(self, ctx)
        return NodeResult({"conversationList": [{"conversationName": name, "conversationId": conversation_id}
                                                for name, conversation_id in await svc.names()]})
