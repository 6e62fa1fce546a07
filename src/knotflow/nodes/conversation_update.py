"""Update conversation (51): rename a conversation a node created.

As Coze Studio: only in an app's run; a template's name fails (720702250: templates are fixed); a name that
stands for nothing gives `{isSuccess: false, isExisted: false, conversationId: "0"}`; a new name already taken
gives that conversation's id with `isExisted: true`, `isSuccess: false`; otherwise the name moves and the node
outputs the conversation's id with `isSuccess: true`.
"""

from __future__ import annotations

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.nodes._conversation import INVALID_OPERATION, app_conversations, fail, text


class ConversationUpdateNode(Node):
    type_id = "51"
    display_key = "ConversationUpdate"

    async def run(self, ctx: NodeContext) -> NodeResult:
        svc = app_conversations(self, ctx)
        name = text(self, ctx.inputs, "conversationName")
        new_name = text(self, ctx.inputs, "newConversationName")
        if await svc.is_template(name):
            raise fail(self, INVALID_OPERATION)
        outcome, conversation_id = await svc.rename(name, new_name)
        return NodeResult({"isSuccess": outcome == "renamed", "isExisted": outcome == "taken",
                           "conversationId": conversation_id or "0"})
