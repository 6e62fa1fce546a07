"""Every Selector operator, as Coze Studio's clause.go / operator.go define it."""

from __future__ import annotations

from typing import Any

import pytest

from knotflow.nodes._selector_operators import (
    CANVAS_OPERATORS,
    Operator,
    OperatorError,
    canvas_operator,
    evaluate,
)

Op = Operator


def test_canvas_operator_numbers_follow_coze_vo_operator_type() -> None:
    expected = ["=", "!=", "len >", "len >=", "len <", "len <=", "contain", "not_contain", "empty", "not_empty",
                "true", "false", ">", ">=", "<", "<="]
    assert [CANVAS_OPERATORS[i].value for i in range(1, 17)] == expected


@pytest.mark.parametrize(("number", "left_type", "expected"), [
    (7, "object", Op.CONTAIN_KEY),
    (8, "object", Op.NOT_CONTAIN_KEY),
    (7, "list", Op.CONTAIN),
    (8, "string", Op.NOT_CONTAIN),
    ("13", "integer", Op.GREATER),
    (1, "object", Op.EQUAL),
])
def test_canvas_operator_maps_contain_on_objects_to_contain_key(number: Any, left_type: str, expected: Op) -> None:
    assert canvas_operator(number, left_type) is expected


@pytest.mark.parametrize("number", [0, 17, None, "x"])
def test_canvas_operator_rejects_unknown_numbers(number: Any) -> None:
    with pytest.raises(ValueError, match="unsupported operator"):
        canvas_operator(number, "string")


@pytest.mark.parametrize(("left", "right", "equal"), [
    (10, 10, True),
    (10, 20, False),
    (10.5, 10.5, True),
    (3, 3.0, True),  # int64 and float64 are aligned before comparing
    (3.0, 3, True),
    (2**53 + 1, float(2**53), True),  # ...as float64, losing precision like Go
    ("test", "test", True),
    ("test", "xyz", False),
    ("1", 1, False),  # a string never equals a number
    ("true", True, False),
    (True, True, True),
    (True, False, False),
    (None, None, True),
    (None, "a", False),
    ("a", None, False),
    (None, 0, False),
])
def test_equal_and_not_equal(left: Any, right: Any, equal: bool) -> None:
    assert evaluate(Op.EQUAL, left, right) is equal
    assert evaluate(Op.NOT_EQUAL, left, right) is (not equal)


@pytest.mark.parametrize(("left", "right", "message"), [
    ([1], [1], "only accepts int64, float64, bool or string"),
    ({"a": 1}, {"a": 1}, "only accepts int64, float64, bool or string"),
    (True, 1, "must be same type"),
    (True, "true", "must be same type"),
    (1, True, "right operant must be int64 or float64"),
    (1, "1", "right operant must be int64 or float64"),
])
def test_equal_rejects_operands_coze_rejects(left: Any, right: Any, message: str) -> None:
    for op in (Op.EQUAL, Op.NOT_EQUAL):
        with pytest.raises(OperatorError, match=message):
            evaluate(op, left, right)


def test_equal_accepts_anything_against_nil() -> None:
    assert evaluate(Op.EQUAL, [1], None) is False
    assert evaluate(Op.NOT_EQUAL, None, {"a": 1}) is True


@pytest.mark.parametrize(("left", "empty"), [
    (None, True),
    ("", True),
    ("None", True),  # a Python code node's null, as text
    ("none", False),
    (" ", False),
    ("x", False),
    ([], True),
    ([None], False),
    ({}, True),
    ({"k": None}, False),
    (0, True),
    (0.0, True),
    (-0.0, True),
    (1, False),
    (0.5, False),
    (False, True),
    (True, False),
])
def test_empty_and_not_empty(left: Any, empty: bool) -> None:
    assert evaluate(Op.EMPTY, left, None) is empty
    assert evaluate(Op.NOT_EMPTY, left, None) is (not empty)


def test_empty_rejects_a_right_operand() -> None:
    with pytest.raises(OperatorError, match="does not accept non-nil right operant"):
        evaluate(Op.EMPTY, "", "x")
    with pytest.raises(OperatorError, match="does not accept non-nil right operant"):
        evaluate(Op.NOT_EMPTY, None, 0)


