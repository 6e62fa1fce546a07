"""Question (18): ask the user, pause the run, and turn the answer into outputs (Coze's QuestionAnswer node).

As Coze Studio (backend/domain/workflow/internal/nodes/qa/question_answer.go):
- `inputs.question` is a template over `inputParameters`; the interrupt payload is `{"messages": [...]}` with the
  conversation so far and the new question, ids `<node>_<n>`. The engine sends it as the content of one
  `Message` (`content_type` "text", `node_is_finish` true) just before the `Interrupt`, as Studio's event
  handler does: the question is not streamed, and an option question's options travel inside that JSON.
- `answer_type` "text": the answer becomes `USER_RESPONSE`. With `extra_output`, the model (`llmParam`) extracts
  the other declared outputs from the conversation; when it says required information is missing it returns a
  follow-up question, which is asked in a new interrupt, until `limit` answers have been given.
- `answer_type` "option": static `options` (templates) or `dynamic_option` (a list variable, first 26). An
  answer equal to option i gives `optionId` "A".."Z" and `optionContent`; static options take port `branch_i`,
  any dynamic option takes `branch_0` (Coze maps all of them there). Any other answer is given to the model
  with Coze's semantic-matching prompt (the options as `[{"option","option_id"}]`); it replies with an option id
  or -1. An id picks that option as above; -1 (or any negative number) gives `optionId` "other", the answer as
  `optionContent`, and port `default`. An option question asks once: `limit` only bounds follow-up questions of
  an extraction.

Differs from Coze: without a configured model (no `llmParam`, or one models.yaml cannot serve, no default) an
option answer is matched exactly only, where Coze cannot build the node; the model's option id may carry surrounding
whitespace, and an id past the last option fails the node with a NodeError (Coze panics). An extraction answer
that is not JSON fails the node with a NodeError.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from knotflow.contract import (
    Completion,
    InterruptRequest,
    Message,
    ModelError,
    Node,
    NodeContext,
    NodeInterrupt,
    NodeResult,
    Template,
)
from knotflow.dsl import jsonutil
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.convert import coerce_lenient
from knotflow.dsl.types import TypeInfo, to_text
from knotflow.dsl.values import Literal, ValueSource, parse_block_input
from knotflow.errors import BadRequest, CanvasError, NodeError
from knotflow.nodes._json_answer import extract_json, json_schema
from knotflow.nodes._llm_params import (
    CODE_NODE_FAILED,
    CODE_STRUCTURED_OUTPUT,
    LLMParams,
    model_client,
    model_failure,
    parse_llm_params,
    settle,
)

INTERRUPT_QUESTION = 2
USER_RESPONSE = "USER_RESPONSE"
OPTION_ID = "optionId"
OPTION_CONTENT = "optionContent"
OTHER = "other"
MAX_DYNAMIC_OPTIONS = 26  # Coze keeps the first 26 (option ids are the letters A..Z)

# Coze Studio's extraction prompts, verbatim: the model sees exactly what Coze sends.
EXTRACT_SYSTEM_PROMPT = """# 角色
你是一个参数提取 agent，你的工作是从用户的回答中提取出多个字段的值，每个字段遵循以下规则
# 字段说明
{schema}
## 输出要求 
- 严格以 json 格式返回答案。  
- 严格确保答案采用有效的 JSON 格式。  
- 按照字段说明提取出字段的值，将已经提取到的字段放在 fields 字段 
- 对于未提取到的<必填字段>生成一个新的追问问题question   
- 确保在追问问题中只包含所有未提取的<必填字段>   
- 不要重复问之前问过的问题   
- 问题的语种请和用户的输入保持一致，如英文、中文等 
- 输出按照下面结构体格式返回，包含提取到的字段或者追问的问题
- 不要回复和提取无关的问题
type Output struct {{
fields FieldInfo // 根据字段说明已经提取到的字段
question string // 新一轮追问的问题
}}"""  # noqa: W291
EXTRACT_USER_SUFFIX = """
- 严格以 json 格式返回答案。
- 严格确保答案采用有效的 JSON 格式。 
- - 必填字段没有获取全则继续追问
- 必填字段: {required}
{persona}
"""  # noqa: W291
PERSONA = """
追问人设设定: {persona}
"""
OPTION_MATCH_PROMPT = """# Role
You are a semantic matching expert, good at analyzing the option that the user wants to choose based on the current context.
##Skill
Skill 1: Clearly identify which of the following options the user's reply is semantically closest to:
{options}

