"""Sub-workflow (9): run another published workflow with the node's inputs; its End node's output is the node's.

As Coze Studio's: `inputs.workflowId` names the workflow and `inputs.workflowVersion` the version (Studio runs the
child's draft when it is empty; knotflow runs only published workflows, so the latest published version), the
node's `inputParameters` are the child's Start parameters (its defaults fill what is missing), and the node's
output is the child End's variables, or `{"output": answer}` for an End that answers. The child's Output nodes
show their messages in the run's stream; the child End's answer is not shown on its own but streams into the
node's `output`, so that a streaming node of the parent that shows it shows it live, once (Studio shows it, and
again where the parent shows the node's output: coze-studio#2281). The child's token usage counts in the run's.
A question inside the child (at any depth) pauses the whole run, and the resume goes on inside the child.
Publishing refuses a workflow that runs itself through sub-workflows; `KNOTFLOW_MAX_WORKFLOW_DEPTH` bounds how
deep children nest at run time.
"""

from __future__ import annotations

from knotflow.contract import BodyInterrupted, Node, NodeContext, NodeInterrupt, NodeResult
from knotflow.dsl.canvas import NodeDef
from knotflow.errors import CanvasError
from knotflow.nodes._composite import request_json, request_of

CHILD = "0"  # the node's one child run (inside a Loop or Batch, each iteration has a run of its own)


class SubWorkflowNode(Node):
    type_id = "9"
    display_key = "SubWorkflow"
    # A child End that answers streams its answer here: a streaming Output or End of the parent that shows the
    # node's `output` shows it as it comes, once.
    stream_fields = frozenset({"output"})

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        label = f"sub-workflow node '{self.title}' ({self.id})"
        workflow_id = str(definition.inputs.get("workflowId") or "").strip()
        if not workflow_id:
            raise CanvasError(f"{label}: sub workflow node's workflowID is empty")
        if not workflow_id.isascii() or not workflow_id.isdigit():
            raise CanvasError(f"{label}: sub workflow node's workflowID is not a number: {workflow_id}")
        self.workflow_id = workflow_id
        self.version = str(definition.inputs.get("workflowVersion") or "").strip() or None

    def required_workflows(self) -> list[tuple[str, str | None]]:
        return [(self.workflow_id, self.version)]

    async def run(self, ctx: NodeContext) -> NodeResult:
        state = ctx.state
        answer = ctx.resume_data
        try:
            if answer is not None and "asked" in state:
                output = await ctx.resume_workflow(CHILD, answer, self.workflow_id, self.version)
            else:
                output = await ctx.run_workflow(CHILD, self.workflow_id, self.version, dict(ctx.inputs))
        except BodyInterrupted as asked:
            state["asked"] = request_json(asked.request)
            raise NodeInterrupt(request_of(state["asked"])) from None
        state.clear()
        return NodeResult(output)
