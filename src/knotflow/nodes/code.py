"""Code (5): run the canvas's Python or JavaScript/TypeScript `main` on the node's inputs, as Coze Studio's CodeRunner.

Canvas (`inputs`): `code` (the text), `language` (3 Python, 5 JavaScript — Studio's editor writes TypeScript, which
runs as it is), `inputParameters` (the params), the declared `outputs`, and `settingOnError`.

- Python: `async def main(args: Args) -> Output`, the inputs in `args.params`; JavaScript: `async function
  main({ params })`. What `main` returns is the output. The code runs through `RunServices.code`, outside the
  server's process (see the README's Code node section); a server without one fails the node clearly.
- Before the code runs, inputs without a value become zero values ("" , 0, false; Studio's PreFillZero). The
  returned object is converted against the declared outputs as every Coze value is (`dsl.convert`): a field that
  does not fit becomes null with a warning on the trace (Studio: 720712023 "node output parse fail"), fields the
  canvas does not declare pass through, declared ones the code did not return are null (PostFillNil).
- Python imports are checked when the canvas is compiled (published), as Studio's validatePythonImports checks
  them (line by line, `import x` and `from x import`): a module of its standard-library blacklist, or one that is
  neither standard library nor an offered package (`CODE_PYTHON_PACKAGES`), refuses the canvas with Studio's
  message. Studio reports the same text when the node runs; refusing it at publish catches it earlier.
- A failure — the code raised, ran out of time or memory, returned something that is no object or too large,
  the sandbox failed — is Studio's 305000002 "Function execution failed, please check the code of the function.
  Detail: …", and goes through the node's `settingOnError` like any node failure.
- Time: the node's own `settingOnError.timeoutMs` when the canvas sets one (the engine ends the attempt with
  Studio's 777777776 "node timeout"); otherwise the runner's default, Coze's 60 s (KNOTFLOW_CODE_TIMEOUT).
"""

from __future__ import annotations

import functools
import re
from typing import Any, ClassVar

from knotflow.contract import (
    CODE_EGRESS_PACKAGES,
    CODE_PYTHON_PACKAGES,
    POLICY_OUTPUTS,
    CodeFailed,
    CodeRequest,
    Node,
    NodeContext,
    NodeResult,
    NodeTypes,
)
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.convert import Conversion, MissingRequired, convert
from knotflow.errors import CanvasError, NodeError
from knotflow.nodes._fill import fill_nil, fill_zero

CODE_EXECUTE_FAIL = 305000002  # Coze Studio's ErrCodeExecuteFail
EXECUTE_FAIL_MESSAGE = "Function execution failed, please check the code of the function. Detail: {detail}"
LANGUAGES = {3: "python", 5: "javascript"}  # Coze's canvas codes
# The node's own timeout is the engine's to enforce (so that it ends as Studio's "node timeout"); the runner's
# limit is set this much later, as a backstop that never fires first.
RUNNER_GRACE_SECONDS = 1.0
EGRESS_SETTING = "KNOTFLOW_CODE_EGRESS"

