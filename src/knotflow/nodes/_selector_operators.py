"""The Selector's comparison operators, with Coze Studio's exact semantics.

Coze evaluates a clause in two steps, mirrored here: a type check of the operands (Go's `WillAccept`), which
fails the node on operands the operator cannot compare, then the comparison itself. Go is strictly typed,
so "equal" means same type and same value: `1 == 1.0` only after the number alignment of the ordering and
equality operators, `"1" == 1` never, and a boolean is not a number. A nil (absent, null, skipped) left
operand never fails the type check; each operator gives it a fixed answer.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from knotflow.dsl.types import OBJECT


class OperatorError(ValueError):
    """Operands an operator does not accept (Coze fails the node)."""


class Operator(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    EMPTY = "empty"
    NOT_EMPTY = "not_empty"
    GREATER = ">"
    GREATER_OR_EQUAL = ">="
    LESSER = "<"
    LESSER_OR_EQUAL = "<="
    IS_TRUE = "true"
    IS_FALSE = "false"
    LENGTH_GREATER = "len >"
    LENGTH_GREATER_OR_EQUAL = "len >="
    LENGTH_LESSER = "len <"
    LENGTH_LESSER_OR_EQUAL = "len <="
    CONTAIN = "contain"
    NOT_CONTAIN = "not_contain"
    CONTAIN_KEY = "contain_key"
    NOT_CONTAIN_KEY = "not_contain_key"


# The canvas's `operator` numbers (Coze's vo.OperatorType, in declaration order from 1).
CANVAS_OPERATORS: dict[int, Operator] = {
    1: Operator.EQUAL,
    2: Operator.NOT_EQUAL,
    3: Operator.LENGTH_GREATER,
    4: Operator.LENGTH_GREATER_OR_EQUAL,
    5: Operator.LENGTH_LESSER,
    6: Operator.LENGTH_LESSER_OR_EQUAL,
    7: Operator.CONTAIN,
    8: Operator.NOT_CONTAIN,
    9: Operator.EMPTY,
    10: Operator.NOT_EMPTY,
    11: Operator.IS_TRUE,
    12: Operator.IS_FALSE,
    13: Operator.GREATER,
    14: Operator.GREATER_OR_EQUAL,
    15: Operator.LESSER,
    16: Operator.LESSER_OR_EQUAL,
}


def canvas_operator(number: Any, left_type: str) -> Operator:
    """The operator a canvas condition names; contain on an object left operand means contains-key."""
    try:
        operator = CANVAS_OPERATORS[int(number)]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"unsupported operator type: {number!r}") from None
    if left_type == OBJECT:
        if operator is Operator.CONTAIN:
            return Operator.CONTAIN_KEY
        if operator is Operator.NOT_CONTAIN:
            return Operator.NOT_CONTAIN_KEY
    return operator


def go_type(value: Any) -> str:
    """The Go type a JSON-decoded value has in Coze, for type checks and messages."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _go_equal(left: Any, right: Any) -> bool:
    """Go's `==` on two interface values: same dynamic type and same value; maps and slices cannot compare."""
    kind = go_type(left)
    if kind != go_type(right):
        return False
    if isinstance(left, list | dict):
        raise OperatorError(f"runtime error: comparing uncomparable type {kind}")
    return bool(left == right)


def _check(op: Operator, left: Any, right: Any) -> None:
    """Go's `Operator.WillAccept`."""
    lt, rt = go_type(left), go_type(right)
    if op in (Operator.EQUAL, Operator.NOT_EQUAL):
        if left is None or right is None:
            return
        if not (_is_number(left) or isinstance(left, bool | str)):
            raise OperatorError(f"operator {op.value} only accepts int64, float64, bool or string, not {lt}")
        if isinstance(left, bool) and not isinstance(right, bool):
            raise OperatorError(
                f"operator {op.value} left operant and right operant must be same type: {lt}, {rt}"
            )
        if _is_number(left) and not _is_number(right):
            raise OperatorError(f"operator {op.value} right operant must be int64 or float64, not {rt}")
    elif op in (Operator.EMPTY, Operator.NOT_EMPTY):
        if right is not None:
            raise OperatorError(f"operator {op.value} does not accept non-nil right operant: {rt}")
    elif op in (Operator.GREATER, Operator.GREATER_OR_EQUAL, Operator.LESSER, Operator.LESSER_OR_EQUAL):
        if left is not None and not _is_number(left):
            raise OperatorError(f"operator {op.value} only accepts float64 or int64, not {lt}")
    elif op in (Operator.IS_TRUE, Operator.IS_FALSE):
        if left is None:
            return
        if right is not None:
            raise OperatorError(f"operator {op.value} does not accept non-nil right operant: {rt}")
        if not isinstance(left, bool):
            raise OperatorError(f"operator {op.value} only accepts boolean, not {lt}")
    elif op.value.startswith("len"):
        if left is None:
            return
        if not isinstance(left, str | list):
            raise OperatorError(f"operator {op.value} left operant only accepts string or slice, not {lt}")
        if not isinstance(right, int) or isinstance(right, bool):
            raise OperatorError(f"operator {op.value} right operant only accepts int64, not {rt}")
    elif op in (Operator.CONTAIN, Operator.NOT_CONTAIN):
        if left is None:
            return
        if isinstance(left, str):
            if not isinstance(right, str):
                raise OperatorError(
                    f"operator {op.value} whose left operant is string only accepts right operant of string, "
                    f"not {rt}"
                )
        elif isinstance(left, list):
            # Anything is assignable to a []interface{} element, but Go cannot ask a nil type that question.
            if right is None:
                raise OperatorError(f"operator {op.value} needs a right operant")
        else:
            raise OperatorError(f"operator {op.value} only accepts left operant of string or slice, not {lt}")
    elif op in (Operator.CONTAIN_KEY, Operator.NOT_CONTAIN_KEY):
        if left is None:
            return
        if not isinstance(left, dict):
            raise OperatorError(f"operator {op.value} only accepts left operant of map, not {lt}")
        if not isinstance(right, str):
            raise OperatorError(f"operator {op.value} only accepts right operant of string, not {rt}")


