"""What the conversation and message nodes share: reaching the run's conversations, Coze Studio's error codes and
messages, and reading their inputs (missing ones are zero values, as Studio's PreFillZero makes them)."""

from __future__ import annotations

from typing import Any

from knotflow.contract import Conversations, Node, NodeContext
from knotflow.errors import NodeError

DEFAULT = "Default"

NODES_NOT_AVAILABLE = 702093204
ONLY_DEFAULT_IN_AGENT = 720712033
INVALID_OPERATION = 720702250
CONVERSATION_NOT_FOUND = 720702201
INVALID_PARAMETER = 720702001
CONVERSATION_FAILURE = 777777782
MESSAGE_FAILURE = 777777781

MESSAGES = {
    NODES_NOT_AVAILABLE: "Conversation nodes are unavailable in agent scenarios and require an app binding.",
    ONLY_DEFAULT_IN_AGENT: "Only default conversation allow in agent scenario",
    INVALID_OPERATION: "Only conversation created through nodes are allowed to be modified or deleted.",
    CONVERSATION_NOT_FOUND: "conversation not found, please check if the application conversation exists",
    INVALID_PARAMETER: "Invalid request parameters. Please check your input and ensure all required fields are "
                       "correctly formatted and within allowed ranges.",
}


def fail(node: Node, code: int, cause: str = "") -> NodeError:
    """Coze Studio's error: its message, with the cause where Studio renders one."""
    if code == CONVERSATION_FAILURE:
        message = f"Conversation node operation failure: {cause}"
    elif code == MESSAGE_FAILURE:
        message = f"Message node operation failure: {cause}"
    else:
        message = MESSAGES[code] + (f" ({cause})" if cause else "")
    return NodeError(message, internal_code=code, node_id=node.id)


def conversations(node: Node, ctx: NodeContext) -> Conversations:
    found = ctx.services.conversations
    if found is None:
        raise NodeError(f"node '{node.title}' ({node.id}) needs the server's conversations, which this run has "
                        "not", internal_code=CONVERSATION_FAILURE, node_id=node.id)
    return found


def app_conversations(node: Node, ctx: NodeContext) -> Conversations:
    """The run's conversations, for the nodes only an app may use (not a bot's run, not a run without app)."""
    found = conversations(node, ctx)
    if found.bot_id:
        raise fail(node, NODES_NOT_AVAILABLE, "in an agent scenario")
    if not found.app_id:
        raise fail(node, NODES_NOT_AVAILABLE, "the run has no app_id")
    return found


def text(node: Node, inputs: dict[str, Any], name: str, code: int = INVALID_PARAMETER) -> str:
    value = inputs.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise fail(node, code, f"{name} must be a string")
    return value


async def by_name(svc: Conversations, name: str, *, create_template: bool = False) -> str | None:
    """The conversation a name stands for, as the message nodes resolve it: a template's (created on first use
    when `create_template`), else one a node created; never created otherwise."""
    if create_template and await svc.is_template(name):
        return (await svc.get_or_create(name))[0]
    return await svc.find(name)


async def message_conversation(node: Node, svc: Conversations, name: str, *,
                               create_template: bool = False) -> str | None:
    """The conversation a message node works in; None when there is none to work in (the node reports
    isSuccess false). Without an app only "Default" is allowed: the bot's chat's own conversation."""
    if not svc.app_id:
        if name != DEFAULT:
            raise fail(node, ONLY_DEFAULT_IN_AGENT, "conversation node only allow in application")
        if not svc.bot_id or svc.conversation_id is None:
            return None
        return svc.conversation_id
    return await by_name(svc, name, create_template=create_template)


def message_id(node: Node, inputs: dict[str, Any], code: int) -> str:
    value = inputs.get("messageId", "")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip().lstrip("-").isdigit():
        raise fail(node, code, f"messageId must be a number, got {value!r}")
    return value.strip()
