"""The Store contract. Every test runs on every backend (see backends.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from knotflow.ids import new_id
from knotflow.service.catalog import publish_version
from knotflow.service.tokens import create_token
from knotflow.store import tables
from knotflow.store.engine import normalize_url
from knotflow.store.migrate import current_revision, downgrade, head_revision, upgrade, upgrade_async
from knotflow.store.records import (
    FAIL,
    RUN_MODE_STREAM,
    RUNNING,
    SUCCESS,
    NodeExecution,
    Run,
    Workflow,
)
from knotflow.store.repository import PublishStatus, Store
from tests.store.backends import sqlite_url


def canvas(tag: str = "a") -> dict[str, Any]:
    return {"nodes": [{"id": "100001", "type": "1", "data": {"nodeMeta": {"title": tag}}}], "edges": []}


def workflow(
    space_id: str,
    *,
    workflow_id: str | None = None,
    name: str = "wf",
    mode: str = "workflow",
    app_id: str | None = None,
    tag: str = "a",
) -> Workflow:
    return Workflow(
        id=workflow_id or new_id(),
        space_id=space_id,
        name=name,
        description="d",
        icon_url="",
        app_id=app_id,
        requires_bot=False,
        mode=mode,
        canvas=canvas(tag),
        created_at=0,
        updated_at=0,
    )


def run(execute_id: str | None = None, *, status: str = RUNNING, updated_at: float | None = None) -> Run:
    now = time.time()
    return Run(
        execute_id=execute_id or new_id(),
        workflow_id="7",
        version="v0.0.1",
        space_id="1",
        run_mode=RUN_MODE_STREAM,
        status=status,
        connector_uid="u",
        inputs='{"name":"x"}',
        logid="log",
        created_at=now,
        updated_at=now if updated_at is None else updated_at,
    )


def node(execute_id: str, node_id: str, started_at: float) -> NodeExecution:
    return NodeExecution(
        id=new_id(),
        execute_id=execute_id,
        node_id=node_id,
        node_type="End",
        node_title=f"t{node_id}",
        status=SUCCESS,
        inputs='{"a":1}',
        outputs='{"b":"ü"}',
        error=None,
        started_at=started_at,
        finished_at=started_at + 0.5,
    )


# --- opening and migrating ----------------------------------------------------------------------------------
async def test_open_creates_sqlite_directory_in_wal_mode(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "nested")
    store = await Store.open(url)
    try:
        assert (tmp_path / "nested" / "data").is_dir()
        async with store.engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert int((await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() or 0) > 0
    finally:
        await store.close()


async def test_a_url_without_a_driver_gets_the_async_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    upgrade(url)
    store = await Store.open(url)
    try:
        assert store.engine.url.drivername == "sqlite+aiosqlite"
        assert await store.count_tokens() == 0
    finally:
        await store.close()
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert normalize_url("postgresql+asyncpg://u@h/db").drivername == "postgresql+asyncpg"


async def test_migrated_schema_matches_the_tables(store: Store, database_url: str) -> None:
    def diff(connection: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(connection), tables.metadata))

    async with store.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    assert current_revision(database_url) == head_revision() == "0014"


async def test_upgrade_is_idempotent_and_works_inside_a_running_loop(database_url: str) -> None:
    upgrade(database_url)  # a blocking call while this test's loop is running
    await upgrade_async(database_url)
    assert current_revision(database_url) == head_revision()


def test_a_fresh_sqlite_database_is_not_migrated_until_upgrade(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    assert current_revision(url) is None
    upgrade(url)
    assert current_revision(url) == head_revision()


# --- spaces -------------------------------------------------------------------------------------------------
async def test_ensure_space(store: Store) -> None:
    first = await store.ensure_space()
    assert first.name == "Personal" and first.id.isdigit()
    assert await store.ensure_space() == first  # no id: the first space, not a new one
    named = await store.ensure_space("42", name="Team")
    assert (named.id, named.name) == ("42", "Team")
    assert await store.ensure_space("42", name="ignored") == named
    assert await store.ensure_space() == first


# --- files --------------------------------------------------------------------------------------------------
async def test_add_and_get_file(store: Store) -> None:
    space = await store.ensure_space()
    big = 5 * 1024**3  # beyond 32 bits: the column is a BIGINT
    added = await store.add_file("123", space.id, "report.pdf", big, "application/pdf")
    assert (added.id, added.space_id, added.file_name, added.bytes) == ("123", space.id, "report.pdf", big)
    assert await store.get_file("123") == added
    assert await store.get_file("124") is None


# --- workflows ----------------------------------------------------------------------------------------------
async def test_save_workflow_draft_inserts_then_updates_the_draft(store: Store) -> None:
    space = await store.ensure_space()
    other = await store.ensure_space("999")
    created = await store.save_workflow_draft(workflow(space.id, name="first", app_id="app1"))
    assert created.created_at > 0 and created.updated_at >= created.created_at
    assert created.latest_version is None
    assert await store.get_workflow(created.id) == created

    changed = workflow(other.id, workflow_id=created.id, name="second", mode="chatflow", tag="b")
    changed.requires_bot = True
    updated = await store.save_workflow_draft(changed)
    assert (updated.name, updated.mode, updated.app_id, updated.requires_bot) == (
        "second",
        "chatflow",
        None,
        True,
    )
    assert updated.canvas == canvas("b")
    assert updated.space_id == space.id  # the space is not part of the draft
    assert updated.created_at == created.created_at
    assert await store.get_workflow(created.id) == updated
    assert await store.get_workflow("404") is None


async def test_list_workflows_filters_and_pages(store: Store) -> None:
    one = (await store.ensure_space("1")).id
    two = (await store.ensure_space("2")).id
    a = await store.save_workflow_draft(workflow(one, name="a"))
    b = await store.save_workflow_draft(workflow(one, name="b", mode="chatflow", app_id="app"))
    c = await store.save_workflow_draft(workflow(two, name="c", app_id="app"))

    items, more = await store.list_workflows(space_ids=None)
    assert [w.id for w in items] == [c.id, b.id, a.id] and not more
    items, more = await store.list_workflows(space_ids=[one])
    assert [w.id for w in items] == [b.id, a.id]
    assert await store.list_workflows(space_ids=[]) == ([], False)
    items, _ = await store.list_workflows(space_ids=None, mode="chatflow")
    assert [w.id for w in items] == [b.id]
    items, _ = await store.list_workflows(space_ids=[two, one], app_id="app")
    assert [w.id for w in items] == [c.id, b.id]

    page, more = await store.list_workflows(space_ids=None, limit=2)
    assert [w.id for w in page] == [c.id, b.id] and more
    page, more = await store.list_workflows(space_ids=None, offset=2, limit=2)
    assert [w.id for w in page] == [a.id] and not more


async def test_publish_status_filters(store: Store) -> None:
    space = (await store.ensure_space()).id
    draft_only = await store.save_workflow_draft(workflow(space, name="draft"))
    online = await store.save_workflow_draft(workflow(space, name="online"))
    edited = await store.save_workflow_draft(workflow(space, name="edited"))
    for published in (online, edited):
        await publish_version(store, published.id, None, published.canvas)
    # Saving an identical draft is not a change; a different canvas is.
    await store.save_workflow_draft(workflow(space, workflow_id=online.id, name="online"))
    await asyncio.sleep(0.01)
    await store.save_workflow_draft(workflow(space, workflow_id=edited.id, name="edited", tag="changed"))

    async def ids(status: str) -> set[str]:
        return {w.id for w in (await store.list_workflows(space_ids=None, publish_status=PublishStatus(status)))[0]}

    assert await ids("all") == {draft_only.id, online.id, edited.id}
    assert await ids("published_online") == {online.id, edited.id}
    assert await ids("unpublished_draft") == {draft_only.id}
    assert await ids("published_draft") == {edited.id}


# --- runs ---------------------------------------------------------------------------------------------------
async def test_write_runs_inserts_then_upserts_final_state(store: Store) -> None:
    started = run()
    await store.write_runs([started], [], [])
    assert await store.get_run(started.execute_id) == started

    # finished later, in another batch, with its trace
    started.status, started.output, started.updated_at = SUCCESS, '{"output":"hi"}', time.time()
    started.input_tokens, started.output_tokens, started.extra = 3, 4, {"Output": "hi"}
    t0 = time.time()
    nodes = [node(started.execute_id, "900001", t0 + 1), node(started.execute_id, "100001", t0)]
    nodes[0].warnings = ["field output.age is not integer", "field ü is not list"]
    both = run()  # started and finished within one batch
    both_final = run(both.execute_id, status=FAIL)
    both_final.error_code, both_final.error_message = 5000, "boom"
    unseen = run(status=SUCCESS)  # its start was never written: the upsert still records it
    await store.write_runs([both], [started, both_final, unseen], nodes)

    assert await store.get_run(started.execute_id) == started
    assert await store.get_run(both.execute_id) == both_final
    assert await store.get_run(unseen.execute_id) == unseen
    assert await store.get_run("404") is None
    listed = await store.list_node_executions(started.execute_id)
    assert [n.node_id for n in listed] == ["100001", "900001"]
    assert listed[1] == nodes[0]
    assert (listed[0].warnings, listed[1].warnings) == ([], ["field output.age is not integer", "field ü is not list"])
    assert await store.get_node_execution(started.execute_id, nodes[1].id) == nodes[1]
    assert await store.get_node_execution(both.execute_id, nodes[1].id) is None  # another run's node
    assert await store.list_node_executions("404") == []
    await store.write_runs([], [], [])


async def test_a_node_executions_tokens_round_trip_and_none_stays_none(store: Store) -> None:
    started = run()
    t0 = time.time()
    model, plain = node(started.execute_id, "156549", t0), node(started.execute_id, "900001", t0 + 1)
    model.input_tokens, model.output_tokens = 1_200_000, 4
    await store.write_runs([started], [], [model, plain])
    listed = await store.list_node_executions(started.execute_id)
    assert [(n.input_tokens, n.output_tokens) for n in listed] == [(1_200_000, 4), (None, None)]
    assert await store.get_node_execution(started.execute_id, model.id) == model


async def test_node_executions_recorded_before_0014_have_no_tokens(database_url: str) -> None:
    downgrade(database_url, "0013")
    store = await Store.open(database_url)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO node_executions (id, execute_id, node_id, node_type, node_title, status, inputs, outputs, "
                "started_at, finished_at) VALUES ('n1', '77', '156549', '3', 'LLM', 'Success', '{}', '{}', 1, 2)"))
    finally:
        await store.close()
    upgrade(database_url)
    store = await Store.open(database_url)
    try:
        old = await store.get_node_execution("77", "n1")
        assert old is not None and (old.node_title, old.input_tokens, old.output_tokens) == ("LLM", None, None)
    finally:
        await store.close()
    downgrade(database_url, "0013")  # with a row in the table: SQLite copies it into a table without the columns
    upgrade(database_url)
    assert current_revision(database_url) == "0014"


async def test_write_runs_is_one_transaction(store: Store) -> None:
    first = run()
    await store.write_runs([first], [], [])
    fresh = run()
    with pytest.raises(Exception):  # noqa: B017 - the driver's IntegrityError type differs per backend
        await store.write_runs([fresh, run(first.execute_id)], [], [])  # duplicate key: the batch fails
    assert await store.get_run(fresh.execute_id) is None


async def test_mark_orphaned_runs(store: Store) -> None:
    now = time.time()
    stale, recent, done = (
        run(updated_at=now - 100),
        run(updated_at=now),
        run(status=SUCCESS, updated_at=now - 100),
    )
    await store.write_runs([stale, recent, done], [], [])
    assert await store.mark_orphaned_runs(now - 10, "the process running it stopped") == 1
    swept = await store.get_run(stale.execute_id)
    assert (
        swept is not None and swept.status == FAIL and swept.error_message == "the process running it stopped"
    )
    assert swept.error_code != 0 and swept.updated_at >= now
    assert (await store.get_run(recent.execute_id)).status == RUNNING  # type: ignore[union-attr]
    assert (await store.get_run(done.execute_id)).status == SUCCESS  # type: ignore[union-attr]
    assert await store.mark_orphaned_runs(now - 10, "again") == 0


# --- two processes on one database (a server and a CLI command) ---------------------------------------------
async def test_a_writer_is_not_blocked_by_another_connections_open_read(database_url: str) -> None:
    reader, writer = await Store.open(database_url), await Store.open(database_url)
    try:
        await create_token(writer, "before", ["run"], None)
        async with reader.engine.connect() as conn:
            await conn.execute(text("SELECT count(*) FROM tokens"))  # holds a read transaction open
            await asyncio.wait_for(create_token(writer, "during", ["run"], None), timeout=10)
            await asyncio.wait_for(
                asyncio.gather(*(writer.write_runs([run()], [], []) for _ in range(5))), timeout=10
            )
        assert await reader.count_tokens() == 2
    finally:
        await reader.close()
        await writer.close()
