"""Edit message (56): replace a message's text.

As Coze Studio: a messageId that is not a number, or a message that does not exist, fails (777777781 "Message
node operation failure: message not found"); the same text succeeds without writing. Then the conversation is
resolved as the message nodes do (none: `isSuccess: false`), and a message of another conversation is not found
either (Studio does not check; knotflow does).
"""

from __future__ import annotations

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.nodes._conversation import MESSAGE_FAILURE, conversations, fail, message_conversation, message_id, text


class EditMessageNode(Node):
    type_id = "56"
    display_key = "EditMessage"

    async def run(self, ctx: NodeContext) -> NodeResult:
        svc = conversations(self, ctx)
        name = text(self, ctx.inputs, "conversationName")
        wanted = message_id(self, ctx.inputs, MESSAGE_FAILURE)
        content = text(self, ctx.inputs, "newContent")
        if not svc.app_id:
            conversation_id = await message_conversation(self, svc, name)
            if conversation_id is None:
                return NodeResult({"isSuccess": False})
        message = await svc.message(wanted)
        if message is None:
            raise fail(self, MESSAGE_FAILURE, "message not found")
        if message.content == content:
            return NodeResult({"isSuccess": True})
        conversation_id = await message_conversation(self, svc, name)
        if conversation_id is None:
            return NodeResult({"isSuccess": False})
        if not await svc.edit_message(conversation_id, wanted, content):
            raise fail(self, MESSAGE_FAILURE, "message not found")
        return NodeResult({"isSuccess": True})
