"""What a token may see and do: which workflows, runs (and their node executions and traces), conversations
and files, through which connector. Every route and service asks here, so the rules are read in one place.

A token reaches the spaces it lists (all of them when it lists none) and holds permissions (`run`, and `edit`
to import and publish from the console). Runs and
conversations belong to one connector (channel) too: one made through another connector is reported as absent,
like one that does not exist. Files and conversations of a space the token cannot use are reported as absent as
well: their ids are time-ordered, hence guessable, and a different answer would confirm that one exists.

The web console signs a person in with a token and then applies the same rules, with one difference: it reports
workflows and runs of spaces the token cannot use as absent (`visible_workflow`, `visible_run`), since a person
browsing by id should learn nothing of another space.
"""

from __future__ import annotations

from knotflow.errors import NotFound, PermissionDenied
from knotflow.store.records import PERMISSION_EDIT, PERMISSION_RUN, Conversation, Run, StoredFile, Token, Workflow
from knotflow.store.repository import Store


def check_permission(token: Token, permission: str = PERMISSION_RUN) -> None:
    if not token.can(permission):
        raise PermissionDenied(f"the token lacks the '{permission}' permission")


def check_space(token: Token, space_id: str) -> None:
    if not token.can_access(space_id):
        raise PermissionDenied(f"the token has no access to space {space_id}")


def check_workspace(token: Token, workspace_id: str) -> None:
    """A workspace the caller names to list its workflows."""
    if not token.can_access(workspace_id):
        raise PermissionDenied(f"the token has no access to workspace {workspace_id}")


def listable_spaces(token: Token, workspace_id: str | None) -> list[str] | None:
    """The spaces a workflow listing covers: the named workspace, else every space of the token (None: all)."""
    if workspace_id:
        check_workspace(token, workspace_id)
        return [workspace_id]
    return token.space_ids


def check_workflow(token: Token, workflow: Workflow, *, to_run: bool = False) -> None:
    """Reading a workflow needs its space; running it needs the `run` permission too."""
    if not token.can_access(workflow.space_id):
        raise PermissionDenied(f"the token has no access to the space of workflow {workflow.id}")
    if to_run:
        check_permission(token)


def check_run(token: Token, run: Run, *, to_resume: bool = False) -> None:
    """Reading a run (its history, node executions, trace) needs its space; resuming it, `run` too."""
    if not token.can_access(run.space_id):
        raise PermissionDenied(f"the token has no access to the space of run {run.execute_id}")
    if to_resume:
        check_permission(token)


def check_edit(token: Token, space_id: str) -> None:
    """Importing a canvas into a space, or publishing a workflow of it, needs the space and `edit`."""
    check_space(token, space_id)
    check_permission(token, PERMISSION_EDIT)


def visible_workflow(token: Token, workflow: Workflow | None, workflow_id: str) -> Workflow:
    """The console's view of a workflow: one of a space the token cannot use is reported as absent."""
    if workflow is None or not token.can_access(workflow.space_id):
        raise NotFound(f"workflow {workflow_id} does not exist")
    return workflow


def visible_run(token: Token, run: Run | None, execute_id: str) -> Run:
    """The console's view of a run (of any connector): one of a space the token cannot use is reported as
    absent."""
    if run is None or not token.can_access(run.space_id):
        raise NotFound(f"run {execute_id} does not exist")
    return run


def run_in_channel(run: Run | None, *, workflow_id: str | None = None, connector_id: str | None = None) -> bool:
    """Whether `run` exists for this workflow and connector: channels' records are isolated, so a run made
    through another connector (or of another workflow) is not there for this request."""
    if run is None:
        return False
    if workflow_id is not None and run.workflow_id != workflow_id:
        return False
    return connector_id is None or run.connector_id == connector_id


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


async def token_space(store: Store, token: Token) -> str:
    """The space a request that names none works in (an upload, a conversation created on its own): the token's
    first space, or the default space for a token that may use every space."""
    if token.space_ids is None:
        return (await store.ensure_space()).id
    if not token.space_ids:
        raise PermissionDenied("the token has no access to any space")
    # ensure_space: a token may name a space that has no row yet, and rows that belong to a space reference it.
    return (await store.ensure_space(token.space_ids[0])).id
