"""LLM (3): render the prompts over the node's inputs, call the configured model, shape the answer.

Follows Coze Studio's llm node: the system and user prompts are templates over `inputParameters`; response
format 1 (markdown) and 2 (JSON) append Coze's instructions to the user prompt; in JSON format the declared
output fields are parsed from the answer (```json fences stripped), unless the only declared output (besides
`reasoning_content`) is one string, which Coze treats as plain text. knotflow asks again, up to the model's
`json_retries` (models.yaml, default 2), when the answer is not valid JSON for the declared fields, and then
fails with a NodeError. (Coze Studio's own run instead records a warning and outputs `{}`.)

Chat history (chatflows only): with `enableChatHistory`, a run that belongs to a conversation sends the last
`chatHistoryRound` rounds (each the user's message and the answers to it) between the system prompt and the
user prompt. As in Coze Studio, the `llmParam` flags decide; the editor's `chatHistorySetting` is read only
when `llmParam` does not carry them.

settingOnError (timeout, retries, default output, exception branch) is the engine's (knotflow.engine.policy);
a retry calls the backup model (`ext.backupLLmParam`) when there is one, as Coze Studio.

Not yet: tools / skills (`fcParam`: workflows, plugins or knowledge the model may call). A canvas whose LLM node
has any is refused when it is compiled (import, publish), naming the node and the kinds: run without them, the
model would answer differently from Coze's, silently.
"""

from __future__ import annotations

from typing import Any

from knotflow.contract import POLICY_OUTPUTS, Message, ModelError, Node, NodeContext, NodeResult, Template
from knotflow.dsl import jsonutil
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.types import STRING
from knotflow.errors import CanvasError, NodeError
from knotflow.nodes._chat_history import history_rounds
from knotflow.nodes._json_answer import json_schema, parse_json_answer
from knotflow.nodes._llm_params import (
    CODE_STRUCTURED_OUTPUT,
    FORMAT_JSON,
    FORMAT_MARKDOWN,
    LLMParams,
    build_messages,
    model_client,
    model_failure,
    parse_llm_params,
    settle,
)
from knotflow.nodes._multimodal import file_inputs, openai_parts, prompt_parts, user_input_fields

REASONING = "reasoning_content"

# Coze Studio's instructions for the two structured formats, appended to the user prompt.
JSON_PROMPT = """
Strictly reply in valid JSON format.
- Ensure the output strictly conforms to the JSON schema below
- Do not include explanations, comments, or any text outside the JSON.

Here is the output JSON schema:
'''
{schema}
'''
"""
MARKDOWN_PROMPT = """
Strictly reply in valid Markdown format.
- For headings, use number signs (#).
- For list items, start with dashes (-).
- To emphasize text, wrap it with asterisks (*).
- For code or commands, surround them with backticks (`).
- For quoted text, use greater than signs (>).
- For links, wrap the text in square brackets [], followed by the URL in parentheses ().
- For images, use square brackets [] for the alt text, followed by the image URL in parentheses ().

"""

def backup_llm_params(inputs: dict[str, Any], where: str) -> LLMParams | None:
    """The model settingOnError.ext.backupLLmParam names (a JSON text): only its model and options are used."""
    ext = (inputs.get("settingOnError") or {}).get("ext")
    raw = ext.get("backupLLmParam") if isinstance(ext, dict) else None
    if not raw:
        return None
    try:
        value = jsonutil.loads(raw) if isinstance(raw, str) else raw
    except jsonutil.JSONDecodeError as exc:
        raise CanvasError(f"{where}: settingOnError backupLLmParam is not JSON ({exc})") from exc
    return parse_llm_params(value, f"{where} (backup model)")


# fcParam's sections and the list in each that names the tools (Coze Studio's vo.FCParam).
TOOL_LISTS = {"workflowFCParam": ("workflowList", "workflows"), "pluginFCParam": ("pluginList", "plugins"),
              "knowledgeFCParam": ("knowledgeList", "knowledge")}


def tool_kinds(fc_param: Any) -> list[str]:
    """The kinds of tools an LLM node's `fcParam` gives the model (an empty section, as Studio saves, is none)."""
    if not isinstance(fc_param, dict):
        return []
    kinds = []
    for section, (list_key, kind) in TOOL_LISTS.items():
        value = fc_param.get(section)
        if isinstance(value, dict) and value.get(list_key):
            kinds.append(kind)
    return kinds


