"""Coze's Code node contract: how `main` is called in Python (language 3) and JavaScript/TypeScript (language 5),
what it may return, and how failures are reported."""

from __future__ import annotations

import pytest

from knotflow.sandbox import CodeRequest, CodeSandbox
from tests.sandbox.conftest import failure, js, python

pytestmark = pytest.mark.asyncio(loop_scope="module")

# The Python template of Coze Studio's canvases (comments cut), as in the conformance canvases.
COZE_PYTHON = '''
async def main(args: Args) -> Output:
    params = args.params
    ret: Output = {
        "key0": params['input'] + params['input'],
        "key1": ["hello", "world"],
        "key2": {"key21": "hi"},
    }
    return ret
'''
COZE_TYPESCRIPT = """
async function main({ params }: Args): Promise<Output> {
    const ret = {
        "key0": params.input + params.input,
        "key1": ["hello", "world"],
        "key2": { "key21": "hi" },
    };
    return ret;
}
"""
EXPECTED = {"key0": "abab", "key1": ["hello", "world"], "key2": {"key21": "hi"}}


async def test_coze_python_template(sandbox: CodeSandbox) -> None:
    assert await python(sandbox, COZE_PYTHON, {"input": "ab"}) == EXPECTED


async def test_coze_typescript_template(sandbox: CodeSandbox) -> None:
    assert await js(sandbox, COZE_TYPESCRIPT, {"input": "ab"}) == EXPECTED


async def test_javascript_language_runs_typescript_too(sandbox: CodeSandbox) -> None:
    result = await sandbox.run(CodeRequest("javascript", COZE_TYPESCRIPT, {"input": "ab"}))
    assert result.output == EXPECTED


async def test_python_params_are_returned_as_given(sandbox: CodeSandbox) -> None:
    # The conformance canvas loop_with_object_input: `return params`.
    params = {"input": {"a": "1"}, "n": 1.5, "list": [1, None, True], "text": "中文 ✓"}
    code = "import json\nasync def main(args: Args) -> Output:\n    params = args.params\n    return params"
    assert await python(sandbox, code, params) == params


async def test_python_json_parse_canvas(sandbox: CodeSandbox) -> None:
    # The conformance canvas http_implicit_dependencies parses a JSON string input.
    code = (
        "import json\nasync def main(args: Args) -> Output:\n    params = args.params\n"
        "    input_string = params['input']\n    return json.loads(input_string)"
    )
    assert await python(sandbox, code, {"input": '{"a": [1, 2]}'}) == {"a": [1, 2]}


async def test_python_sync_main_and_wrapper_names(sandbox: CodeSandbox) -> None:
    # Coze's wrapper has json, asyncio and sys imported around the code; a plain `def main` is accepted too.
    code = "def main(args):\n    return {'dumped': json.dumps(args.params), 'is_output': isinstance(Output(), dict)}"
    assert await python(sandbox, code, {"a": 1}) == {"dumped": '{"a": 1}', "is_output": True}


async def test_typescript_annotations_and_syntax(sandbox: CodeSandbox) -> None:
    code = """
interface Item { name: string; price: number }
type Totals = Record<string, number>;
enum Unit { Cent = 100 }
function total<T extends Item>(items: T[]): number {
    return items.reduce((sum: number, item: T) => sum + item.price, 0);
}
async function main({ params }: { params: { items: Item[] } }): Promise<{ total: number; cents: Totals }> {
    const items = params.items as Item[];
    const sum: number = total(items);
    await new Promise<void>((resolve) => setTimeout(resolve, 1));
    return { total: sum, cents: { all: sum * Unit.Cent } };
}
"""
    items = [{"name": "a", "price": 1.5}, {"name": "b", "price": 2}]
    assert await js(sandbox, code, {"items": items}) == {"total": 3.5, "cents": {"all": 350}}


async def test_numpy_is_offered(sandbox: CodeSandbox) -> None:
    code = """
import numpy as np
async def main(args: Args) -> Output:
    matrix = np.array(args.params["m"])
    return {"det": round(float(np.linalg.det(matrix)), 6), "rows": matrix.sum(axis=1), "n": np.int64(7)}
"""
    assert await python(sandbox, code, {"m": [[1, 2], [3, 4]]}) == {"det": -2.0, "rows": [3, 7], "n": 7}


async def test_stdout_is_captured_and_cut(sandbox: CodeSandbox) -> None:
    result = await sandbox.run(
        CodeRequest("python", "import sys\ndef main(args):\n    print('hello', 1)\n    print('err', file=sys.stderr)\n"
                    "    return {}", {})
    )
    assert result.stdout == "hello 1\nerr\n"
    code = "function main() { console.log('hi', {a: 1}); return {} }"
    result = await sandbox.run(CodeRequest("typescript", code, {}))
    assert result.stdout == "hi { a: 1 }\n"
    flood = "def main(args):\n    for _ in range(100000):\n        print('x' * 100)\n    return {'done': True}"
    result = await sandbox.run(CodeRequest("python", flood, {}))
    assert result.output == {"done": True}
    assert len(result.stdout) < 70_000 and result.stdout.endswith("[output truncated]")


