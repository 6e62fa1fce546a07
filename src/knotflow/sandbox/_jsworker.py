"""JavaScript/TypeScript calls in QuickJS. It runs INSIDE the sandbox, never in the server.

The template (pyworker.py) of a JavaScript sandbox imports this module, with `_quickjs` (the `quickjs-ng` wheel's
extension) from /sandbox/js, and builds one `Engine` before it serves: a QuickJS context holding Sucrase, the
TypeScript transpiler, warmed on a sample. Each call's forked child, once confined as a Python call's is, calls
`Engine.run`: it transpiles the code in its copy of that context (so user code is parsed only inside the confined
child), creates a fresh QuickJS context for the call with its memory, stack and time limits, evaluates runner.js
there (console, timers, the call of `main`), evaluates the code as a module, runs Promise jobs and timers until
`main` has settled, and hands back the outcome. Nothing of a call outlives its child.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import _quickjs

DIRECTORY = "/sandbox/js"
# Appended, not prepended, so that the line numbers in the code's errors are the user's own.
MAIN_SUFFIX = "\n;__knotflow_main__(typeof main === 'undefined' ? undefined : main);\n"
WARM_UP = "async function main({ params }: Args): Promise<Output> {\n  return { n: params.n + 1 };\n}\n"
# QuickJS's stack limit. Its frames are large (~1.7 KB of C stack for a plain recursive call): 20 MB allow some
# 12 000 levels of recursion (Node allows ~10 000). The child's RLIMIT_STACK is raised above it (see pyworker.py).
STACK_BYTES = 20 << 20
STACK_RLIMIT = STACK_BYTES + (8 << 20)
_POSITION = re.compile(r"\s*\((\d+):(\d+)\)$")
_LINE = re.compile(r"<input>:(\d+)")


def _read(name: str) -> str:
    with open(f"{DIRECTORY}/{name}", encoding="utf-8") as source:
        return source.read()


def failure(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "kind": kind, "message": message, **extra}


class Engine:
    """What the template prepares once, for every call's child to use."""

    stack_rlimit = STACK_RLIMIT

    def __init__(self) -> None:
        self.runner = _read("runner.js")
        self.inspect = _read("inspect.js")
        self.compiler = _quickjs.Context()
        self.compiler.eval(_read("typescript.js"))
        self.transpile = self.compiler.get("knotflowTranspile")
        self.transpile(WARM_UP)  # Sucrase's first run costs several times a later one; the template pays it

    def run(self, code: str, params: dict[str, Any], config: dict[str, Any], timeout: float
            ) -> tuple[dict[str, Any], str | None, str]:
        """(the outcome document, the output's JSON text when `main` succeeded, the console text)."""
        memory = config["memory_bytes"]
        self.compiler.set_memory_limit(self.compiler.memory()["malloc_size"] + memory)
        self.compiler.set_time_limit(timeout)
        try:
            source = self.transpile(code)
        except _quickjs.JSException as error:
            return _engine_failure(str(error), config, timeout, transpiling=True), None, ""
        context = _quickjs.Context()
        context.set_memory_limit(memory)
        context.set_max_stack_size(STACK_BYTES)
        context.set_time_limit(timeout)
        host = None
        try:
            settings = json.dumps({"memory_mb": memory >> 20, "max_stdout": config["max_stdout"]})
            host = context.eval(self.runner)(settings, self.inspect)
            try:
                module = context.module(source + MAIN_SUFFIX)
            except _quickjs.JSException as error:  # the code does not compile
                return _engine_failure(str(error), config, timeout), None, _stdout(host, config)
            host("start", module, json.dumps(params))
            _drive(context, host)
            outcome, data = _checked(host("outcome"), host("data"))
        except (_quickjs.JSException, _quickjs.StackOverflow) as error:  # uncatchable: time, memory, the stack
            return _engine_failure(str(error), config, timeout), None, _stdout(host, config)
        return outcome, data, _stdout(host, config)


def _checked(reported: Any, data: Any) -> tuple[dict[str, Any], str | None]:
    """The outcome runner.js reported, rebuilt from the fields it may have, each of its type."""
    try:
        outcome = json.loads(reported) if isinstance(reported, str) else None
    except ValueError:
        outcome = None
    if not isinstance(outcome, dict):
        return failure("invalid_output", "the outcome is unreadable"), None
    if outcome.get("ok") is True:
        if isinstance(data, str):
            return {"ok": True}, data
        return failure("invalid_output", "the outcome is unreadable"), None
    kind, message, traceback, line = (outcome.get(key) for key in ("kind", "message", "traceback", "line"))
    return failure(
        kind if isinstance(kind, str) else "exception",
        message if isinstance(message, str) else "the code failed",
        traceback=traceback if isinstance(traceback, str) else "",
        line=line if isinstance(line, int) and not isinstance(line, bool) else None,
    ), None


def _drive(context: Any, host: Any) -> None:
    """Run Promise jobs, then the earliest timer, until `main` settles. With nothing left to run, `main` never will:
    the child sleeps and the template ends it at the timeout, as a Python `main` awaiting forever ends."""
    while True:
        while context.execute_pending_job():
            pass
        if host("settled"):
            return
        wait = host("next")
        if not isinstance(wait, int | float) or wait < 0:
            time.sleep(1 << 20)
            continue
        if wait > 0:
            time.sleep(wait / 1000)
        host("fire")


def _stdout(host: Any, config: dict[str, Any]) -> str:
    """The console text, cut again here: the code shares the context that captured it."""
    if host is None:
        return ""
    try:
        text, truncated = host("stdout"), host("truncated")
    except (_quickjs.JSException, _quickjs.StackOverflow):
        return ""
    if not isinstance(text, str):
        return ""
    limit = config["max_stdout"]
    if truncated is True or len(text) > limit:
        return text[:limit] + "\n[output truncated]"
    return text


def _engine_failure(text: str, config: dict[str, Any], timeout: float, *, transpiling: bool = False
                    ) -> dict[str, Any]:
    """An error QuickJS raised out of the context: the code did not compile, or hit a limit no code can catch."""
    first = text.split("\n", 1)[0].strip()
    if first == "InternalError: interrupted":
        return failure("timeout", f"Execution timed out after {timeout:g} seconds")
    if first == "InternalError: out of memory":
        return failure("memory", f"JavaScript heap out of memory (limit {config['memory_bytes'] >> 20} MB)")
    if transpiling:  # Sucrase's SyntaxError ends with "(line:column)"; its stack is Sucrase's own
        position = _POSITION.search(first)
        message = _POSITION.sub("", first)
        return failure("exception", message, traceback=message, line=int(position[1]) if position else None)
    stack = text.strip().replace("<input>:", "<code>:")
    line = _LINE.search(text)
    return failure("exception", first, traceback=stack, line=int(line[1]) if line else None)
