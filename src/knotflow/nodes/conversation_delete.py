"""Delete conversation (52): forget a name a node created. As Coze Studio, the name goes and the conversation
with its messages stays; a template's name fails (720702250), an unknown name fails (720702201)."""

from __future__ import annotations

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.nodes._conversation import CONVERSATION_NOT_FOUND, INVALID_OPERATION, app_conversations, fail, text


class ConversationDeleteNode(Node):
    type_id = "52"
    display_key = "ConversationDelete"

    async def run(self, ctx: NodeContext) -> NodeResult:
        svc = app_conversations(self, ctx)
        name = text(self, ctx.inputs, "conversationName")
        if await svc.is_template(name):
            raise fail(self, INVALID_OPERATION)
        if not await svc.forget(name):
            raise fail(self, CONVERSATION_NOT_FOUND, f"the conversation name does not exist: {name!r}")
        return NodeResult({"isSuccess": True})
