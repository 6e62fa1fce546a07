"""Intent (22): classify the `query` input into one of the configured intents and take that intent's port.

As Coze Studio's intent detector: intents are numbered from 1 (0 is "other intentions"); the model gets Coze's
classification system prompt with the intent list (and, in full mode, the node's own system prompt rendered
as the "advance" section) and the query as the user message. Port `branch_{id-1}` for a match, `default` for
0 (or an id out of range). Outputs `classificationId` and, in full mode, `reason`. In a chat with chat history on
(the editor's `chatHistorySetting`, which Studio's detector reads) the conversation's last rounds go between the
system prompt and the query, as for the LLM node.

Modes (`inputs.mode`):
- `all` (Coze's default): the model answers `{"classificationId": n, "reason": "..."}`.
- `top_speed` (Coze's fast mode): the model answers only the number; no `reason`.
- `minimal` (knotflow only; Coze has no model-free mode): no model call. The query matches an intent when it
  equals the intent's text (ignoring case and surrounding space); failing that, the first intent whose text
  occurs in the query; failing that, 0. `reason` says which rule matched.
"""

from __future__ import annotations

import json
from typing import Any

from knotflow.contract import ModelError, Node, NodeContext, NodeResult, Template
from knotflow.dsl import jsonutil
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.types import to_text
from knotflow.errors import CanvasError, NodeError
from knotflow.nodes._chat_history import setting_rounds
from knotflow.nodes._llm_params import (
    CODE_STRUCTURED_OUTPUT,
    build_messages,
    model_client,
    model_failure,
    parse_llm_params,
    settle,
)

MODE_ALL, MODE_FAST, MODE_MINIMAL = "all", "top_speed", "minimal"

SYSTEM_PROMPT = """
# Role
You are an intention classification expert, good at being able to judge which classification the user's input belongs to.

## Skills
Skill 1: Clearly determine which of the following intention classifications the user's input belongs to.
Intention classification list:
[
{"classificationId": 0, "content": "Other intentions"},
{{intents}}
]

Note:
- Please determine the match only between the user's input content and the Intention classification list content, without judging or categorizing the match with the classification ID.

{{advance}}

## Reply requirements
- The answer must be returned in JSON format.
- Strictly ensure that the output is in a valid JSON format.
- Do not add prefix "json or suffix""
- The answer needs to include the following fields such as:
{
"classificationId": 0,
"reason": "Unclear intentions"
}

##Limit
- Please do not reply in text.
"""  # noqa: E501  (Coze's prompt, kept verbatim: the model sees exactly what Coze sends)

FAST_SYSTEM_PROMPT = """
# Role
You are an intention classification expert, good at  being able to judge which classification the user's input belongs to.

## Skills
Skill 1: Clearly determine which of the following intention classifications the user's input belongs to.
Intention classification list:
[
{"classificationId": 0, "content": "Other intentions"},
{{intents}}
]

Note:
- Please determine the match only between the user's input content and the Intention classification list content, without judging or categorizing the match with the classification ID.


## Reply requirements
- The answer must be a number indicated classificationId.
- if not match, please just output an number 0.
- do not output json format data, just output an number.

##Limit
- Please do not reply in text."""  # noqa: E501


def intents_list(intents: list[str]) -> str:
    # Compact JSON with Go's escaping of non-ASCII left as is (Go's json.Marshal keeps UTF-8).
    items = [{"classificationId": index + 1, "content": text} for index, text in enumerate(intents)]
    return json.dumps(items, ensure_ascii=False, separators=(",", ":"))


def minimal_match(query: str, intents: list[str]) -> tuple[int, str]:
    wanted = query.strip().casefold()
    for index, text in enumerate(intents):
        if text.strip().casefold() == wanted:
            return index + 1, f"the query equals intent {text!r}"
    for index, text in enumerate(intents):
        if text.strip() and text.strip().casefold() in wanted:
            return index + 1, f"the query contains intent {text!r}"
    return 0, "no intent matches the query"


