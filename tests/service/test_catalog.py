"""The catalog service: import, publish, demo seed — on every store backend."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from knotflow.engine.runner import Execution
from knotflow.errors import BadRequest, CanvasError, NotFound, UnknownNodeType
from knotflow.service import catalog
from knotflow.service.tokens import create_token, find_token
from knotflow.store.repository import PublishStatus, Store
from tests import canvases as c
from tests.node_types import compile_canvas
from tests.store.test_repository import canvas, workflow

# shared/ lives beside the project root (in CI too).
CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "canvases"


def echo(template_name: str = "name") -> dict[str, Any]:
    return {
        "nodes": [c.start(("name", "string")), c.end_return(output=c.ref("100001", template_name))],
        "edges": [c.edge("100001", "900001")],
    }


def with_node(node: dict[str, Any]) -> dict[str, Any]:
    canvas = echo()
    canvas["nodes"].insert(1, node)
    canvas["edges"] = [c.edge("100001", node["id"]), c.edge(node["id"], "900001")]
    return canvas


async def test_import_a_new_workflow(store: Store) -> None:
    workflow, version = await catalog.import_workflow(store, echo())
    assert version is None and workflow.latest_version is None
    assert workflow.id.isdigit() and workflow.name == f"workflow-{workflow.id}"
    assert (workflow.mode, workflow.app_id, workflow.requires_bot) == ("workflow", None, False)
    assert workflow.canvas == echo()
    assert workflow.space_id == (await store.ensure_space()).id
    assert await store.get_workflow(workflow.id) == workflow

    named, _ = await catalog.import_workflow(store, echo(), default_name="from_file", app_id="77", chatflow=True)
    assert (named.name, named.app_id, named.mode) == ("from_file", "77", "chatflow")
    explicit, _ = await catalog.import_workflow(store, echo(), name="given", default_name="ignored", space_id="9")
    assert (explicit.name, explicit.space_id) == ("given", "9")
    assert (await store.ensure_space("9")).id == "9"  # the space was created on the way


async def test_import_and_publish(store: Store) -> None:
    workflow, version = await catalog.import_workflow(store, echo(), publish=True)
    assert version is not None and version.version == "v0.0.1" and version.canvas == echo()
    assert workflow.latest_version == "v0.0.1"
    _, named = await catalog.import_workflow(store, echo(), publish=True, version="v2.0.0")
    assert named is not None and named.version == "v2.0.0"
    with pytest.raises(BadRequest):
        await catalog.import_workflow(store, echo(), version="v1")  # a version without publish


async def test_import_onto_an_existing_id_replaces_the_draft(store: Store) -> None:
    first, _ = await catalog.import_workflow(
        store, echo(), workflow_id="7001", name="kept", space_id="5", app_id="app", publish=True
    )
    assert first.id == "7001"
    changed = echo()
    changed["nodes"][0]["data"]["nodeMeta"]["title"] = "Begin"
    second, version = await catalog.import_workflow(store, changed, workflow_id="7001", default_name="other")
    assert version is None
    assert (second.id, second.name, second.space_id, second.app_id) == ("7001", "kept", "5", "app")
    assert second.canvas == changed and second.created_at == first.created_at
    assert second.latest_version == "v0.0.1"
    # the published version did not move; the draft is now ahead of it
    assert (await store.get_version("7001", None)).canvas == echo()  # type: ignore[union-attr]
    drafts, _ = await store.list_workflows(space_ids=None, publish_status=PublishStatus.PUBLISHED_DRAFT)
    assert [w.id for w in drafts] == ["7001"]
    renamed, _ = await catalog.import_workflow(store, changed, workflow_id="7001", name="new name")
    assert renamed.name == "new name"


async def test_import_refuses_an_unknown_node_type_naming_the_node(store: Store) -> None:
    canvas = with_node(c.node("123456", "9999", "Mystery"))
    with pytest.raises(UnknownNodeType) as caught:
        await catalog.import_workflow(store, canvas)
    assert caught.value.node_id == "123456" and caught.value.type_id == "9999"
    assert "123456" in caught.value.message and "9999" in caught.value.message
    assert await store.list_workflows(space_ids=None) == ([], False)


async def test_import_refuses_a_broken_graph(store: Store) -> None:
    canvas = echo()
    canvas["edges"] = []
    with pytest.raises(CanvasError):
        await catalog.import_workflow(store, canvas)
    with pytest.raises(CanvasError):
        await catalog.import_workflow(store, {"nodes": "not a list"})
    assert await store.list_workflows(space_ids=None) == ([], False)


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="the shared conformance canvases are not here")
async def test_import_a_coze_studio_canvas(store: Store) -> None:
    canvas = json.loads((CONFORMANCE / "entry_exit.json").read_text())
    workflow, version = await catalog.import_workflow(store, canvas, default_name="entry_exit", publish=True)
    assert workflow.name == "entry_exit" and version is not None and version.canvas == canvas


def test_needs_bot() -> None:
    assert not catalog.needs_bot(echo())
    for type_id in ("12", "40", "42", "43", "44", "46"):
        assert catalog.needs_bot(with_node(c.node("200001", type_id, "db or variable")))
    nested = with_node(c.node("300001", "21", "Loop"))
    nested["nodes"][1]["blocks"] = [c.node("300002", "43", "Query")]
    assert catalog.needs_bot(nested)
    # Reading user variables needs no bot: without one they read null, as in Coze Studio's test runs.
    assert not catalog.needs_bot(user_variable_reader())
    # A node *named* like a type id is not a node of that type.
    assert not catalog.needs_bot(with_node(c.node("400001", "13", "12")))


def user_variable_reader() -> dict[str, Any]:
    canvas = echo()
    canvas["nodes"][1]["data"]["inputs"]["inputParameters"][0]["input"]["value"]["content"] = {
        "source": "global_variable_user",
        "blockID": "",
        "name": "",
        "path": ["nickname"],
    }
    return canvas


async def test_requires_bot_is_set_for_bot_data_or_when_asked(store: Store) -> None:
    detected, _ = await catalog.import_workflow(store, with_node(c.node("200001", "40", "assign")))
    assert detected.requires_bot
    reader, _ = await catalog.import_workflow(store, user_variable_reader())
    assert not reader.requires_bot
    asked, _ = await catalog.import_workflow(store, echo(), requires_bot=True)
    assert asked.requires_bot


async def test_publish(store: Store) -> None:
    workflow, _ = await catalog.import_workflow(store, echo())
    first = await catalog.publish(store, workflow.id)
    named = await catalog.publish(store, workflow.id, "release-1")
    assert (first.version, named.version) == ("v0.0.1", "release-1")
    assert (await store.get_workflow(workflow.id)).latest_version == "release-1"  # type: ignore[union-attr]
    with pytest.raises(BadRequest):
        await catalog.publish(store, workflow.id, "release-1")
    with pytest.raises(NotFound):
        await catalog.publish(store, "404")


async def test_publish_validates_the_draft(store: Store) -> None:
    workflow, _ = await catalog.import_workflow(store, echo())
    broken = copy.deepcopy(workflow)
    broken.canvas = with_node(c.node("123456", "9999", "Mystery"))
    await store.save_workflow_draft(broken)  # stored behind the catalog's back
    with pytest.raises(UnknownNodeType):
        await catalog.publish(store, workflow.id)
    assert await store.get_version(workflow.id, None) is None


async def test_seed_demo_on_an_empty_database(store: Store) -> None:
    seeded = await catalog.seed_demo(store)
    assert seeded is not None
    workflow, plaintext = seeded
    assert workflow.name == "hello" and workflow.latest_version == "v0.0.1"
    token = await find_token(store, plaintext)
    assert token is not None and token.can("run") and token.can_access(workflow.space_id)

    version = await store.get_version(workflow.id, None)
    assert version is not None
    nodes = {node["id"]: node for node in version.canvas["nodes"]}
    assert nodes["100001"]["type"] == "1" and nodes["900001"]["type"] == "2"
    output = next(node for node in nodes.values() if node["type"] == "13")
    assert output["data"]["inputs"]["streamingOutput"] is False
    result = await Execution(compile_canvas(version.canvas)).run({"name": "George"})
    assert result.output == {"output": "Hello, George!"}

    assert await catalog.seed_demo(store) is None  # not empty any more


async def test_seed_demo_leaves_a_used_database_alone(store: Store) -> None:
    await create_token(store, "mine", ["run"], None)
    assert await catalog.seed_demo(store) is None
    assert await store.list_workflows(space_ids=None) == ([], False)


async def test_publish_refuses_a_model_that_is_not_configured(tmp_path: Path) -> None:
    from knotflow.errors import CanvasError
    from knotflow.models.registry import ModelRegistry, load_registry
    from knotflow.service.catalog import check_publishable
    from tests.nodes.test_llm import MODEL_TYPE, llm_node, through_llm

    canvas = through_llm(llm_node())
    with pytest.raises(CanvasError, match=rf"uses model .*{MODEL_TYPE}.* models.yaml"):
        check_publishable(canvas, ModelRegistry())
    models_file = tmp_path / "models.yaml"
    models_file.write_text(f"models:\n  - model_type: {MODEL_TYPE}\n    base_url: http://127.0.0.1:9/v1\n"
                           "    model: m\n")
    check_publishable(canvas, load_registry(models_file))


async def test_publish_versions(store: Store) -> None:
    space = (await store.ensure_space()).id
    wf = await store.save_workflow_draft(workflow(space))
    snapshot = canvas("v1")
    first = await catalog.publish_version(store, wf.id, None, snapshot, "first")
    assert (first.version, first.workflow_id, first.description) == ("v0.0.1", wf.id, "first")
    snapshot["nodes"].clear()  # the caller's dict changes; the version must not
    assert (await store.get_version(wf.id, "v0.0.1")).canvas == canvas("v1")  # type: ignore[union-attr]

    second = await catalog.publish_version(store, wf.id, None, canvas("v2"))
    named = await catalog.publish_version(store, wf.id, "v1.0.0", canvas("v3"))
    third = await catalog.publish_version(store, wf.id, None, canvas("v4"))
    assert [second.version, named.version, third.version] == ["v0.0.2", "v1.0.0", "v0.0.3"]
    with pytest.raises(BadRequest):
        await catalog.publish_version(store, wf.id, "v1.0.0", canvas("again"))
    with pytest.raises(BadRequest):
        await catalog.publish_version(store, wf.id, "  ", canvas("blank"))
    with pytest.raises(NotFound):
        await catalog.publish_version(store, "404", None, canvas())

    assert (await store.get_workflow(wf.id)).latest_version == "v0.0.3"  # type: ignore[union-attr]
    latest = await store.get_version(wf.id, None)
    assert latest is not None and latest.version == "v0.0.3" and latest.canvas == canvas("v4")
    assert await store.get_version(wf.id, "v9") is None
    assert await store.get_version("404", None) is None

    page, more = await store.list_versions(wf.id, limit=3)
    assert [v.version for v in page] == ["v0.0.3", "v1.0.0", "v0.0.2"] and more
    page, more = await store.list_versions(wf.id, offset=3, limit=3)
    assert [v.version for v in page] == ["v0.0.1"] and not more
    assert await store.list_versions("404") == ([], False)


async def test_concurrent_publishes_get_distinct_versions(store: Store) -> None:
    wf = await store.save_workflow_draft(workflow((await store.ensure_space()).id))
    versions = await asyncio.gather(*(catalog.publish_version(store, wf.id, None, canvas(str(i))) for i in range(6)))
    assert sorted(v.version for v in versions) == [f"v0.0.{n}" for n in range(1, 7)]


def calling(child_id: str) -> dict[str, Any]:
    """Start(name) → Sub-workflow running `child_id` (its latest version) → End."""
    return with_node(c.node("90000", "9", "Child", inputs={
        "workflowId": child_id, "workflowVersion": "",
        "inputParameters": [c.param("name", c.ref("100001", "name"))]}, outputs=[{"name": "output", "type": "string"}]))


async def test_publish_checks_the_workflows_a_canvas_runs(store: Store) -> None:
    with pytest.raises(CanvasError, match="runs workflow 123, which does not exist in this workflow's space"):
        await catalog.import_workflow(store, calling("123"), publish=True)
    draft_only, _ = await catalog.import_workflow(store, echo())
    with pytest.raises(CanvasError, match=f"runs workflow {draft_only.id}, which is not published"):
        await catalog.import_workflow(store, calling(draft_only.id), publish=True)
    elsewhere, _ = await catalog.import_workflow(store, echo(), publish=True, space_id="9")
    with pytest.raises(CanvasError, match="which does not exist in this workflow's space"):
        await catalog.import_workflow(store, calling(elsewhere.id), publish=True)
    child, _ = await catalog.import_workflow(store, echo(), publish=True)
    parent, version = await catalog.import_workflow(store, calling(child.id), publish=True)
    assert version is not None
    # A grandparent publishes: every workflow down its tree is published in the space.
    grandparent, _ = await catalog.import_workflow(store, calling(parent.id), publish=True)
    assert grandparent.latest_version == "v0.0.1"


async def test_publish_refuses_a_workflow_that_runs_itself(store: Store) -> None:
    with pytest.raises(CanvasError, match=r"workflow 555 runs itself through sub-workflows \(555 → 555\)"):
        await catalog.import_workflow(store, calling("555"), workflow_id="555", publish=True)
    child, _ = await catalog.import_workflow(store, echo(), publish=True)
    parent, _ = await catalog.import_workflow(store, calling(child.id), publish=True)
    # The child's new draft would run its parent, which runs the child: refused, the path named.
    with pytest.raises(CanvasError, match=rf"\({child.id} → {parent.id} → {child.id}\)"):
        await catalog.import_workflow(store, calling(parent.id), workflow_id=child.id, publish=True)
    stored = await store.get_workflow(child.id)
    assert stored is not None and stored.latest_version == "v0.0.1"  # the draft is kept, not published
