"""What the console reads: run listing (filters, keyset pages, spaces), a run's timeline with nested executions,
the canvas as drawn (ports, inner blocks, unknown types), the Start form, and sign-in sessions."""

from __future__ import annotations

import time
from typing import Any

import pytest

from knotflow.errors import Unauthenticated
from knotflow.nodes import NODE_TYPES
from knotflow.service import console
from knotflow.service.canvas_view import canvas_view, start_parameters
from knotflow.service.sessions import ConsoleSessions
from knotflow.service.tokens import create_token, revoke_token
from knotflow.store.records import FAIL, RUN_MODE_STREAM, SUCCESS, NodeExecution, Run, Token
from knotflow.store.repository import Store
from tests import canvases as c

SPACE, OTHER = "11", "22"


def token(spaces: list[str] | None) -> Token:
    return Token(id="1", name="t", permissions=["run"], space_ids=spaces, created_at=0)


def run(execute_id: str, created_at: float, *, space: str = SPACE, status: str = SUCCESS,
        connector: str = "1024", workflow_id: str = "7") -> Run:
    return Run(execute_id=execute_id, workflow_id=workflow_id, version="v1", space_id=space,
               run_mode=RUN_MODE_STREAM, status=status, connector_id=connector, created_at=created_at,
               updated_at=created_at + 1, input_tokens=2, output_tokens=3)


async def test_runs_are_listed_by_space_and_filters_in_keyset_pages(store: Store) -> None:
    # Two runs share a start time: the page boundary between them must lose neither.
    runs = [run("101", 1000.0), run("102", 1000.0, status=FAIL), run("103", 1001.0, connector="10000010"),
            run("104", 1002.0, workflow_id="8"), run("105", 1003.0, space=OTHER)]
    await store.write_runs(runs, [], [])
    query = console.RunQuery
    mine = token([SPACE])

    async def ids(q: console.RunQuery) -> tuple[list[str], str | None]:
        found, cursor = await console.list_runs(store, mine, q)
        return [r.execute_id for r in found], cursor

    first, cursor = await ids(query(limit=2))
    assert first == ["104", "103"] and cursor is not None
    second, cursor = await ids(query(limit=2, after=cursor))
    assert second == ["102", "101"] and cursor is None
    assert (await ids(query(limit=1, after=console.cursor_of((await store.list_runs(
        console.RunFilter(space_ids=[SPACE], workflow_id="7", status=FAIL)))[0][0]))))[0] == ["101"]
    assert (await ids(query(status=FAIL)))[0] == ["102"]
    assert (await ids(query(connector_id="10000010")))[0] == ["103"]
    assert (await ids(query(workflow_id="8")))[0] == ["104"]
    assert (await ids(query(since=1001.0, until=1002.0)))[0] == ["103"]
    everything, _ = await console.list_runs(store, token(None), query())
    assert [r.execute_id for r in everything] == ["105", "104", "103", "102", "101"]
    assert everything[0].workflow_name == "" and everything[0].input_tokens + everything[0].output_tokens == 5
    assert (await console.list_runs(store, token([]), query()))[0] == []


def node(uuid: str, node_id: str, started: float) -> NodeExecution:
    return NodeExecution(id=uuid, execute_id="9", node_id=node_id, node_type="21", node_title=node_id,
                         status=SUCCESS, inputs='{"a": 1}', outputs="not json", error=None, started_at=started,
                         finished_at=started + 1)


def test_the_timeline_indents_executions_under_their_parent_by_uuid_or_node_id() -> None:
    loop, first, second, inner, after = (node("u1", "loop", 1.0), node("u2", "body", 2.0), node("u3", "body", 3.0),
                                         node("u4", "deep", 3.5), node("u5", "end", 9.0))
    parents = {"u2": "loop", "u3": "u1", "u4": "body"}  # a node id (the latest before), or an execution's uuid
    entries = console.timeline([loop, first, second, inner, after], lambda n: parents.get(n.id))
    assert [(e["node_execute_uuid"], e["parent"], e["depth"]) for e in entries] == [
        ("u1", None, 0), ("u2", "u1", 1), ("u3", "u1", 1), ("u4", "u3", 2), ("u5", None, 0)]
    assert entries[0]["inputs"] == {"a": 1} and entries[0]["outputs"] == "not json"
    looped = console.timeline([loop, first], lambda n: {"u1": "u2", "u2": "u1"}[n.id])
    assert [e["depth"] for e in looped] == [1, 1]  # a broken record ends the climb: no endless loop
    # By default the parent is the composite an execution records (parent_node_id), with its iteration.
    body = node("u9", "body", 1.5)
    body.parent_node_id, body.iteration = "loop", 3
    recorded = console.timeline([loop, body])
    assert [(e["parent"], e["depth"], e["iteration"]) for e in recorded] == [(None, 0, None), ("u1", 1, 3)]


