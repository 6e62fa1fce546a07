"""Delete message (57): delete one message of a conversation.

As Coze Studio: a messageId that is not a number fails (720702001); the conversation is resolved without creating
one (none: `isSuccess: false`); a message that is not in it is left alone and the node still succeeds.
"""

from __future__ import annotations

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.nodes._conversation import INVALID_PARAMETER, conversations, message_conversation, message_id, text


class DeleteMessageNode(Node):
    type_id = "57"
    display_key = "DeleteMessage"

    async def run(self, ctx: NodeContext) -> NodeResult:
        svc = conversations(self, ctx)
        name = text(self, ctx.inputs, "conversationName")
        wanted = message_id(self, ctx.inputs, INVALID_PARAMETER)
        conversation_id = await message_conversation(self, svc, name)
        if conversation_id is None:
            return NodeResult({"isSuccess": False})
        await svc.delete_message(conversation_id, wanted)
        return NodeResult({"isSuccess": True})
