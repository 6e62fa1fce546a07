"""What a token may see and do: which workflows, runs (and their node executions and traces), conversations,
files, bots and apps (and their variables), through which connector. Every route and service asks here, so the
rules are read in one place.

A token reaches the spaces it lists (all of them when it lists none) and holds permissions (`PERMISSIONS`).
Whatever belongs to a space the token cannot use — a workflow, a run, a file, a conversation, the space itself —
is reported as absent (4200), exactly as an unknown id is: ids are time-ordered, hence guessable, and a different
answer would confirm that one exists. Runs and conversations belong to one connector (channel) too: one made
through another connector is absent as well. A missing permission is 4101, checked before anything is looked up.

The web console signs a person in with a token and applies the same rules; importing and publishing there need
`edit` too (`check_edit`).
"""

from __future__ import annotations

from knotflow.errors import ConversationNotFound, NotFound, PermissionDenied
from knotflow.store.records import PERMISSION_RUN, BotApp, Conversation, Run, StoredFile, Token, Workflow
from knotflow.store.repository import Store

# What each permission allows (a token holds a list of them, `knotflow token create --permission`). As Coze's
# token permissions, reading and running are separate; running includes reading what one ran.
PERMISSION_READ = "read"
PERMISSION_EDIT = "edit"
PERMISSIONS = {
    PERMISSION_READ: "list and read workflows and their versions, run histories, node executions, traces, files",
    PERMISSION_RUN: "everything `read` allows, and run and resume workflows, chat, upload files, create "
                    "conversations, set users' variables",
    PERMISSION_EDIT: "import canvases and publish drafts in the web console (seeing them needs `read` or `run`)",
}


def check_permission(token: Token, permission: str) -> None:
    """Asked before anything is looked up, so a token without the permission learns nothing of what exists."""
    if not (token.can(permission) or (permission == PERMISSION_READ and token.can(PERMISSION_RUN))):
        raise PermissionDenied(f"the token lacks the '{permission}' permission")


def visible_space(token: Token, space_id: str) -> None:
    """A space the caller names; one the token cannot use is reported as absent, as an unknown one is."""
    if not token.can_access(space_id):
        raise NotFound(f"space {space_id} does not exist")


def listable_spaces(token: Token, workspace_id: str | None) -> list[str] | None:
    """The spaces a workflow listing covers: the named workspace, else every space of the token (None: all)."""
    if workspace_id:
        visible_space(token, workspace_id)
        return [workspace_id]
    return token.space_ids


def check_edit(token: Token, space_id: str) -> None:
    """Importing a canvas into a space, or publishing a workflow of it (the console)."""
    check_permission(token, PERMISSION_EDIT)
    visible_space(token, space_id)


def visible_workflow(token: Token, workflow: Workflow | None, workflow_id: str) -> Workflow:
    if workflow is None or not token.can_access(workflow.space_id):
        raise NotFound(f"workflow {workflow_id} does not exist")
    return workflow


def visible_run(token: Token, run: Run | None, what: str, *, workflow_id: str | None = None,
                connector_id: str | None = None) -> Run:
    """A run (its history, node executions, trace, questions) seen through `connector_id`: channels' records are
    isolated, so a run made through another connector, of another workflow or of a space the token cannot use is
    reported as `what` not existing."""
    if (run is None or (workflow_id is not None and run.workflow_id != workflow_id)
            or (connector_id is not None and run.connector_id != connector_id)
            or not token.can_access(run.space_id)):
        raise NotFound(f"{what} does not exist")
    return run


def visible_bot_app(token: Token, record: BotApp | None, kind: str, owner_id: str) -> BotApp:
    """A bot or app the caller names (its conversations, variables): one of a space the token cannot use is
    absent, as an unknown one is."""
    if record is None or not token.can_access(record.space_id):
        raise NotFound(f"{kind} {owner_id} does not exist")
    return record


def visible_file(token: Token, record: StoredFile | None, file_id: str) -> StoredFile:
    if record is None or not token.can_access(record.space_id):
        raise NotFound(f"file {file_id} does not exist")
    return record


def file_usable(token: Token, record: StoredFile) -> bool:
    """Whether a run started with this token may take the file as a parameter."""
    return token.can_access(record.space_id)


def visible_conversation(token: Token, conversation: Conversation | None, conversation_id: str, *, space_id: str,
                         connector_id: str) -> Conversation:
    """A conversation a chat of a workflow in `space_id` may continue through `connector_id`."""
    if (conversation is None or conversation.space_id != space_id or conversation.connector_id != connector_id
            or not token.can_access(conversation.space_id)):
        raise NotFound(f"conversation {conversation_id} does not exist in the workflow's space for connector "
                       f"{connector_id}")
    return conversation


def reachable_conversation(token: Token, conversation: Conversation | None, conversation_id: str, *,
                           connector_id: str) -> Conversation:
    """A conversation the open API may read or change by its id: in a space the token can use, made through
    `connector_id` (channels' conversations are isolated, as runs are)."""
    if conversation is None or conversation.connector_id != connector_id or not token.can_access(conversation.space_id):
        raise ConversationNotFound(f"conversation {conversation_id} does not exist for connector {connector_id}")
    return conversation


async def token_space(store: Store, token: Token) -> str:
    """The space a request that names none works in (an upload, a conversation created on its own): the token's
    first space, or the default space for a token that may use every space."""
    if token.space_ids is None:
        return (await store.ensure_space()).id
    if not token.space_ids:
        raise PermissionDenied("the token has no access to any space")
    # ensure_space: a token may name a space that has no row yet, and rows that belong to a space reference it.
    return (await store.ensure_space(token.space_ids[0])).id
