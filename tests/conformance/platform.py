"""Conformance cases of the platform nodes (conversations, messages, databases): what the harness needs to run
them on knotflow's real services instead of Coze Studio's mocks.

Coze Studio's tests mock the conversation, message and agent-run services and assert ids those mocks made up
(`<cID>`, `<mID>`). Here the run's conversations are knotflow's own (a fresh SQLite store per case, the app or
bot the case's mode names, its templates defined first), so an expected `<…ID…>` stands for "the id knotflow
gave": any positive numeric id. The one database case mocks the custom SQL service's answer (Studio's row count
for a SELECT is its mock's); it is served by `MockDatabase`.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from knotflow.contract import Condition, Rows, RunServices, TableFieldInfo
from knotflow.files.links import FileLinks
from knotflow.service.conversations import RunConversations
from knotflow.service.message_content import MessageContent
from knotflow.store.migrate import upgrade
from knotflow.store.repository import Store

PLATFORM_NEEDS = frozenset({"conversation", "message", "agent_run", "conversation_platform", "database"})
PLATFORM_MOCKS = frozenset({"conversation", "message", "agent_run", "database"})
SPACE, CONNECTOR = "1", "1024"

# Cases that only hold with Studio's mocks: a real store cannot answer what the mock made up.
MOCK_ONLY = {
    "conversation_history_blank": "Studio's mock says the conversation has no rounds right after the run wrote "
                                  "one (GetLatestRunIDs → []); a real store has the round (see "
                                  "conversation_history_dynamic)",
}

_ID = re.compile(r"<[A-Za-z]+ID(?: as string)?>")
_SCOPE = re.compile(r"\((app|bot) ([^)]+)\)")


def is_platform(case: dict[str, Any]) -> bool:
    return bool(set(case.get("needs") or []) & PLATFORM_NEEDS)


def run_scope(case: dict[str, Any]) -> tuple[str, str]:
    """(app id, bot id) the case's mode names: "test_run (app 123)", "(bot 123)", "(no app/bot)"."""
    match = _SCOPE.search(case["mode"])
    if match is None:
        return "", ""
    owner = match.group(2).strip()
    owner = "7" + "0" * 18 if _ID.fullmatch(owner) else owner  # an app id Studio's mock made up
    return (owner, "") if match.group(1) == "app" else ("", owner)


def adjust_expectation(case: dict[str, Any], expect: dict[str, Any]) -> dict[str, Any]:
    """Where knotflow differs from Studio's test set-up on purpose. conversation_list_dynamic: Studio's test app
    was never created as an app, so it lacks the "Default" template every app has; knotflow's apps always have
    it, listed first and never used ("0")."""
    if case["id"] == "conversation_list_dynamic":
        return {**expect, "output_text_json": [{"conversationName": "Default", "conversationId": "0"},
                                               *expect["output_text_json"]]}
    return expect


def fill_ids(expected: Any, actual: Any) -> Any:
    """`expected` with each `<…ID…>` placeholder replaced by the value knotflow produced at the same place, when
    that value is a positive numeric id (otherwise the placeholder stays, and the comparison fails)."""
    if isinstance(expected, str) and _ID.fullmatch(expected):
        ok = isinstance(actual, str) and actual.isdigit() and int(actual) > 0
        return actual if ok else expected
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return {key: fill_ids(value, actual.get(key)) for key, value in expected.items()}
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [fill_ids(e, a) for e, a in zip(expected, actual, strict=True)]
    return expected


class MockDatabase:
    """The `database` mock of a case: custom SQL answers with the mock's objects and row number."""

    def __init__(self, mock: dict[str, Any]) -> None:
        answer = next(iter(mock.values()))["returns"]
        self.rows = Rows([dict(row) for row in answer.get("objects") or []], answer.get("row_number"))

    async def fields(self, table_id: str) -> list[TableFieldInfo]:
        return []

    async def execute(self, table_ids: Sequence[str], sql: str, params: Sequence[Any]) -> Rows:
        return self.rows

    async def select(self, table_id: str, *, field_ids: Sequence[str], condition: Condition | None,
                     order_by: Sequence[tuple[str, bool]], limit: int) -> Rows:
        raise AssertionError("the case mocks custom SQL only")

    async def insert(self, table_id: str, values: Mapping[str, Any]) -> Rows:
        raise AssertionError("the case mocks custom SQL only")

    async def update(self, table_id: str, condition: Condition, values: Mapping[str, Any]) -> Rows:
        raise AssertionError("the case mocks custom SQL only")

    async def delete(self, table_id: str, condition: Condition) -> Rows:
        raise AssertionError("the case mocks custom SQL only")


@asynccontextmanager
async def platform_services(case: dict[str, Any], services: RunServices) -> AsyncIterator[None]:
    """Fill `services` with the case's conversations (a fresh store) and database mock, for the `with` block."""
    database = (case.get("mocks") or {}).get("database")
    if database:
        services.database = MockDatabase(database)
    with tempfile.TemporaryDirectory(prefix="knotflow-conformance-") as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'knotflow.db'}"
        upgrade(url)
        store = await Store.open(url)
        try:
            await store.ensure_space(SPACE)
            app_id, bot_id = run_scope(case)
            template = ((case.get("mocks") or {}).get("conversation") or {})
            if isinstance(template, dict) and template.get("template_defined_first") and app_id:
                await store.add_template(app_id, template["template_defined_first"])
            links = FileLinks("http://127.0.0.1:1", b"conformance", 3600)
            services.conversations = RunConversations(store, MessageContent(store, links), space_id=SPACE,
                                                      app_id=app_id, bot_id=bot_id, connector_id=CONNECTOR)
            yield
        finally:
            await store.close()
