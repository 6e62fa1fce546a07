"""The workflow catalog: import a Coze Studio canvas as a workflow's draft, publish drafts as versions, and
seed an empty database with a demo.

Every canvas is compiled before it is stored, so what the catalog holds is known to run (as far as the canvas
alone can tell): an unknown node type or a broken graph is refused here, with the node named.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from typing import Any

from knotflow.contract import NodeTypes
from knotflow.dsl.canvas import END_NODE_ID, START_NODE_ID
from knotflow.engine.compiler import Plan, compile_canvas
from knotflow.errors import BadRequest, CanvasError, NotFound
from knotflow.ids import new_id
from knotflow.models.registry import ModelRegistry, load_registry
from knotflow.nodes import NODE_TYPES
from knotflow.service.access import PERMISSION_EDIT
from knotflow.service.owners import APP, ensure_app
from knotflow.service.tokens import create_token
from knotflow.service.variables import check_assignments, parse_type
from knotflow.store.records import PERMISSION_RUN, Workflow, WorkflowVersion
from knotflow.store.repository import Store

MODE_WORKFLOW, MODE_CHATFLOW = "workflow", "chatflow"
VERSION_MAX = 64  # the versions table's column width
MAX_NAME_LENGTH = 255
_AUTO_VERSION = re.compile(r"^v0\.0\.(\d+)$")
_PUBLISH_ATTEMPTS = 5

# Node types that need a bot (or app) context to run, because Coze keys their storage by bot: the database
# nodes (12 custom SQL, 42 update, 43 query, 44 delete, 46 insert) and the variable assigner (40). Reading
# variables needs none: without a bot or app they read null, as in Coze Studio's test runs.
BOT_NODE_TYPES = frozenset({"12", "40", "42", "43", "44", "46"})

DEMO_WORKFLOW_NAME = "hello"
DEMO_TOKEN_NAME = "development"
_DEMO_OUTPUT_NODE_ID = "135001"


class PublishRefused(CanvasError):
    """An import whose publish failed its checks: the draft is stored (`workflow`), only the publish failed."""

    def __init__(self, message: str, workflow: Workflow) -> None:
        super().__init__(message)
        self.workflow = workflow


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object inside `value`, depth first (nodes, nested blocks, block inputs, refs)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def needs_bot(canvas: dict[str, Any]) -> bool:
    """Whether the canvas uses database or Variable assign nodes, whose data belongs to a bot or app."""
    return any("type" in item and "id" in item and "data" in item and str(item["type"]) in BOT_NODE_TYPES
               for item in _walk(canvas))


async def import_workflow(
    store: Store,
    canvas: dict[str, Any],
    *,
    workflow_id: str | None = None,
    name: str | None = None,
    space_id: str | None = None,
    app_id: str | None = None,
    requires_bot: bool = False,
    publish: bool = False,
    version: str | None = None,
    chatflow: bool = False,
    description: str | None = None,
    default_name: str | None = None,
    models: ModelRegistry | None = None,
    node_types: NodeTypes = NODE_TYPES,
) -> tuple[Workflow, WorkflowVersion | None]:
    """Validate `canvas` and save it as a workflow's draft; publish it too when `publish`. A canvas that compiles
    but fails the publish checks (a model not configured) is kept as the draft and raises PublishRefused.

    A new workflow (no `workflow_id`, or an id not yet stored, which is kept) goes to `space_id` (default: the
    first space). Importing onto an existing id replaces its draft and keeps its space; a name, description or
    app id not given keeps the stored one. A new workflow is named `name`, else `default_name` (the CLI passes
    the canvas file's name), else `workflow-<id>`. `requires_bot` is forced on for canvases that need a bot.
    The app (`app_id`) must be of the workflow's space; one that does not exist yet is created there, named
    after its id.
    """
    compile_canvas(canvas, node_types)
    if version is not None and not publish:
        raise BadRequest("a version can only be given together with publish")
    if name is not None and len(name) > MAX_NAME_LENGTH:
        raise BadRequest(f"a workflow name is at most {MAX_NAME_LENGTH} characters")
    existing = await store.get_workflow(workflow_id) if workflow_id else None
    workflow_id = workflow_id or new_id()
    bot = requires_bot or needs_bot(canvas)
    mode = MODE_CHATFLOW if chatflow else MODE_WORKFLOW
    home = existing.space_id if existing is not None else (await store.ensure_space(space_id)).id
    if app_id is not None:
        app_id = (await ensure_app(store, app_id, home))[0].id
    if existing is None:
        draft = Workflow(
            id=workflow_id,
            space_id=home,
            name=name or default_name or f"workflow-{workflow_id}",
            description=description or "",
            icon_url="",
            app_id=app_id,
            requires_bot=bot,
            mode=mode,
            canvas=canvas,
            created_at=0,
            updated_at=0,
        )
    else:
        draft = Workflow(
            id=existing.id,
            space_id=existing.space_id,
            name=name or existing.name,
            description=existing.description if description is None else description,
            icon_url=existing.icon_url,
            app_id=app_id if app_id is not None else existing.app_id,
            requires_bot=bot,
            mode=mode,
            canvas=canvas,
            created_at=existing.created_at,
            updated_at=existing.updated_at,
            creator_id=existing.creator_id,
        )
    workflow = await store.save_workflow_draft(draft)
    if not publish:
        return workflow, None
    try:
        await check_sub_workflows(store, workflow, check_publishable(canvas, models, node_types), node_types)
        await check_app_variables(store, canvas, workflow.app_id)
    except CanvasError as exc:
        raise PublishRefused(exc.message, workflow) from exc
    published = await publish_version(store, workflow.id, version, canvas)
    workflow.latest_version = published.version
    return workflow, published


def check_publishable(canvas: dict[str, Any], models: ModelRegistry | None = None,
                      node_types: NodeTypes = NODE_TYPES) -> Plan:
    """Everything a published version needs that the canvas alone tells: it compiles, and every model it names
    is configured (`models` None: the models file of this process's settings). Returns its plan."""
    plan = compile_canvas(canvas, node_types)
    wanted = [(node, required) for node in plan.walk() if (required := node.required_models())]
    if not wanted:
        return plan
    registry = models if models is not None else load_registry(None)
    for node, required in wanted:
        missing = registry.missing(required)
        if missing:
            raise CanvasError(
                f"node '{node.title}' ({node.id}) uses model {', '.join(missing)}, which is not configured: "
                "add it to models.yaml in the data dir (or the file named by KNOTFLOW_MODELS_FILE)"
            )
    return plan


async def check_sub_workflows(store: Store, workflow: Workflow, plan: Plan, node_types: NodeTypes) -> None:
    """Every workflow the canvas runs (Sub-workflow nodes, at any depth) is published in the workflow's space, and
    none of them runs the workflow itself again: such a run would never end."""

    async def visit(plan: Plan, chain: list[str]) -> None:
        for node in plan.walk():
            for child_id, version in node.required_workflows():
                if child_id in chain:
                    path = " → ".join([*chain, child_id])
                    raise CanvasError(f"workflow {workflow.id} runs itself through sub-workflows ({path}): node "
                                      f"'{node.title}' ({node.id}) runs workflow {child_id}")
                child = await store.get_workflow(child_id, with_canvas=False)
                if child is None or child.space_id != workflow.space_id:
                    raise CanvasError(f"node '{node.title}' ({node.id}) runs workflow {child_id}, which does not "
                                      "exist in this workflow's space")
                wanted = version or child.latest_version
                record = await store.get_version(child_id, wanted) if wanted else None
                if record is None:
                    which = f"workflow {child_id} version {wanted}" if wanted else f"workflow {child_id}"
                    raise CanvasError(f"node '{node.title}' ({node.id}) runs {which}, which is not published")
                await visit(compile_canvas(record.canvas, node_types), [*chain, child_id])

    await visit(plan, [workflow.id])


async def publish(
    store: Store, workflow_id: str, version: str | None = None, description: str = "",
    models: ModelRegistry | None = None, node_types: NodeTypes = NODE_TYPES,
) -> WorkflowVersion:
    """Publish the workflow's current draft as `version` (default: the next `v0.0.N`)."""
    workflow = await store.get_workflow(workflow_id)
    if workflow is None:
        raise NotFound(f"workflow {workflow_id} does not exist")
    await check_sub_workflows(store, workflow, check_publishable(workflow.canvas, models, node_types), node_types)
    await check_app_variables(store, workflow.canvas, workflow.app_id)
    return await publish_version(store, workflow.id, version, workflow.canvas, description)


async def check_app_variables(store: Store, canvas: dict[str, Any], app_id: str | None) -> None:
    """An app's workflow assigns its variables with the types the app declares (Coze Studio checks this when
    the workflow's app or bot is known; a bot's workflow learns its bot only when it runs)."""
    if app_id:
        declared = {d.name: parse_type(d.type) for d in await store.variable_declarations(APP, app_id)}
        check_assignments(canvas, declared, f"app {app_id}")


async def publish_version(store: Store, workflow_id: str, version: str | None, canvas: dict[str, Any],
                          description: str = "") -> WorkflowVersion:
    """Snapshot `canvas` as an immutable version: `version`, or the next `v0.0.N` when None. A version name
    the workflow already has is refused; a publish racing another one of the same workflow tries again."""
    if version is not None and not (0 < len(version.strip()) == len(version) <= VERSION_MAX):
        raise BadRequest(f"a version is 1 to {VERSION_MAX} characters, without surrounding spaces")

    def name(existing: Collection[str]) -> str:
        if version is None:
            numbers = [int(m.group(1)) for name in existing if (m := _AUTO_VERSION.match(name))]
            return f"v0.0.{max(numbers, default=0) + 1}"
        if version in existing:
            raise BadRequest(f"workflow {workflow_id} already has a version {version}")
        return version

    for _attempt in range(_PUBLISH_ATTEMPTS):
        published = await store.add_version(workflow_id, name, canvas, description)
        if published is not None:
            return published
    raise BadRequest(f"workflow {workflow_id} is being published concurrently; try again")


# --- demo -------------------------------------------------------------------------------------------------
def _ref(block_id: str, name: str) -> dict[str, Any]:
    return {
        "type": "string",
        "value": {
            "type": "ref",
            "content": {"source": "block-output", "blockID": block_id, "name": name},
            "rawMeta": {"type": 1},
        },
    }


def _node(node_id: str, type_id: str, title: str, x: int, data: dict[str, Any]) -> dict[str, Any]:
    meta = {"title": title, "description": "", "icon": "", "subTitle": ""}
    return {
        "id": node_id,
        "type": type_id,
        "meta": {"position": {"x": x, "y": 0}},
        "data": {"nodeMeta": meta, **data},
    }


def demo_canvas() -> dict[str, Any]:
    """Start(name) → Output ("Greeting") "Hello, {{name}}!" → End returning {"output": the greeting}, in Coze Studio's
    canvas shape."""
    start = _node(
        START_NODE_ID,
        "1",
        "Start",
        0,
        {
            "outputs": [{"type": "string", "name": "name", "required": False, "description": "who to greet"}],
            "trigger_parameters": [],
        },
    )
    output = _node(
        _DEMO_OUTPUT_NODE_ID,
        "13",
        "Greeting",  # not "Output": a run history keeps the End node's result under that key
        400,
        {
            "inputs": {
                "inputParameters": [{"name": "name", "input": _ref(START_NODE_ID, "name")}],
                "content": {"type": "string", "value": {"type": "literal", "content": "Hello, {{name}}!"}},
                "streamingOutput": False,
            },
            "outputs": [{"type": "string", "name": "output"}],
        },
    )
    end = _node(
        END_NODE_ID,
        "2",
        "End",
        800,
        {
            "inputs": {
                "terminatePlan": "returnVariables",
                "inputParameters": [{"name": "output", "input": _ref(_DEMO_OUTPUT_NODE_ID, "output")}],
            },
        },
    )
    return {
        "nodes": [start, output, end],
        "edges": [
            {"sourceNodeID": START_NODE_ID, "targetNodeID": _DEMO_OUTPUT_NODE_ID, "sourcePortID": ""},
            {"sourceNodeID": _DEMO_OUTPUT_NODE_ID, "targetNodeID": END_NODE_ID, "sourcePortID": ""},
        ],
        "versions": {"loop": "v2"},
    }


async def seed_demo(store: Store) -> tuple[Workflow, str] | None:
    """On an empty database (no tokens, no workflows): the default space, a published "hello" workflow and a
    development token with the `run` and `edit` permissions (the console signs in with it). Returns the workflow
    and the token's plaintext, or None when the database already held something.
    """
    if await store.count_tokens() > 0:
        return None
    workflows, _ = await store.list_workflows(space_ids=None, limit=1)
    if workflows:
        return None
    space = await store.ensure_space()
    workflow, _ = await import_workflow(
        store,
        demo_canvas(),
        name=DEMO_WORKFLOW_NAME,
        space_id=space.id,
        description='Says hello: run it with {"name": "…"}',
        publish=True,
    )
    _, plaintext = await create_token(store, DEMO_TOKEN_NAME, [PERMISSION_RUN, PERMISSION_EDIT], None)
    return workflow, plaintext