# Studio's validatePythonImports (nodes/code/code.go): the Python 3.9 standard library, the part of it refused
# "for security reasons", and the two patterns it reads imports with, line by line.
PYTHON_STANDARD_MODULES = frozenset({
    "abc", "aifc", "antigravity", "argparse", "ast", "asynchat", "asyncio", "asyncore", "array", "atexit", "base64",
    "bdb", "binhex", "bisect", "builtins", "bz2", "cProfile", "binascii", "calendar", "cgi", "cgitb", "chunk", "cmd",
    "code", "codecs", "codeop", "cmath", "audioop", "collections", "colorsys", "compileall", "concurrent",
    "configparser", "contextlib", "contextvars", "copy", "copyreg", "crypt", "csv", "ctypes", "curses", "dataclasses",
    "datetime", "dbm", "fcntl", "decimal", "difflib", "dis", "distutils", "doctest", "email", "encodings",
    "ensurepip", "ossaudiodev", "enum", "errno", "faulthandler", "filecmp", "fileinput", "fnmatch", "formatter",
    "fractions", "ftplib", "functools", "gc", "genericpath", "getopt", "getpass", "gettext", "glob", "grp",
    "graphlib", "gzip", "hashlib", "heapq", "hmac", "html", "http", "imaplib", "msvcrt", "imghdr", "imp", "importlib",
    "inspect", "io", "ipaddress", "itertools", "json", "mmap", "keyword", "lib2to3", "linecache", "locale", "logging",
    "lzma", "mailbox", "mailcap", "msilib", "marshal", "math", "mimetypes", "modulefinder", "multiprocessing",
    "netrc", "nntplib", "ntpath", "nturl2path", "numbers", "opcode", "operator", "optparse", "os", "pathlib", "pdb",
    "readline", "pickle", "pickletools", "pipes", "pkgutil", "platform", "plistlib", "poplib", "posix", "parser",
    "posixpath", "pprint", "profile", "pstats", "pty", "pwd", "py_compile", "pyclbr", "spwd", "pydoc", "pydoc_data",
    "queue", "quopri", "random", "re", "reprlib", "rlcompleter", "resource", "runpy", "sched", "secrets", "selectors",
    "shelve", "shlex", "shutil", "signal", "select", "site", "smtpd", "smtplib", "sndhdr", "socket", "socketserver",
    "sqlite3", "sre_compile", "sre_constants", "sre_parse", "ssl", "stat", "statistics", "string", "stringprep",
    "struct", "subprocess", "sunau", "symbol", "symtable", "sys", "sysconfig", "tabnanny", "tarfile", "nis",
    "telnetlib", "tempfile", "textwrap", "this", "threading", "time", "timeit", "tkinter", "test", "token",
    "tokenize", "trace", "traceback", "tracemalloc", "tty", "turtle", "turtledemo", "types", "typing", "unittest",
    "urllib", "uu", "uuid", "venv", "warnings", "termios", "wave", "weakref", "webbrowser", "wsgiref", "xdrlib",
    "xml", "xmlrpc", "xxsubtype", "zlib", "zipapp", "zipfile", "zipimport", "zoneinfo", "winreg", "syslog",
    "winsound", "unicodedata"
})
PYTHON_BLACKLIST = frozenset({
    "curses", "dbm", "ensurepip", "fcntl", "grp", "idlelib", "lib2to3", "msvcrt", "pwd", "resource", "syslog",
    "termios", "tkinter", "turtle", "turtledemo", "venv", "winreg", "winsound", "multiprocessing", "threading",
    "socket", "pty", "tty"
})
_IMPORT = re.compile(r"^\s*import\s+([a-zA-Z0-9_.,\s]+)")
_FROM_IMPORT = re.compile(r"^\s*from\s+([a-zA-Z0-9_.]+)\s+import")


def imported_modules(code: str) -> list[str]:
    """The top-level modules the code imports, as Studio's parsePythonImports reads them (in order of appearance;
    a commented-out line is skipped, an import inside a string is not)."""
    found: dict[str, None] = {}
    for raw in code.split("\n"):
        line = raw.strip()
        if line.startswith("#"):
            continue
        if match := _IMPORT.match(line):
            for item in match[1].split(","):
                found[item.strip().split(" ")[0].split(".")[0]] = None
        elif match := _FROM_IMPORT.match(line):
            found[match[1].split(".")[0]] = None
    return list(found)


def import_problem(code: str, packages: tuple[str, ...] = CODE_PYTHON_PACKAGES) -> str | None:
    """Studio's text for the imports it refuses, or None. A package offered only with egress (httpx), imported
    while egress is off, is refused with Studio's text plus the reason and the setting that turns it on."""
    modules = imported_modules(code)
    refused = [name for name in modules if name in PYTHON_STANDARD_MODULES and name in PYTHON_BLACKLIST]
    unknown = [name for name in modules if name not in PYTHON_STANDARD_MODULES and name not in packages]
    problems = []
    if refused:
        problems.append(f"ModuleNotFoundError: The module(s) {_quoted(refused)} are removed from the Python "
                        "standard library for security reasons")
    if unknown:
        problem = f"ModuleNotFoundError: No module named {_quoted(unknown)}"
        needs_egress = [name for name in unknown if name in CODE_EGRESS_PACKAGES]
        if needs_egress:
            problem += (f" ({_quoted(needs_egress)} is offered only with network egress, which is off on this "
                        f"server: {EGRESS_SETTING}=true turns it on)")
        problems.append(problem)
    return ",".join(problems) or None