@pytest.mark.parametrize(("left", "right", "gt", "ge", "lt", "le"), [
    (10, 5, True, True, False, False),
    (10, 10, False, True, False, True),
    (5, 10, False, False, True, True),
    (10.5, 5.0, True, True, False, False),
    (3, 3.5, False, False, True, True),  # int against float: compared as floats
    (3.5, 3, True, True, False, False),
    (-1, 0.0, False, False, True, True),
    # nil operands have fixed answers
    (None, 5, False, False, True, True),
    (None, None, False, True, False, True),
    (5, None, True, True, False, False),
])
def test_ordering_operators(left: Any, right: Any, gt: bool, ge: bool, lt: bool, le: bool) -> None:
    assert evaluate(Op.GREATER, left, right) is gt
    assert evaluate(Op.GREATER_OR_EQUAL, left, right) is ge
    assert evaluate(Op.LESSER, left, right) is lt
    assert evaluate(Op.LESSER_OR_EQUAL, left, right) is le


@pytest.mark.parametrize("op", [Op.GREATER, Op.GREATER_OR_EQUAL, Op.LESSER, Op.LESSER_OR_EQUAL])
def test_ordering_needs_numbers(op: Op) -> None:
    with pytest.raises(OperatorError, match="only accepts float64 or int64, not string"):
        evaluate(op, "10", 5)
    with pytest.raises(OperatorError, match="only accepts float64 or int64, not bool"):
        evaluate(op, True, 5)
    with pytest.raises(OperatorError, match="cannot compare int64 with string"):
        evaluate(op, 10, "5")
    with pytest.raises(OperatorError, match="cannot compare float64 with bool"):
        evaluate(op, 1.5, False)


def test_ordering_with_a_nil_left_ignores_the_right_operand_type() -> None:
    # Coze answers before it looks at the right operand.
    assert evaluate(Op.GREATER, None, "anything") is False
    assert evaluate(Op.LESSER_OR_EQUAL, None, [1]) is True


def test_is_true_and_is_false() -> None:
    assert evaluate(Op.IS_TRUE, True, None) is True
    assert evaluate(Op.IS_TRUE, False, None) is False
    assert evaluate(Op.IS_FALSE, False, None) is True
    assert evaluate(Op.IS_FALSE, True, None) is False
    # A nil boolean is false.
    assert evaluate(Op.IS_TRUE, None, None) is False
    assert evaluate(Op.IS_FALSE, None, None) is True
    assert evaluate(Op.IS_TRUE, None, "ignored") is False


@pytest.mark.parametrize(("left", "right", "message"), [
    (1, None, "only accepts boolean, not int64"),
    ("true", None, "only accepts boolean, not string"),
    (True, True, "does not accept non-nil right operant"),
])
def test_is_true_rejects_non_booleans(left: Any, right: Any, message: str) -> None:
    for op in (Op.IS_TRUE, Op.IS_FALSE):
        with pytest.raises(OperatorError, match=message):
            evaluate(op, left, right)


@pytest.mark.parametrize(("left", "right", "gt", "ge", "lt", "le"), [
    ("test", 2, True, True, False, False),
    ("test", 4, False, True, False, True),
    ([1, 2, 3], 3, False, True, False, True),
    ([1, 2, 3], 4, False, False, True, True),
    ([], 0, False, True, False, True),
    ("", 1, False, False, True, True),
    # Go measures strings in UTF-8 bytes: "你好" is 6 long.
    ("你好", 5, True, True, False, False),
    ("你好", 6, False, True, False, True),
    # A nil left operand is an empty one.
    (None, 0, False, True, False, True),
    (None, 2, False, False, True, True),
])
def test_length_operators(left: Any, right: int, gt: bool, ge: bool, lt: bool, le: bool) -> None:
    assert evaluate(Op.LENGTH_GREATER, left, right) is gt
    assert evaluate(Op.LENGTH_GREATER_OR_EQUAL, left, right) is ge
    assert evaluate(Op.LENGTH_LESSER, left, right) is lt
    assert evaluate(Op.LENGTH_LESSER_OR_EQUAL, left, right) is le