def _is_empty(left: Any) -> bool:
    # "None" is how a Python code node's null often arrives as text; Coze counts it as empty.
    if left is None:
        return True
    if isinstance(left, list | dict):
        return len(left) == 0
    if isinstance(left, str):
        return left in ("", "None")
    if isinstance(left, bool):
        return not left
    if _is_number(left):
        return bool(left == 0)
    return False


def _align(left: int | float, right: int | float) -> tuple[int | float, int | float]:
    """Go's alignNumberTypes: an int64 meeting a float64 becomes a float64 (and may lose precision)."""
    if isinstance(left, float) != isinstance(right, float):
        return float(left), float(right)
    return left, right


def _numbers(op: Operator, left: Any, right: Any) -> tuple[int | float, int | float]:
    if not _is_number(right):
        # Go type-asserts the right operand to a number here and panics on anything else.
        raise OperatorError(f"operator {op.value} cannot compare {go_type(left)} with {go_type(right)}")
    return _align(left, right)


def _ordered(op: Operator, left: Any, right: Any, compare: Callable[[Any, Any], bool],
             nil_left: Callable[[Any], bool]) -> bool:
    if left is None:
        return nil_left(right)
    if right is None:
        return op in (Operator.GREATER, Operator.GREATER_OR_EQUAL)
    a, b = _numbers(op, left, right)
    return compare(a, b)


def _length(left: Any) -> int:
    # Go's len() of a string counts UTF-8 bytes, not characters.
    return len(left.encode("utf-8")) if isinstance(left, str) else len(left)


def _contains(left: Any, right: Any) -> bool:
    if isinstance(left, str):
        return right in left
    return any(_go_equal(item, right) for item in left)


def evaluate(op: Operator, left: Any, right: Any) -> bool:
    """One clause: `left op right`. Raises OperatorError where Coze fails the node."""
    _check(op, left, right)
    if op is Operator.EQUAL:
        if left is None or right is None:
            return left is None and right is None
        if _is_number(left):
            a, b = _align(left, right)
            return bool(a == b)
        return _go_equal(left, right)
    if op is Operator.NOT_EQUAL:
        return not evaluate(Operator.EQUAL, left, right)
    if op is Operator.EMPTY:
        return _is_empty(left)
    if op is Operator.NOT_EMPTY:
        return not _is_empty(left)
    if op is Operator.GREATER:
        return _ordered(op, left, right, lambda a, b: a > b, lambda r: False)
    if op is Operator.GREATER_OR_EQUAL:
        return _ordered(op, left, right, lambda a, b: a >= b, lambda r: r is None)
    if op is Operator.LESSER:
        return _ordered(op, left, right, lambda a, b: a < b, lambda r: r is not None)
    if op is Operator.LESSER_OR_EQUAL:
        return _ordered(op, left, right, lambda a, b: a <= b, lambda r: True)
    if op is Operator.IS_TRUE:
        return left is not None and bool(left)
    if op is Operator.IS_FALSE:
        return left is None or not left
    if op.value.startswith("len"):
        return _evaluate_length(op, left, right)
    if op in (Operator.CONTAIN, Operator.NOT_CONTAIN):
        if left is None:  # Coze treats it as an empty list, and answers false to both
            return False
        return _contains(left, right) is (op is Operator.CONTAIN)
    # contains-key / not-contains-key: a nil map is false for both, as in Coze.
    if left is None:
        return False
    return (right in left) is (op is Operator.CONTAIN_KEY)


def _evaluate_length(op: Operator, left: Any, right: Any) -> bool:
    if left is None:
        if op in (Operator.LENGTH_GREATER_OR_EQUAL, Operator.LENGTH_LESSER) and (
            not isinstance(right, int) or isinstance(right, bool)
        ):
            raise OperatorError(f"operator {op.value} right operant only accepts int64, not {go_type(right)}")
        return {
            Operator.LENGTH_GREATER: False,
            Operator.LENGTH_GREATER_OR_EQUAL: right == 0,
            Operator.LENGTH_LESSER: right != 0,
            Operator.LENGTH_LESSER_OR_EQUAL: True,
        }[op]
    size = _length(left)
    if op is Operator.LENGTH_GREATER:
        return bool(size > right)
    if op is Operator.LENGTH_GREATER_OR_EQUAL:
        return bool(size >= right)
    if op is Operator.LENGTH_LESSER:
        return bool(size < right)
    return bool(size <= right)
