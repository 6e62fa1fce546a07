"""Every denial of the access rules (service/access.py), one test each; the API tests show the same answers on
the wire."""

from __future__ import annotations

import pytest

from knotflow.errors import NotFound, PermissionDenied
from knotflow.service import access
from knotflow.store.records import RUN_MODE_STREAM, RUNNING, Conversation, Run, StoredFile, Token, Workflow
from knotflow.store.repository import Store

SPACE, OTHER = "11", "22"


def token(spaces: list[str] | None = None, permissions: tuple[str, ...] = ("run",)) -> Token:
    return Token(id="1", name="t", permissions=list(permissions), space_ids=spaces, created_at=0)


def workflow(space: str = SPACE) -> Workflow:
    return Workflow(id="7", space_id=space, name="w", description="", icon_url="", app_id=None,
                    requires_bot=False, mode="workflow", canvas={}, created_at=0, updated_at=0)


def run(space: str = SPACE, connector: str = "1024") -> Run:
    return Run(execute_id="9", workflow_id="7", version="v1", space_id=space, run_mode=RUN_MODE_STREAM,
               status=RUNNING, connector_id=connector)


def stored_file(space: str = SPACE) -> StoredFile:
    return StoredFile(id="5", space_id=space, file_name="f.txt", bytes=1, content_type="text/plain", created_at=0)


def conversation(space: str = SPACE, connector: str = "1024") -> Conversation:
    return Conversation(id="3", space_id=space, connector_id=connector, name="", meta_data={}, creator_id="1",
                        created_at=0, updated_at=0)


def test_each_permission_allows_its_own_and_run_allows_reading() -> None:
    access.check_permission(token(permissions=("run",)), access.PERMISSION_RUN)
    access.check_permission(token(permissions=("run",)), access.PERMISSION_READ)
    access.check_permission(token(permissions=("read",)), access.PERMISSION_READ)
    with pytest.raises(PermissionDenied, match="lacks the 'run' permission"):
        access.check_permission(token(permissions=("read",)), access.PERMISSION_RUN)
    with pytest.raises(PermissionDenied, match="lacks the 'read' permission"):
        access.check_permission(token(permissions=()), access.PERMISSION_READ)


def test_a_workflow_of_another_space_is_absent_like_an_unknown_one() -> None:
    with pytest.raises(NotFound, match="workflow 7 does not exist"):
        access.visible_workflow(token([OTHER]), workflow(), "7")
    with pytest.raises(NotFound, match="workflow 7 does not exist"):
        access.visible_workflow(token([OTHER]), None, "7")
    assert access.visible_workflow(token(None), workflow(), "7").id == "7"  # no space list: every space


def test_a_run_of_another_space_channel_or_workflow_is_absent() -> None:
    assert access.visible_run(token([SPACE]), run(), "run 9", workflow_id="7", connector_id="1024").execute_id == "9"
    denied = [
        (token([OTHER]), run(), "7", "1024"),  # another space
        (token([SPACE]), run(connector="999"), "7", "1024"),  # another channel
        (token([SPACE]), run(), "8", "1024"),  # another workflow
        (token([SPACE]), None, "7", "1024"),  # unknown
    ]
    for caller, candidate, workflow_id, connector in denied:
        with pytest.raises(NotFound, match="run 9 does not exist"):
            access.visible_run(caller, candidate, "run 9", workflow_id=workflow_id, connector_id=connector)
    # The trace names no workflow: any workflow's run, of the caller's channel.
    assert access.visible_run(token([SPACE]), run(), "run 9", connector_id="1024").execute_id == "9"


def test_a_space_the_token_cannot_use_is_absent() -> None:
    with pytest.raises(NotFound, match="space 22 does not exist"):
        access.visible_space(token([SPACE]), OTHER)
    with pytest.raises(NotFound, match="space 22 does not exist"):
        access.listable_spaces(token([SPACE]), OTHER)
    assert access.listable_spaces(token([SPACE]), SPACE) == [SPACE]
    assert access.listable_spaces(token([SPACE, OTHER]), None) == [SPACE, OTHER]
    assert access.listable_spaces(token(None), None) is None


def test_a_file_of_another_space_is_absent_like_an_unknown_one() -> None:
    with pytest.raises(NotFound, match="file 5 does not exist"):
        access.visible_file(token([OTHER]), stored_file(), "5")
    with pytest.raises(NotFound, match="file 6 does not exist"):
        access.visible_file(token([SPACE]), None, "6")
    assert not access.file_usable(token([OTHER]), stored_file())
    assert access.file_usable(token([SPACE]), stored_file())


def test_a_conversation_of_another_space_or_channel_is_absent() -> None:
    found = access.visible_conversation(token([SPACE]), conversation(), "3", space_id=SPACE, connector_id="1024")
    assert found.id == "3"
    denied = [
        (token([SPACE]), conversation(connector="999"), SPACE),  # another channel
        (token([SPACE]), conversation(space=OTHER), SPACE),  # not the workflow's space
        (token([SPACE]), conversation(space=OTHER), OTHER),  # a space the token cannot use
        (token([SPACE]), None, SPACE),  # unknown
    ]
    for caller, candidate, space in denied:
        with pytest.raises(NotFound, match="conversation 3 does not exist"):
            access.visible_conversation(caller, candidate, "3", space_id=space, connector_id="1024")


async def test_a_token_without_spaces_has_no_space_to_work_in(store: Store) -> None:
    with pytest.raises(PermissionDenied, match="no access to any space"):
        await access.token_space(store, token([]))
    assert await access.token_space(store, token([OTHER])) == OTHER
    default = await access.token_space(store, token(None))
    assert default == (await store.ensure_space()).id


# --- the console ---------------------------------------------------------------------------------------------
def test_importing_or_publishing_needs_the_edit_permission_and_the_space() -> None:
    with pytest.raises(PermissionDenied, match="lacks the 'edit' permission"):
        access.check_edit(token([SPACE]), SPACE)
    with pytest.raises(NotFound, match=f"space {OTHER} does not exist"):
        access.check_edit(token([SPACE], permissions=("edit",)), OTHER)
    access.check_edit(token([SPACE], permissions=("edit",)), SPACE)
