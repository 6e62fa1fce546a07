"""The JavaScript runtime (QuickJS in each call's forked child): what Coze's JavaScript code relies on besides the
language (Promise jobs, timers, top-level await, the console), TypeScript keeping its lines, and a fresh world per
call."""

from __future__ import annotations

import pytest

from knotflow.sandbox import CodeRequest, CodeSandbox
from tests.sandbox.conftest import failure, js

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_promise_jobs_run_before_timers_and_timers_in_due_order(sandbox: CodeSandbox) -> None:
    code = """
async function main() {
  const order: string[] = [];
  setTimeout(() => order.push("timer 20"), 20);
  setTimeout((word: string) => order.push(word), 10, "timer 10");
  const cancelled = setTimeout(() => order.push("cancelled"), 5);
  clearTimeout(cancelled);
  Promise.resolve().then(() => order.push("promise"));
  queueMicrotask(() => order.push("microtask"));
  order.push("sync");
  await new Promise((resolve) => setTimeout(resolve, 30));
  let ticks = 0;
  await new Promise<void>((resolve) => {
    const id = setInterval(() => { if (++ticks === 3) { clearInterval(id); resolve(); } }, 5);
  });
  return { order, ticks };
}
"""
    assert await js(sandbox, code) == {
        "order": ["sync", "promise", "microtask", "timer 10", "timer 20"], "ticks": 3,
    }  # fmt: skip


async def test_a_timer_waits_its_time(sandbox: CodeSandbox) -> None:
    code = """
async function main() {
  const start = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 200));
  return { waited: Date.now() - start };
}
"""
    assert 190 <= (await js(sandbox, code))["waited"] < 2000


async def test_top_level_await_and_a_synchronous_main(sandbox: CodeSandbox) -> None:
    code = "const base = await Promise.resolve(41);\nfunction main({ params }) { return { n: base + params.n } }"
    assert await js(sandbox, code, {"n": 1}) == {"n": 42}


async def test_rejections_report_like_errors(sandbox: CodeSandbox) -> None:
    code = "async function main() {\n  await Promise.resolve();\n  throw new TypeError('no ' + 'luck');\n}"
    error = await failure(sandbox, "typescript", code)
    assert (error.kind, error.message, error.line) == ("exception", "TypeError: no luck", 3)
    error = await failure(sandbox, "typescript", "async function main() { return Promise.reject(new RangeError('r')) }")
    assert (error.kind, error.message) == ("exception", "RangeError: r")


async def test_typescript_keeps_the_users_line_numbers(sandbox: CodeSandbox) -> None:
    code = """interface Args { params: { n: number } }
type Output = { n: number };
enum Mode {
  A = "a",
}
async function main({ params }: Args): Promise<Output> {
  const n: number = params.n as number;
  if (n > 0) {
    throw new Error(`line 9, mode ${Mode.A}`);
  }
  return { n };
}
"""
    error = await failure(sandbox, "typescript", code, {"n": 1})
    assert (error.message, error.line) == ("Error: line 9, mode a", 9)
    assert "at main (<code>:9:" in error.traceback and "knotflow" not in error.traceback
    error = await failure(sandbox, "typescript", "function main() {\n  return { a: 1 };\n  const x: = 2;\n}")
    assert error.kind == "exception" and error.message.startswith("SyntaxError") and error.line == 3


async def test_every_call_starts_from_a_fresh_world(sandbox: CodeSandbox) -> None:
    spoil = """
globalThis.leak = "from the first call";
Object.prototype.polluted = true;
JSON.stringify = () => '{"forged": true}';
Array.prototype.join = () => "spoiled";
function main() { return { spoiled: true } }
"""
    assert await js(sandbox, spoil) == {"spoiled": True}  # its own output is still its own
    look = "function main() { return { leak: typeof leak, polluted: typeof ({} as any).polluted, " \
        "json: JSON.stringify([1]) } }"
    for _ in range(4):  # every warm sandbox of the pool
        assert await js(sandbox, look) == {"leak": "undefined", "polluted": "undefined", "json": "[1]"}


async def test_random_numbers_differ_between_calls(sandbox: CodeSandbox) -> None:
    code = "function main() { return { r: Math.random() } }"
    draws = {(await js(sandbox, code))["r"] for _ in range(6)}
    assert len(draws) == 6


async def test_console_formats_like_node(sandbox: CodeSandbox) -> None:
    code = """
function main() {
  console.log("%s is %d years, %i%%", "Bob", 42.5, 7.9, [1, 2], new Map([[1, "a"]]));
  console.warn({ nested: { list: [1, { deep: true }] } }, null, undefined, 3n);
  console.error("error");
  console.info(new Error("shown").message);
  return {};
}
"""
    result = await sandbox.run(CodeRequest("typescript", code, {}))
    assert result.stdout == (
        "Bob is 42.5 years, 7% [ 1, 2 ] Map (1) {1 => 'a'}\n"
        "{ nested: { list: [ 1, { deep: true } ] } } null undefined 3n\n"
        "error\nshown\n"
    )


async def test_console_output_before_a_failure_is_kept(sandbox: CodeSandbox) -> None:
    error = await failure(sandbox, "typescript", "function main() { console.log('step 1'); throw new Error('bad') }")
    assert (error.message, error.stdout) == ("Error: bad", "step 1\n")


async def test_deep_recursion_is_catchable(sandbox: CodeSandbox) -> None:
    code = """
function main() {
  const depth = (n: number): number => (n === 0 ? 0 : 1 + depth(n - 1));
  try { depth(1e7); return { caught: false }; } catch (error) { return { caught: String(error), fine: depth(10000) }; }
}
"""
    assert await js(sandbox, code) == {"caught": "RangeError: Maximum call stack size exceeded", "fine": 10000}


async def test_memory_within_the_limit_is_usable(sandbox: CodeSandbox) -> None:
    code = "function main() {\n  const block = new Uint8Array(60 << 20).fill(7);\n"
    code += "  return { size: block.length, x: block[9] }\n}"
    assert await js(sandbox, code) == {"size": 60 << 20, "x": 7}


async def test_long_text_crosses_back_whole(sandbox: CodeSandbox) -> None:
    # Long concatenations are ropes inside QuickJS; the output, the console text and TypeScript's own output all
    # come back as plain text.
    code = """
function main() {
  let text = "";
  for (let i = 0; i < 3000; i++) { text += "line " + i + "\\n"; console.log("logged", i); }
  return { text };
}
"""
    result = await sandbox.run(CodeRequest("typescript", code + "\n" * 3 + "// " + "x" * 5000, {}))
    assert result.output["text"].count("\n") == 3000 and result.output["text"].endswith("line 2999\n")
    assert result.stdout.startswith("logged 0\nlogged 1\n")
