"""Create conversation (39): the conversation a name stands for in the run's app, created on first use.

As Coze Studio: only in an app's run (a bot's, or one without app, fails with 702093204); a template's name gives
the template's conversation, any other name one of the names nodes create. Outputs `isSuccess`, `isExisted`
(the name already stood for a conversation) and `conversationId`.
"""

from __future__ import annotations

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.nodes._conversation import app_conversations, text


class CreateConversationNode(Node):
    type_id = "39"
    display_key = "CreateConversation"

    async def run(self, ctx: NodeContext) -> NodeResult:
        svc = app_conversations(self, ctx)
        name = text(self, ctx.inputs, "conversationName")
        conversation_id, existed = await svc.get_or_create(name)
        return NodeResult({"isSuccess": True, "isExisted": existed, "conversationId": conversation_id})
