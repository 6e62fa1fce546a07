"""Create message (55): write a text message into a conversation.

As Coze Studio: `role` is user or assistant (else 720702001). In an app's run a template's conversation is
created on first use, any other name must already stand for one; without an app only "Default" (the bot's
chat's own conversation) is allowed (else 720712033). No conversation: `isSuccess: false` with messageId "0".
A user's message opens a new round; an assistant's joins the run's round in its own conversation, else the
conversation's latest round. Outputs `isSuccess` and `message {messageId, role, contentType, content}`.
"""

from __future__ import annotations

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.nodes._conversation import INVALID_PARAMETER, conversations, fail, message_conversation, text


class CreateMessageNode(Node):
    type_id = "55"
    display_key = "CreateMessage"

    async def run(self, ctx: NodeContext) -> NodeResult:
        svc = conversations(self, ctx)
        name = text(self, ctx.inputs, "conversationName")
        role = text(self, ctx.inputs, "role")
        if role not in ("user", "assistant"):
            raise fail(self, INVALID_PARAMETER, "role must be user or assistant")
        content = text(self, ctx.inputs, "content")
        conversation_id = await message_conversation(self, svc, name, create_template=True)
        created = await svc.add_message(conversation_id, role, content) if conversation_id is not None else None
        return NodeResult({"isSuccess": created is not None,
                           "message": {"messageId": created or "0", "role": role, "contentType": "text",
                                       "content": content}})