##Restrictions
Strictly identify the intention and select the most suitable option. You can only reply with the option_id and no other content. If you think there is no suitable option, output -1
##Output format
Note: You can only output the id or -1. Your output can only be a pure number and no other content (including the reason)!"""  # noqa: E501
OPTION_ID_REPLY = re.compile(r"[+-]?\d+")


def option_id(index: int) -> str:
    return chr(ord("A") + index) if 0 <= index <= 25 else ""


class QuestionNode(Node):
    type_id = "18"
    display_key = "Question"
    branching = True  # only option questions choose a port; a text question's edges have no port

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        self.label = f"'{self.title}' ({self.id})" if self.title else self.id
        inputs = definition.inputs
        self.answer_type = str(inputs.get("answer_type") or "text")
        if self.answer_type not in ("text", "option"):
            raise CanvasError(f"question node {self.label}: unknown answer_type {self.answer_type!r}")
        self.question = Template.parse(str(inputs.get("question") or ""))
        self.option_type = str(inputs.get("option_type") or "static")
        self.options: list[Template] = []
        self.dynamic: ValueSource | None = None
        if self.answer_type == "option":
            if self.option_type == "static":
                names = [str(item.get("name") or "") for item in inputs.get("options") or []
                         if isinstance(item, dict)]
                if not names:
                    raise CanvasError(f"question node {self.label} answers by options but has no options")
                self.options = [Template.parse(name) for name in names]
            elif self.option_type == "dynamic":
                # Only read for dynamic options: canvases keep an empty placeholder reference otherwise.
                self.dynamic, _ = parse_block_input(inputs.get("dynamic_option"))
            else:
                raise CanvasError(f"question node {self.label}: unknown option_type {self.option_type!r}")
        self.extract = self.answer_type == "text" and bool(inputs.get("extra_output"))
        try:
            self.limit = int(inputs.get("limit") or 3)
        except (TypeError, ValueError) as exc:
            raise CanvasError(f"question node {self.label}: limit must be a number") from exc
        raw_llm = inputs.get("llmParam")
        # A missing model is reported when the node needs it (at run time), so the canvas still compiles.
        self.llm: LLMParams | None = (
            parse_llm_params(raw_llm, f"question node {self.label}") if raw_llm else None)
        self.fields: dict[str, TypeInfo] = {
            info.name: info for info in definition.outputs if info.name and info.name != USER_RESPONSE}
        if self.extract and not self.fields:
            raise CanvasError(f"question node {self.label} extracts from the answer but declares no outputs "
                              f"besides {USER_RESPONSE}")
        self.persona = Template.parse(self.llm.system_prompt if self.llm else "")

    def ports(self) -> list[str]:
        if self.answer_type != "option":
            return []
        count = len(self.options) if self.option_type == "static" else 1
        return [f"branch_{index}" for index in range(count)] + ["default"]

    def sources(self) -> list[ValueSource]:
        return [self.dynamic] if self.dynamic is not None else []

    def required_models(self) -> list[tuple[int | None, str | None]]:
        return [self.llm.model_key] if self.extract and self.llm is not None else []

    def check_resume(self, answer: str) -> None:
        if not answer.strip():
            raise BadRequest(f"the answer to question node {self.label} must not be empty")

    # The conversation lives in ctx.state as {"questions": [{"question", "choices"}], "answers": [...]}.

    def _messages(self, questions: list[dict[str, Any]], answers: list[str]) -> list[dict[str, Any]]:
        """Coze's interrupt history: each earlier question and answer, then the open question (ids as Coze
        numbers them: question i is `<node>_{2i}`, its answer `<node>_{i+1}`)."""
        content_type = "option" if self.answer_type == "option" else "text"

        def content(question: dict[str, Any]) -> Any:
            if self.answer_type == "option":
                options = [{"name": name} for name in question.get("choices") or []]
                return {"options": options, "question": question["question"]}
            return question["question"]

        history: list[dict[str, Any]] = []
        for index, question in enumerate(questions):
            history.append({"type": "question", "content_type": content_type, "content": content(question),
                            "id": f"{self.id}_{index * 2}"})
            if index < len(answers):
                history.append({"type": "answer", "content_type": content_type, "content": answers[index],
                                "id": f"{self.id}_{index + 1}"})
        return history

    def _ask(self, ctx: NodeContext, question: str | None = None,
             choices: list[str] | None = None) -> NodeInterrupt:
        """Ask `question` (None: the open question again) with the conversation so far."""
        state = ctx.state
        questions: list[dict[str, Any]] = state.setdefault("questions", [])
        answers: list[str] = state.setdefault("answers", [])
        if question is not None:
            questions.append({"question": question, "choices": choices})
        payload = jsonutil.dumps({"messages": self._messages(questions, answers)})
        return NodeInterrupt(InterruptRequest(INTERRUPT_QUESTION, payload))

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = await settle(ctx.inputs)
        skipped = {param.name for param in self.params if ctx.is_skipped(param.source)}
        state = ctx.state
        questions: list[dict[str, Any]] = state.setdefault("questions", [])
        answers: list[str] = state.setdefault("answers", [])
        answer = ctx.resume_data
        if answer is None and len(answers) < len(questions):
            # Still waiting while the run was resumed for another node: ask the open question again and keep
            # the conversation (Coze: "previously interrupted but not resumed this time").
            raise self._ask(ctx)
        if answer is None or not questions:
            questions.clear()
            answers.clear()
            choices = self._choices(ctx, inputs, skipped) if self.answer_type == "option" else None
            raise self._ask(ctx, self.question.render(inputs, skipped), choices)
        if len(answers) < len(questions):
            answers.append(answer)
        if self.answer_type == "option":
            return await self._choose(ctx, answer, list(questions[-1].get("choices") or []))
        if not self.extract:
            return NodeResult({USER_RESPONSE: answers[0]})
        return await self._extract(ctx, inputs, skipped, questions, answers)

    def _choices(self, ctx: NodeContext, inputs: dict[str, Any], skipped: set[str]) -> list[str]:
        if self.option_type == "static":
            return [option.render(inputs, skipped) for option in self.options]
        value = ctx.resolve(self.dynamic) if self.dynamic is not None else None
        if isinstance(self.dynamic, Literal) and isinstance(value, str):
            with contextlib.suppress(jsonutil.JSONDecodeError):  # a literal list saved as JSON text
                value = jsonutil.loads(value)
        if not isinstance(value, list) or not value:
            raise NodeError(f"question node {self.label}: the dynamic options (dynamic_option) are empty",
                            internal_code=CODE_NODE_FAILED)
        return [to_text(item) for item in value[:MAX_DYNAMIC_OPTIONS]]

    async def _choose(self, ctx: NodeContext, answer: str, choices: list[str]) -> NodeResult:
        index = choices.index(answer) if answer in choices else await self._match_by_model(ctx, answer, choices)
        if index < 0:
            return NodeResult({OPTION_ID: OTHER, OPTION_CONTENT: answer}, port="default")
        port = f"branch_{index}" if self.option_type == "static" else "branch_0"
        return NodeResult({OPTION_ID: option_id(index), OPTION_CONTENT: choices[index]}, port=port)

    def _has_model(self, ctx: NodeContext) -> bool:
        models = ctx.services.models
        return self.llm is not None and models is not None and models.serves(self.llm.model_key)

    async def _match_by_model(self, ctx: NodeContext, answer: str, choices: list[str]) -> int:
        """The index of the option the model says the answer means, or -1 for none (and without a model)."""
        if not self._has_model(ctx):
            return -1
        options = jsonutil.dumps([{"option": choice, "option_id": index} for index, choice in enumerate(choices)])
        completion = await self._complete(ctx, [{"role": "system", "content": OPTION_MATCH_PROMPT.format(
            options=options)}, {"role": "user", "content": answer}])
        reply = completion.content.strip()
        if not OPTION_ID_REPLY.fullmatch(reply):
            raise NodeError(f"question node {self.label}: the model's option match is not an option id: "
                            f"{completion.content[:200]!r}", internal_code=CODE_NODE_FAILED)
        index = int(reply)
        if index >= len(choices):
            raise NodeError(f"question node {self.label}: the model chose option id {index}, but there are only "
                            f"{len(choices)} options", internal_code=CODE_NODE_FAILED)
        return max(index, -1)

    async def _complete(self, ctx: NodeContext, messages: list[Message]) -> Completion:
        assert self.llm is not None  # callers check the node's model first
        client = model_client(ctx, self.llm, self.label)
        try:
            completion: Completion = await client.complete_chat(
                messages, temperature=self.llm.temperature, max_tokens=self.llm.max_tokens, top_p=self.llm.top_p)
        except ModelError as exc:
            raise model_failure(exc, self.label) from exc
        ctx.add_usage(completion.usage.prompt_tokens, completion.usage.completion_tokens)
        return completion

    async def _extract(self, ctx: NodeContext, inputs: dict[str, Any], skipped: set[str],
                       questions: list[dict[str, Any]], answers: list[str]) -> NodeResult:
        if self.llm is None:
            raise NodeError(f"question node {self.label} extracts fields from the answer (extra_output) but has "
                            f"no model configured: set its model (llmParam)", internal_code=CODE_NODE_FAILED)
        schema = jsonutil.dumps(json_schema(self.fields))
        required = "[" + " ".join(name for name, info in self.fields.items() if info.required) + "]"
        persona_text = self.persona.render(inputs, skipped)
        persona = PERSONA.format(persona=persona_text) if persona_text else ""
        suffix = EXTRACT_USER_SUFFIX.format(required=required, persona=persona)
        messages: list[Message] = [{"role": "system", "content": EXTRACT_SYSTEM_PROMPT.format(schema=schema)}]
        for index, question in enumerate(questions):
            messages.append({"role": "assistant", "content": question["question"]})
            reply = answers[index] + (suffix if index == len(questions) - 1 else "")
            messages.append({"role": "user", "content": reply})
        completion = await self._complete(ctx, messages)
        try:
            reply_json = jsonutil.loads(extract_json(completion.content))
        except jsonutil.JSONDecodeError as exc:
            raise NodeError(f"question node {self.label}: the model's extraction answer is not JSON: "
                            f"{completion.content[:200]!r}", internal_code=CODE_STRUCTURED_OUTPUT) from exc
        if not isinstance(reply_json, dict):
            raise NodeError(f"question node {self.label}: the model's extraction answer is not a JSON object",
                            internal_code=CODE_STRUCTURED_OUTPUT)
        follow_up = reply_json.get("question")
        if isinstance(follow_up, str) and follow_up:
            if len(answers) >= self.limit:
                raise NodeError(f"question node {self.label}: the required information is still missing after "
                                f"{len(answers)} answer(s), the node's limit", internal_code=CODE_NODE_FAILED)
            raise self._ask(ctx, follow_up, None)
        fields = reply_json.get("fields")
        if not isinstance(fields, dict):
            raise NodeError(f"question node {self.label}: the model's extraction answer has no 'fields' object",
                            internal_code=CODE_STRUCTURED_OUTPUT)
        # As Coze (ConvertInputs without the required check): declared fields only, kept when not convertible.
        outputs: dict[str, Any] = {name: coerce_lenient(fields[name], info)
                                   for name, info in self.fields.items() if name in fields}
        outputs[USER_RESPONSE] = answers[-1]
        return NodeResult(outputs)