@pytest.mark.parametrize(("left", "right", "message"), [
    (12, 1, "left operant only accepts string or slice, not int64"),
    ({"a": 1}, 1, "left operant only accepts string or slice"),
    ("abc", 1.0, "right operant only accepts int64, not float64"),
    ("abc", "1", "right operant only accepts int64, not string"),
    ([1], True, "right operant only accepts int64, not bool"),
    ("abc", None, "right operant only accepts int64, not nil"),
])
def test_length_operators_reject_bad_operands(left: Any, right: Any, message: str) -> None:
    for op in (Op.LENGTH_GREATER, Op.LENGTH_GREATER_OR_EQUAL, Op.LENGTH_LESSER, Op.LENGTH_LESSER_OR_EQUAL):
        with pytest.raises(OperatorError, match=message):
            evaluate(op, left, right)


def test_length_with_nil_left_needs_an_integer_only_where_go_reads_it() -> None:
    assert evaluate(Op.LENGTH_GREATER, None, None) is False
    assert evaluate(Op.LENGTH_LESSER_OR_EQUAL, None, None) is True
    for op in (Op.LENGTH_GREATER_OR_EQUAL, Op.LENGTH_LESSER):
        with pytest.raises(OperatorError):
            evaluate(op, None, None)


@pytest.mark.parametrize(("left", "right", "contains"), [
    ("test", "es", True),
    ("test", "xyz", False),
    ("test", "", True),
    ("", "", True),
    (["a", "b"], "b", True),
    (["a", "b"], "c", False),
    ([1, 2, 3], 2, True),
    ([1, 2, 3], 2.0, False),  # elements compare with Go's ==: int64 2 is not float64 2
    ([1.0, 2.0], 2.0, True),
    ([True, False], True, True),
    ([1, 0], True, False),  # a boolean is not a number
    (["1", "2"], 1, False),
    ([None, "x"], "x", True),
])
def test_contain_and_not_contain(left: Any, right: Any, contains: bool) -> None:
    assert evaluate(Op.CONTAIN, left, right) is contains
    assert evaluate(Op.NOT_CONTAIN, left, right) is (not contains)


def test_contain_with_nil_left_is_false_both_ways() -> None:
    # Coze treats a nil left operand as an empty list, yet answers false to "does not contain" as well.
    assert evaluate(Op.CONTAIN, None, "a") is False
    assert evaluate(Op.NOT_CONTAIN, None, "a") is False


@pytest.mark.parametrize(("left", "right", "message"), [
    ("abc", 1, "whose left operant is string only accepts right operant of string"),
    ("abc", None, "whose left operant is string only accepts right operant of string"),
    (12, "1", "only accepts left operant of string or slice, not int64"),
    ([1], None, "needs a right operant"),
    ([{"a": 1}], {"a": 1}, "comparing uncomparable type"),
])
def test_contain_rejects_bad_operands(left: Any, right: Any, message: str) -> None:
    for op in (Op.CONTAIN, Op.NOT_CONTAIN):
        with pytest.raises(OperatorError, match=message):
            evaluate(op, left, right)


def test_contain_finds_a_match_before_an_uncomparable_element() -> None:
    # Go's loop stops at the first equal element; only reaching a same-typed map panics.
    assert evaluate(Op.CONTAIN, ["x", {"a": 1}], "x") is True
    assert evaluate(Op.CONTAIN, [{"a": 1}], "x") is False


@pytest.mark.parametrize(("left", "key", "has"), [
    ({"key1": "value1"}, "key1", True),
    ({"key1": "value1"}, "key2", False),
    ({"key1": None}, "key1", True),
    ({}, "key1", False),
])
def test_contain_key_and_not_contain_key(left: Any, key: str, has: bool) -> None:
    assert evaluate(Op.CONTAIN_KEY, left, key) is has
    assert evaluate(Op.NOT_CONTAIN_KEY, left, key) is (not has)


def test_contain_key_with_nil_left_is_false_both_ways() -> None:
    assert evaluate(Op.CONTAIN_KEY, None, "k") is False
    assert evaluate(Op.NOT_CONTAIN_KEY, None, "k") is False


@pytest.mark.parametrize(("left", "right", "message"), [
    (["k"], "k", "only accepts left operant of map, not \\[\\]interface"),
    ("k", "k", "only accepts left operant of map, not string"),
    ({"1": 1}, 1, "only accepts right operant of string, not int64"),
    ({"1": 1}, None, "only accepts right operant of string, not nil"),
])
def test_contain_key_rejects_bad_operands(left: Any, right: Any, message: str) -> None:
    for op in (Op.CONTAIN_KEY, Op.NOT_CONTAIN_KEY):
        with pytest.raises(OperatorError, match=message):
            evaluate(op, left, right)