class IntentNode(Node):
    type_id = "22"
    display_key = "Intent"
    branching = True

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        self.label = f"'{self.title}' ({self.id})" if self.title else self.id
        raw_intents = definition.inputs.get("intents") or []
        self.intents = [str(item.get("name") or "") for item in raw_intents if isinstance(item, dict)]
        if not self.intents:
            raise CanvasError(f"intent node {self.label} has no intents")
        self.mode = str(definition.inputs.get("mode") or MODE_ALL)
        if self.mode not in (MODE_ALL, MODE_FAST, MODE_MINIMAL):
            raise CanvasError(f"intent node {self.label}: unknown mode {self.mode!r}")
        if not any(param.name == "query" for param in self.params):
            raise CanvasError(f"intent node {self.label} needs a 'query' input")
        self.llm = parse_llm_params(definition.inputs.get("llmParam") or {}, f"intent node {self.label}")
        self.advance = Template.parse(self.llm.system_prompt)
        base = FAST_SYSTEM_PROMPT if self.mode == MODE_FAST else SYSTEM_PROMPT
        self.system_prompt = base.replace("{{intents}}", intents_list(self.intents))
        # Studio's intent detector reads only the editor's chatHistorySetting, not llmParam's.
        self.history_rounds = setting_rounds(definition.inputs.get("chatHistorySetting"))

    def ports(self) -> list[str]:
        return [f"branch_{index}" for index in range(len(self.intents))] + ["default"]

    def required_models(self) -> list[tuple[int | None, str | None]]:
        return [] if self.mode == MODE_MINIMAL else [self.llm.model_key]

    def _port(self, classification: int) -> str:
        return f"branch_{classification - 1}" if 1 <= classification <= len(self.intents) else "default"

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = await settle(ctx.inputs)
        query = inputs.get("query")
        query_text = "" if query is None else to_text(query)
        if self.mode == MODE_MINIMAL:
            classification, reason = minimal_match(query_text, self.intents)
            return NodeResult({"classificationId": classification, "reason": reason}, port=self._port(classification))
        client = model_client(ctx, self.llm, self.label)
        system = self.system_prompt
        if self.mode == MODE_ALL:
            skipped = {param.name for param in self.params if ctx.is_skipped(param.source)}
            system = system.replace("{{advance}}", self.advance.render(inputs, skipped))
        messages = build_messages(system, query_text)
        history = ctx.services.chat_history if self.history_rounds else None
        if history is not None:  # as Studio: the earlier rounds between the system prompt and the query
            messages[-1:-1] = history.last(self.history_rounds)
        try:
            completion = await client.complete_chat(messages,
                                                    temperature=self.llm.temperature,
                                                    max_tokens=self.llm.max_tokens, top_p=self.llm.top_p)
        except ModelError as exc:
            raise model_failure(exc, self.label) from exc
        ctx.add_usage(completion.usage.prompt_tokens, completion.usage.completion_tokens)
        outputs = self._parse(completion.content)
        return NodeResult(outputs, port=self._port(outputs["classificationId"]))

    def _parse(self, content: str) -> dict[str, Any]:
        def fail(why: str) -> NodeError:
            return NodeError(f"intent node {self.label}: {why}: {content[:200]!r}",
                             internal_code=CODE_STRUCTURED_OUTPUT)

        if not content.strip():
            raise fail("the model's answer is empty")
        if self.mode == MODE_FAST:
            try:
                return {"classificationId": int(content.strip())}
            except ValueError as exc:
                raise fail("the model's answer is not a classification number") from exc
        # Coze reads from the first "{" to the first "}": the answer is one flat object.
        left, right = content.find("{"), content.find("}")
        if left == -1 or right < left:
            raise fail("the model's answer holds no JSON object")
        try:
            value = jsonutil.loads(content[left : right + 1])
        except jsonutil.JSONDecodeError as exc:
            raise fail("the model's answer is not valid JSON") from exc
        if not isinstance(value, dict):
            raise fail("the model's answer is not a JSON object")
        try:
            classification = int(value.get("classificationId") or 0)
        except (TypeError, ValueError) as exc:
            raise fail("classificationId is not a number") from exc
        outputs: dict[str, Any] = {**value, "classificationId": classification}
        if "reason" in outputs:
            outputs["reason"] = to_text(outputs["reason"])
        return outputs