def test_the_canvas_view_draws_ports_inner_blocks_and_unknown_types() -> None:
    question = c.node("182", "18", "Season", inputs={
        "inputParameters": [], "question": "Which?", "answer_type": "option", "option_type": "static",
        "options": [{"name": "spring"}, {"name": "autumn"}]}, outputs=[{"name": "optionId", "type": "string"}])
    selector = c.node("600", "8", "If", inputs={"branches": [
        {"condition": {"logic": 2, "conditions": [{"operator": 9, "left": {"input": c.ref("100001", "x")}}]}},
        {"condition": {"logic": 2, "conditions": [{"operator": 10, "left": {"input": c.ref("100001", "x")}}]}}]})
    guarded = c.output("135001", "hi")
    guarded["data"]["inputs"]["settingOnError"] = {"switch": True, "processType": 3}
    loop = c.node("21000", "21", "Loop", inputs={"loopType": "array"})
    loop["meta"] = {"position": {"x": 500, "y": 10}, "canvasPosition": {"x": 100, "y": 300}}
    loop["blocks"] = [c.node("21001", "15", "Inner text"), c.node("21002", "424242", "Future node")]
    loop["edges"] = [c.edge("21000", "21001", "loop-function-inline-output"), c.edge("21001", "21002"),
                     {"sourceNodeID": "21002", "targetNodeID": "21000", "targetPortID": "loop-function-inline-input"}]
    raw = c.canvas([c.start(("x", "string")), question, selector, guarded, loop, c.end_return()],
                   [c.edge("100001", "182"), c.edge("182", "600", "branch_0"), c.edge("600", "135001", "true_1"),
                    c.edge("21000", "900001", "loop-output")])
    view = canvas_view(raw, NODE_TYPES)
    nodes = {n["id"]: n for n in view["nodes"]}
    assert nodes["182"]["ports"] == ["branch_0", "branch_1", "default"]
    assert nodes["600"]["ports"] == ["true", "true_1", "false"]
    assert nodes["135001"]["ports"] == ["default", "branch_error"]
    assert nodes["21000"]["ports"] == ["loop-output", "loop-function-inline-output"]
    assert nodes["21000"]["known"] is True and nodes["21000"]["canvas_position"] == {"x": 100.0, "y": 300.0}
    assert (nodes["21001"]["parent"], nodes["21002"]["parent"], nodes["21002"]["known"]) == ("21000", "21000", False)
    assert nodes["100001"]["position"] == {"x": 0.0, "y": 0.0} and nodes["182"]["title"] == "Season"
    inner = [e for e in view["edges"] if e["parent"] == "21000"]
    assert [(e["source"], e["target"], e["target_port"]) for e in inner] == [
        ("21000", "21001", ""), ("21001", "21002", ""), ("21002", "21000", "loop-function-inline-input")]
    assert canvas_view({"nodes": "no"}, NODE_TYPES)["problem"]


def test_the_start_form_lists_parameters_with_types_defaults_and_files() -> None:
    raw = c.canvas([c.start(
        {"name": "who", "type": "string", "required": True, "description": "a name"},
        {"name": "days", "type": "integer", "defaultValue": 3},
        {"name": "photo", "type": "string", "assistType": 2},
        {"name": "docs", "type": "list", "schema": {"type": "string", "assistType": 1}},
    ), c.end_return()], [c.edge("100001", "900001")])
    parameters: list[dict[str, Any]] = start_parameters(raw)
    assert [(p["name"], p["type"], p["required"], p["default"], p["file"]) for p in parameters] == [
        ("who", "string", True, None, False), ("days", "integer", False, 3, False),
        ("photo", "string", False, None, True), ("docs", "list", False, None, False)]
    assert parameters[0]["description"] == "a name" and parameters[3]["element"]["file"] is True


async def test_a_session_stands_for_its_token_until_it_expires_or_signs_out(store: Store) -> None:
    record, plaintext = await create_token(store, "person", ["run"], [SPACE])
    sessions = ConsoleSessions(store, ttl=60)
    with pytest.raises(Unauthenticated):
        await sessions.sign_in("pat_not-a-token")
    signed = await sessions.sign_in(plaintext)
    assert plaintext not in signed.session_id and signed.session.id_hash != signed.session_id
    found = await sessions.resolve(signed.session_id)
    assert found is not None and found[1].id == record.id and found[1].space_ids == [SPACE]
    assert found[0].csrf == signed.session.csrf
    assert await sessions.resolve("forged") is None and await sessions.resolve("") is None
    await sessions.sign_out(signed.session_id)
    assert await sessions.resolve(signed.session_id) is None

    short = ConsoleSessions(store, ttl=0.05)
    expiring = await short.sign_in(plaintext)
    time.sleep(0.1)
    assert await short.resolve(expiring.session_id) is None
    await sessions.sign_in(plaintext)  # a new sign-in drops the expired rows
    assert await store.session_token(expiring.session.id_hash, 0) is None

    # A token revoked (or expired) signs its sessions out, and signs in no more.
    live_session = await sessions.sign_in(plaintext)
    await revoke_token(store, record.id)
    assert await sessions.resolve(live_session.session_id) is None
    with pytest.raises(Unauthenticated, match="'person' was revoked"):
        await sessions.sign_in(plaintext)
    _, expired = await create_token(store, "old", ["run"], None, expires_at=time.time() - 1)
    with pytest.raises(Unauthenticated, match="'old' expired"):
        await sessions.sign_in(expired)
