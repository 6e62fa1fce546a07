"""JSON as Coze writes it: compact, raw UTF-8, whole floats as Go's encoder writes them."""

from __future__ import annotations

import pytest

from knotflow.dsl import jsonutil


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"n": 123.0}, '{"n":123}'),  # Go: float64(123) is written 123
        ([1.5, -3.0, 0.0, 0.1, 2.5e-7], "[1.5,-3,0,0.1,2.5e-7]"),
        ({"big": 1e18, "huge": 1e21}, '{"big":1000000000000000000,"huge":1e+21}'),
        ([1e20, 1.5e20, -2.5e16, 1e-6, 3.5e-6, 1e-7, 1e-5, 1e300], "[100000000000000000000,150000000000000000000,"
                                                               "-25000000000000000,0.000001,0.0000035,1e-7,0.00001,1e+300]"),
        ({"nested": {"list": [{"v": 7.0}]}, "t": (1.0, "a")}, '{"nested":{"list":[{"v":7}]},"t":[1,"a"]}'),
        ({"version": "1.0", "n": 2, "ok": True, "none": None}, '{"version":"1.0","n":2,"ok":true,"none":null}'),
        ({"中文": "✓"}, '{"中文":"✓"}'),
        ({1: "non-string key"}, '{"1":"non-string key"}'),
    ],
)
def test_dumps_writes_what_go_writes(value: object, text: str) -> None:
    assert jsonutil.dumps(value) == text
    assert jsonutil.dumpb(value) == text.encode()


def test_nan_and_infinity_are_null_as_before() -> None:
    assert jsonutil.dumps([float("nan"), float("inf")]) == "[null,null]"