async def test_python_exception_is_reported_like_coze(sandbox: CodeSandbox) -> None:
    # The conformance canvas code_exception_branch calls an undefined function.
    code = COZE_PYTHON.replace("params['input'] + params['input']", "params['input'] + fn(params['input'])")
    error = await failure(sandbox, "python", code, {"input": "ab"})
    assert error.kind == "exception"
    assert error.message == "NameError: name 'fn' is not defined"
    assert error.line == 5
    assert 'File "<code>", line 5, in main' in error.traceback


async def test_python_syntax_error_and_missing_main(sandbox: CodeSandbox) -> None:
    error = await failure(sandbox, "python", "def main(args):\n    return {\n")
    assert error.kind == "exception" and error.message.startswith("SyntaxError:") and error.line == 2
    error = await failure(sandbox, "python", "x = 1")
    assert (error.kind, error.message) == ("exception", "NameError: name 'main' is not defined")


async def test_python_prints_before_failing_are_kept(sandbox: CodeSandbox) -> None:
    error = await failure(sandbox, "python", "def main(args):\n    print('step 1')\n    raise ValueError('bad input')")
    assert (error.kind, error.message, error.stdout) == ("exception", "ValueError: bad input", "step 1\n")


async def test_js_exceptions(sandbox: CodeSandbox) -> None:
    error = await failure(sandbox, "typescript", "async function main({ params }) {\n  return { a: fn() };\n}")
    assert error.kind == "exception"
    assert error.message == "ReferenceError: fn is not defined"
    assert error.line == 2 and "<code>:2:" in error.traceback
    # V8 abbreviates a long module URL, keeping its parentheses: the line is found all the same.
    error = await failure(sandbox, "typescript", "function main() {\n  const x = 'a(b)';\n  throw new Error('bad');\n}")
    assert (error.message, error.line) == ("Error: bad", 3) and "at main (<code>:3:" in error.traceback
    error = await failure(sandbox, "typescript", "function main( {\n")
    assert error.kind == "exception" and error.message.startswith("SyntaxError")
    error = await failure(sandbox, "typescript", "const x = 1;")
    assert (error.kind, error.message) == ("exception", "ReferenceError: main is not defined")
    error = await failure(sandbox, "typescript", "function main() { throw 'plain string' }")
    assert (error.kind, error.message) == ("exception", 'Uncaught "plain string"')


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("def main(args):\n    return [1, 2]", "not list"),
        ("def main(args):\n    return None", "not NoneType"),
        ("def main(args):\n    return {'x': object()}", "not JSON"),
        ("def main(args):\n    return {'x': float('nan')}", "not JSON"),
    ],
)
async def test_python_invalid_output(sandbox: CodeSandbox, code: str, words: str) -> None:
    error = await failure(sandbox, "python", code)
    assert error.kind == "invalid_output" and words in error.message


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("function main() { return [1] }", "not array"),
        ("function main() { return 'text' }", "not string"),
        ("function main() { return null }", "not null"),
        ("function main() { return { n: 1n } }", "not JSON"),
        ("function main() { const a: any = {}; a.self = a; return a }", "not JSON"),
        ("function main() { return new Date(0) }", "JSON is an object"),
    ],
)
async def test_js_invalid_output(sandbox: CodeSandbox, code: str, words: str) -> None:
    error = await failure(sandbox, "typescript", code)
    assert error.kind == "invalid_output" and words in error.message


async def test_caller_errors(sandbox: CodeSandbox) -> None:
    with pytest.raises(ValueError, match="unsupported language"):
        await sandbox.run(CodeRequest("go", "func main() {}", {}))
    with pytest.raises(ValueError, match="params are not JSON"):
        await sandbox.run(CodeRequest("python", "def main(args):\n    return {}", {"x": object()}))
    with pytest.raises(ValueError, match="params are not JSON"):
        await sandbox.run(CodeRequest("typescript", "function main() { return {} }", {"x": float("nan")}))
    assert await python(sandbox, "def main(args):\n    return {'ok': True}") == {"ok": True}


async def test_a_whole_float_param_arrives_as_coze_sends_it(sandbox: CodeSandbox) -> None:
    # Coze's Go encoder writes float64(3) as 3: the code sees an integer, whatever the input's declared type.
    code = "def main(args):\n    return {k: type(v).__name__ for k, v in args.params.items()}"
    assert await python(sandbox, code, {"whole": 3.0, "half": 2.5, "int": 7}) == {
        "whole": "int", "half": "float", "int": "int"}
    code = "function main({ params }) { return { text: `${params.whole} ${params.half}` } }"
    assert await js(sandbox, code, {"whole": 3.0, "half": 2.5}) == {"text": "3 2.5"}