class LLMNode(Node):
    type_id = "3"
    display_key = "LLM"

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        self.label = f"'{self.title}' ({self.id})" if self.title else self.id
        tools = tool_kinds(definition.inputs.get("fcParam"))
        if tools:
            raise CanvasError(f"LLM node {self.label} gives the model tools ({', '.join(tools)}), which knotflow "
                              "does not support yet: remove them from the node, or run this canvas on Coze")
        self.llm = parse_llm_params(definition.inputs.get("llmParam"), f"LLM node {self.label}")
        # errorBody / isSuccess are filled by the engine's error policy, never by the model.
        self.fields = {info.name: info for info in definition.outputs if info.name and info.name not in POLICY_OUTPUTS}
        if not self.fields:
            raise CanvasError(f"LLM node {self.label} declares no outputs")
        answer_fields = {k: v for k, v in self.fields.items() if k != REASONING}
        self.has_reasoning = REASONING in self.fields
        self.json_mode = self.llm.response_format == FORMAT_JSON and not (
            len(answer_fields) == 1 and next(iter(answer_fields.values())).type == STRING
        )
        if not self.json_mode:
            # Coze: a text answer fills exactly one string output (plus, optionally, reasoning_content).
            if len(answer_fields) != 1 or any(info.type != STRING for info in self.fields.values()):
                raise CanvasError(
                    f"LLM node {self.label}: a text answer needs exactly one string output (and optionally "
                    f"'{REASONING}'); use response format JSON for several or typed outputs"
                )
            self.output_key = next(iter(answer_fields))
            # Text answers stream: a streaming Output/End node right after this one shows tokens as they come.
            self.stream_fields = frozenset({self.output_key})
        user_prompt = self.llm.prompt
        if self.llm.response_format == FORMAT_JSON:
            schema = jsonutil.dumps(json_schema(answer_fields))
            user_prompt += JSON_PROMPT.format(schema=schema)
        elif self.llm.response_format == FORMAT_MARKDOWN:
            user_prompt += MARKDOWN_PROMPT
        self.system_template = Template.parse(self.llm.system_prompt)
        self.user_template = Template.parse(user_prompt)
        self.history_rounds = history_rounds(self.llm, definition.inputs)
        self.file_inputs = file_inputs(self.params)
        self.user_input_fields = user_input_fields(self.params)
        self.backup = backup_llm_params(definition.inputs, f"LLM node {self.label}")

    def required_models(self) -> list[tuple[int | None, str | None]]:
        return [self.llm.model_key] + ([self.backup.model_key] if self.backup is not None else [])

    async def _messages(self, ctx: NodeContext, inputs: dict[str, Any]) -> list[Message]:
        skipped = {param.name for param in self.params if ctx.is_skipped(param.source)}
        parts = prompt_parts(self.user_template, inputs, skipped, self.file_inputs, self.user_input_fields,
                             ctx.services.user_message)
        user: str | list[dict[str, Any]] = (self.user_template.render(inputs, skipped) if parts is None
                                            else await openai_parts(ctx, parts))
        messages = build_messages(self.system_template.render(inputs, skipped), user)
        history = ctx.services.chat_history if self.history_rounds else None
        if history is not None:
            messages[-1:-1] = history.last(self.history_rounds)
        return messages

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = ctx.inputs
        # As Coze Studio, a retry (settingOnError.retryTimes) calls the backup model when there is one.
        llm = self.backup if self.backup is not None and ctx.attempt > 0 else self.llm
        client = model_client(ctx, llm, self.label)
        messages = await self._messages(ctx, await settle(inputs))
        options: dict[str, Any] = {"temperature": llm.temperature, "max_tokens": llm.max_tokens, "top_p": llm.top_p}
        if self.json_mode:
            return NodeResult(await self._json_answer(ctx, client, messages, options))
        content: list[str] = []
        reasoning: list[str] = []
        stream = ctx.open_stream(self.output_key)
        try:
            async for chunk in client.stream_chat(messages, json_mode=False, **options):
                stream.write(chunk.content)
                content.append(chunk.content)
                reasoning.append(chunk.reasoning_content)
                if chunk.usage is not None:
                    ctx.add_usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        except ModelError as exc:
            raise model_failure(exc, self.label) from exc
        outputs: dict[str, Any] = {self.output_key: "".join(content)}
        if self.has_reasoning:
            outputs[REASONING] = "".join(reasoning)
        return NodeResult(outputs)

    async def _json_answer(self, ctx: NodeContext, client: Any, messages: list[Message],
                           options: dict[str, Any]) -> dict[str, Any]:
        attempts = 1 + client.json_retries
        problem = ""
        for _ in range(attempts):
            try:
                completion = await client.complete_chat(messages, **options)
            except ModelError as exc:
                raise model_failure(exc, self.label) from exc
            ctx.add_usage(completion.usage.prompt_tokens, completion.usage.completion_tokens)
            try:
                outputs = parse_json_answer(completion.content, self.fields)
            except ValueError as exc:
                problem = str(exc)
                continue
            if self.has_reasoning:
                outputs[REASONING] = completion.reasoning_content
            return outputs
        raise NodeError(
            f"node {self.label}: the model's answer did not fit the declared JSON outputs after {attempts} "
            f"attempt(s): {problem}",
            internal_code=CODE_STRUCTURED_OUTPUT,
        )
