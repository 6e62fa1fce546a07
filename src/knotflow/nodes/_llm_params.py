"""`llmParam` as Coze Studio reads it, shared by the LLM (3) and Intent (22) nodes, and the model call.

The LLM node saves `llmParam` as a list of `{name, input: BlockInput}` (all literals); the Intent node saves
it as a plain object whose `prompt`/`systemPrompt` are BlockInputs. Both are read into `LLMParams`. Coze's
canvas spells the name `modleName`; `modelName` (the Intent node's spelling) is accepted too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from knotflow.contract import (
    MODELS_SETTING_HINT,
    ChatModel,
    Message,
    ModelError,
    ModelKey,
    NodeContext,
    TextStream,
    describe_model,
)
from knotflow.dsl.values import Literal, parse_block_input
from knotflow.errors import CanvasError, NodeError

# Coze model.ResponseFormat
FORMAT_TEXT, FORMAT_MARKDOWN, FORMAT_JSON = 0, 1, 2

# Coze Studio errno values carried in the stream's `[code]` prefix.
CODE_NODE_FAILED = 720701013
CODE_NODE_TIMEOUT = 777777776  # ErrNodeTimeout
CODE_STRUCTURED_OUTPUT = 777777773  # ErrLLMStructuredOutputParseFail


@dataclass(slots=True)
class LLMParams:
    model_type: int | None = None
    model_name: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    response_format: int = FORMAT_TEXT
    prompt: str = ""
    system_prompt: str = ""
    enable_chat_history: bool = False
    chat_history_round: int = 0
    generation_diversity: str = ""

    @property
    def model_key(self) -> ModelKey:
        return self.model_type, self.model_name


def _literal(raw: Any) -> Any:
    """A BlockInput's literal content; a bare value stays as it is."""
    if isinstance(raw, dict) and "value" in raw:
        source, _ = parse_block_input(raw)
        return source.value if isinstance(source, Literal) else None
    return raw


def _number(value: Any, kind: type, label: str, where: str) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError) as exc:
        raise CanvasError(f"{where}: llmParam {label} must be a number, got {value!r}") from exc


def parse_llm_params(raw: Any, where: str) -> LLMParams:
    if isinstance(raw, list):
        values = {str(item["name"]): _literal(item.get("input")) for item in raw
                  if isinstance(item, dict) and item.get("name")}
    elif isinstance(raw, dict):
        values = {str(key): _literal(value) for key, value in raw.items()}
    else:
        raise CanvasError(f"{where} has no llmParam")
    name = values.get("modleName") or values.get("modelName")
    response_format = _number(values.get("responseFormat"), int, "responseFormat", where)
    if response_format is None:
        response_format = FORMAT_TEXT
    if response_format not in (FORMAT_TEXT, FORMAT_MARKDOWN, FORMAT_JSON):
        raise CanvasError(f"{where}: unsupported response format {response_format}")
    enable_history = values.get("enableChatHistory")
    return LLMParams(
        model_type=_number(values.get("modelType"), int, "modelType", where),
        model_name=str(name) if name else None,
        temperature=_number(values.get("temperature"), float, "temperature", where),
        max_tokens=_number(values.get("maxTokens"), int, "maxTokens", where),
        top_p=_number(values.get("topP"), float, "topP", where),
        response_format=response_format,
        prompt=str(values.get("prompt") or ""),
        system_prompt=str(values.get("systemPrompt") or ""),
        enable_chat_history=enable_history is True or str(enable_history).lower() == "true",
        chat_history_round=_number(values.get("chatHistoryRound"), int, "chatHistoryRound", where) or 0,
        generation_diversity=str(values.get("generationDiversity") or ""),
    )


async def settle(inputs: dict[str, Any]) -> dict[str, Any]:
    """Inputs with any streamed text read to its end: a prompt needs the whole text."""
    settled = dict(inputs)
    for key, value in inputs.items():
        if isinstance(value, TextStream):
            settled[key] = "".join([chunk async for chunk in value.chunks()])
    return settled


def model_client(ctx: NodeContext, params: LLMParams, node_label: str) -> ChatModel:
    """The node's model, or a NodeError naming the model and the setting."""
    models = ctx.services.models
    if models is None:
        raise NodeError(f"node {node_label} calls model {describe_model(*params.model_key)}, but no models are "
                        f"configured on this server: add it to {MODELS_SETTING_HINT}", internal_code=CODE_NODE_FAILED)
    try:
        return models.chat_model(params.model_key)
    except CanvasError as exc:
        raise NodeError(f"node {node_label}: {exc.message}", internal_code=CODE_NODE_FAILED) from exc


def model_failure(exc: ModelError, node_label: str) -> NodeError:
    code = CODE_NODE_TIMEOUT if exc.kind == "timeout" else CODE_NODE_FAILED
    return NodeError(f"node {node_label}: model call failed: {exc.message}", internal_code=code)


def build_messages(system: str, user: str | list[dict[str, Any]]) -> list[Message]:
    # An empty system message is dropped: Coze sends it, but several OpenAI-compatible servers reject an
    # empty `content`, and it carries nothing.
    messages: list[Message] = []
    if system.strip():
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": user})
    return messages