def _quoted(names: list[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def _timeout_ms(definition: NodeDef) -> float:
    """`settingOnError.timeoutMs` (the engine's policy validates it; here anything unreadable is no timeout)."""
    setting = definition.inputs.get("settingOnError")
    raw = setting.get("timeoutMs") if isinstance(setting, dict) else None
    try:
        return max(float(raw), 0.0) if raw not in (None, "") else 0.0
    except (TypeError, ValueError):
        return 0.0


def failure_detail(failed: CodeFailed) -> str:
    """The runner's reason as Studio's Detail: the error as Python or JavaScript printed it, and its line."""
    if failed.kind == "exception" and failed.line is not None:
        return f"{failed.message} (line {failed.line})"
    return failed.message


class CodeNode(Node):
    type_id = "5"
    display_key = "Code"
    # What Python code may import besides the standard library; the egress variant (`with_egress`) adds httpx.
    python_packages: ClassVar[tuple[str, ...]] = CODE_PYTHON_PACKAGES

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        self.label = f"'{self.title}' ({self.id})"
        inputs = definition.inputs
        code = inputs.get("code")
        if code is not None and not isinstance(code, str):
            raise CanvasError(f"node {self.label}: the code must be text, got {type(code).__name__}")
        self.code = code or ""
        raw_language = inputs.get("language")
        language = LANGUAGES.get(raw_language) if type(raw_language) is int else None
        if language is None:
            raise CanvasError(f"node {self.label}: invalid language: {raw_language} (3 is Python, 5 JavaScript)")
        self.language = language
        if language == "python" and (problem := import_problem(self.code, self.python_packages)):
            raise CanvasError(f"node {self.label}: {problem}")
        self.outputs = [info for info in definition.outputs if info.name not in POLICY_OUTPUTS]
        timeout_ms = _timeout_ms(definition)
        self.timeout = timeout_ms / 1000 + RUNNER_GRACE_SECONDS if timeout_ms else None

    async def run(self, ctx: NodeContext) -> NodeResult:
        runner = ctx.services.code
        if runner is None:
            raise self._failed("this server runs no code (it has no code runner)")
        params = fill_zero(ctx.inputs, [param.type for param in self.params])
        try:
            result = await runner.run(CodeRequest(self.language, self.code, params, self.timeout))
        except CodeFailed as failed:
            raise self._failed(failure_detail(failed)) from failed
        except ValueError as exc:  # params that are not JSON
            raise self._failed(str(exc)) from exc
        conversion = Conversion()
        outputs: dict[str, Any] = dict(result.output)
        try:
            for info in self.outputs:
                if info.name in outputs:
                    outputs[info.name] = convert(outputs[info.name], info, info.name, conversion)
                elif info.required:
                    raise MissingRequired(info.name)
        except MissingRequired as exc:
            exc.node_id = self.id
            raise
        return NodeResult(fill_nil(outputs, self.outputs), warnings=conversion.warnings or None)

    def _failed(self, detail: str) -> NodeError:
        return NodeError(EXECUTE_FAIL_MESSAGE.format(detail=detail), internal_code=CODE_EXECUTE_FAIL,
                         node_id=self.id)


def with_egress(node_types: NodeTypes) -> NodeTypes:
    """The node types of a server with code egress on (KNOTFLOW_CODE_EGRESS): its Code node's Python code may also
    import httpx."""
    return {**node_types, CodeNode.type_id: _egress_code_node()}


@functools.cache
def _egress_code_node() -> type[CodeNode]:
    # Made here rather than at module level, where node discovery would count a second type "5".
    class EgressCodeNode(CodeNode):
        python_packages = (*CODE_PYTHON_PACKAGES, *CODE_EGRESS_PACKAGES)

    return EgressCodeNode
