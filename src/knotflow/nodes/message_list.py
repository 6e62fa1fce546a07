"""Message list (37): a page of a conversation's questions and answers.

As Coze Studio: in an app's run the name is resolved without creating anything; without an app only "Default"
is allowed (else 720712033), the bot's chat's own conversation. No conversation: an empty page. `limit` is 1 to
50 (anything else: 50); `beforeId` pages towards newer messages (oldest first), `afterId` towards older ones
(newest first), neither gives the newest first; both at once is 720702001. Outputs `messageList` (messageId,
role, contentType, content), `firstId`, `lastId`, `hasMore`.
"""

from __future__ import annotations

from typing import Any

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.nodes._conversation import (
    INVALID_OPERATION,
    INVALID_PARAMETER,
    conversations,
    fail,
    message_conversation,
    text,
)

MAX_LIMIT = 50
EMPTY: dict[str, Any] = {"messageList": [], "firstId": "0", "lastId": "0", "hasMore": False}


class MessageListNode(Node):
    type_id = "37"
    display_key = "MessageList"

    async def run(self, ctx: NodeContext) -> NodeResult:
        svc = conversations(self, ctx)
        inputs = ctx.inputs
        name = text(self, inputs, "conversationName", INVALID_OPERATION)
        conversation_id = await message_conversation(self, svc, name)
        if conversation_id is None:
            return NodeResult(dict(EMPTY))
        limit = inputs.get("limit")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= MAX_LIMIT:
            limit = MAX_LIMIT
        before_id, after_id = text(self, inputs, "beforeId"), text(self, inputs, "afterId")
        if before_id and after_id:
            raise fail(self, INVALID_PARAMETER, "beforeId and afterId cannot be set at the same time")
        page = await svc.messages(conversation_id, limit=limit, before_id=before_id, after_id=after_id)
        if page is None:
            raise fail(self, INVALID_PARAMETER, f"message {before_id or after_id} is not in the conversation")
        listed = [{"messageId": m.id, "role": m.role, "contentType": m.content_type, "content": m.content}
                  for m in page.messages]
        return NodeResult({"messageList": listed, "firstId": listed[0]["messageId"] if listed else "",
                           "lastId": listed[-1]["messageId"] if listed else "", "hasMore": page.has_more})
