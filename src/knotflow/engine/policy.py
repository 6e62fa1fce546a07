"""A node's error policy — Coze Studio's `inputs.settingOnError` — compiled once and applied around `node.run`.

As Coze Studio (`canvas/adaptor/to_schema.go::toExceptionConfig`, `compose/node_runner.go`):

- `timeoutMs` limits the node; `switch` does not turn it off. knotflow limits each attempt (Coze: all attempts
  together, so there a retry after a timeout never runs); the cut attempt is cancelled, its provider call aborted.
- `retryTimes` more attempts after a failure (knotflow waits a short, doubling backoff between them; Coze none).
  `NodeContext.attempt` tells the node which attempt runs (the LLM node switches to its backup model).
- `processType` 1 (or absent): the failure fails the run. 2: the node succeeds with `dataOnErr` (JSON, converted
  to the declared outputs; text that does not parse fills string outputs and zero values elsewhere) plus
  `errorBody {errorMessage, errorCode}` and `isSuccess: false`. 3: the node outputs only `errorBody` and
  `isSuccess: false` and takes its `branch_error` port; the normal port (`default`, or a plain edge) dies. With 2
  and 3 a success adds `isSuccess: true`. Absent `processType` with `dataOnErr` and `switch` on means 2.
- A node that already streamed text to its consumers and then fails is not retried and fails the run whatever the
  policy: the text is out (Coze Studio's stream errors reach the stream's readers, not the node's error handling).

An interrupt (a node asking the user) is never a failure. The run's own size limit is never retried or handled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from knotflow.contract import ERROR_BODY, IS_SUCCESS, NodeResult, Suspended
from knotflow.dsl import jsonutil
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.convert import coerce
from knotflow.dsl.types import BOOLEAN, FLOAT, INTEGER, LIST, OBJECT, STRING, TypeInfo, TypeMismatch
from knotflow.errors import CanvasError, KnotflowError, NodeError, RunTooLarge

THROW, RETURN_DEFAULT, EXCEPTION_BRANCH = 1, 2, 3
ERROR_PORT, DEFAULT_PORT = "branch_error", "default"
CODE_NODE_FAILED = 720701013  # Coze Studio's ErrWorkflowExecuteFail
CODE_NODE_TIMEOUT = 777777776  # Coze Studio's ErrNodeTimeout
FIRST_BACKOFF, MAX_BACKOFF = 0.1, 2.0  # seconds

_ZERO: dict[str, Any] = {STRING: "", INTEGER: 0, FLOAT: 0.0, BOOLEAN: False}


def _zero(info: TypeInfo) -> Any:
    if info.type == OBJECT:
        return {}
    if info.type == LIST:
        return []
    return _ZERO.get(info.type)


def _number(raw: Any, label: str, where: str) -> int:
    if raw is None or raw == "":
        return 0
    try:
        value = int(float(raw))
    except (TypeError, ValueError) as exc:
        raise CanvasError(f"{where}: settingOnError.{label} must be a number, got {raw!r}") from exc
    if value < 0:
        raise CanvasError(f"{where}: settingOnError.{label} must not be negative, got {value}")
    return value


def default_output(data: str, outputs: dict[str, TypeInfo]) -> dict[str, Any]:
    """`dataOnErr` converted to the declared outputs, as Coze's parseDefaultOutputOrFallback: keys it does not
    declare pass as they are; text that is not a JSON object, or a value that does not convert, gives every
    string output the raw text and every other output its zero value."""
    try:
        parsed = jsonutil.loads(data)
        if not isinstance(parsed, dict):
            raise TypeMismatch("not an object")
        return {key: coerce(value, outputs[key]) if key in outputs else value for key, value in parsed.items()}
    except (jsonutil.JSONDecodeError, TypeMismatch):
        return {name: data if info.type == STRING else _zero(info) for name, info in outputs.items()}


@dataclass(slots=True, frozen=True)
class ErrorPolicy:
    timeout: float | None  # seconds per attempt
    retries: int
    process: int
    default: dict[str, Any] | None  # process RETURN_DEFAULT: the outputs on failure, before the error fields
    error_body: TypeInfo | None  # the declared `errorBody`, to give the error fields their declared types
    native_branching: bool  # the node chooses a port itself (If, Intent...)

    @property
    def branches(self) -> bool:
        return self.process == EXCEPTION_BRANCH

    @property
    def reports_success(self) -> bool:
        return self.process in (RETURN_DEFAULT, EXCEPTION_BRANCH)

    def success(self, result: NodeResult) -> NodeResult:
        if not self.reports_success:
            return result
        port = result.port if self.native_branching or not self.branches else DEFAULT_PORT
        shown = None if result.trace_output is None else {**result.trace_output, IS_SUCCESS: True}
        # The node's warnings stay on its trace entry.
        return NodeResult({**result.outputs, IS_SUCCESS: True}, port, result.answer, result.warnings, shown)

    def failure(self, error: KnotflowError) -> NodeResult:
        body: Any = {"errorMessage": error.message, "errorCode": error.internal_code}
        if self.error_body is not None:
            with contextlib.suppress(TypeMismatch):
                body = coerce(body, self.error_body)
        fields = {ERROR_BODY: body, IS_SUCCESS: False}
        if self.process == RETURN_DEFAULT:
            return NodeResult({**(self.default or {}), **fields})
        return NodeResult(fields, ERROR_PORT)

    def backoff(self, attempt: int) -> float:
        return min(FIRST_BACKOFF * 2 ** (attempt - 1), MAX_BACKOFF)

    async def run(
        self,
        attempt: Callable[[int], Awaitable[NodeResult]],
        *,
        label: str,
        node_id: str,
        streamed: Callable[[], bool],
        on_retry: Callable[[int, KnotflowError], None],
    ) -> tuple[NodeResult, KnotflowError | None]:
        """Run the attempts; the result, and the error the policy turned into it (None on success).
        Raises the last error when the policy throws (or the node already streamed)."""
        number = 0
        while True:
            limit: asyncio.Timeout | None = None
            try:
                if self.timeout is None:
                    result = await attempt(number)
                else:
                    async with asyncio.timeout(self.timeout) as limit:
                        result = await attempt(number)
                return self.success(result), None
            except (RunTooLarge, Suspended):
                raise
            except Exception as exc:
                if isinstance(exc, TimeoutError) and limit is not None and limit.expired():
                    error: KnotflowError = NodeError(f"node {label} timed out after {self.timeout:g} s",
                                                     internal_code=CODE_NODE_TIMEOUT, node_id=node_id)
                else:
                    error = as_node_error(exc, label, node_id)
            if streamed():
                raise error
            if number < self.retries:
                number += 1
                on_retry(number, error)
                await asyncio.sleep(self.backoff(number))
                continue
            if self.process == THROW:
                raise error
            return self.failure(error), error


def as_node_error(exc: BaseException, label: str, node_id: str) -> KnotflowError:
    if isinstance(exc, KnotflowError):
        return exc
    error = NodeError(f"node {label} failed: {exc}", internal_code=CODE_NODE_FAILED, node_id=node_id)
    error.__cause__ = exc
    return error


def parse_policy(definition: NodeDef, native_branching: bool) -> ErrorPolicy | None:
    """The node's policy, or None when it has none (the engine then calls `run` directly)."""
    setting = definition.inputs.get("settingOnError")
    if not isinstance(setting, dict):
        return None
    where = f"node '{definition.title}' ({definition.id})"
    timeout_ms = _number(setting.get("timeoutMs"), "timeoutMs", where)
    retries = _number(setting.get("retryTimes"), "retryTimes", where)
    data = setting.get("dataOnErr")
    data = data if isinstance(data, str) and data else None
    raw_process = setting.get("processType")
    if raw_process is None or raw_process == "":
        process = RETURN_DEFAULT if data is not None and setting.get("switch") is True else THROW
    else:
        process = _number(raw_process, "processType", where)
    if process not in (THROW, RETURN_DEFAULT, EXCEPTION_BRANCH):
        raise CanvasError(f"{where}: unknown settingOnError.processType {process} (1 throw, 2 return default "
                          "output, 3 exception branch)")
    if process == RETURN_DEFAULT and data is None:
        raise CanvasError(f"{where}: settingOnError returns default output on error, but dataOnErr is empty")
    if not timeout_ms and not retries and process == THROW:
        return None
    outputs = {info.name: info for info in definition.outputs}
    return ErrorPolicy(
        timeout=timeout_ms / 1000 if timeout_ms else None,
        retries=retries,
        process=process,
        default=default_output(data, outputs) if process == RETURN_DEFAULT and data is not None else None,
        error_body=outputs.get(ERROR_BODY),
        native_branching=native_branching,
    )
