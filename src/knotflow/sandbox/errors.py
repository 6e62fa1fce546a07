"""Why a call failed: one exception, with a `kind` the Code node maps to Coze Studio's codes and messages."""

from __future__ import annotations

from typing import Literal

from knotflow.errors import KnotflowError

ErrorKind = Literal["exception", "timeout", "memory", "output_too_large", "invalid_output", "sandbox"]
KINDS: tuple[ErrorKind, ...] = ("exception", "timeout", "memory", "output_too_large", "invalid_output", "sandbox")


class CodeFailed(KnotflowError):
    """A call of user code that did not produce an output.

    kind:
      exception         the code raised (or did not compile, or had no `main`); `message` is "Type: text" as Coze
                        prints it, `traceback` the frames of the user's code only, `line` the line it was raised at
      timeout           the wall-clock timeout or the CPU-time limit was reached; the code was killed
      memory            the memory limit was reached (MemoryError, V8 heap limit, failed buffer allocation)
      output_too_large  the JSON of what `main` returned is over the output limit
      invalid_output    `main` returned something other than a JSON object
      sandbox           the sandbox itself failed (could not start, died, broke the protocol, is closed)
    `stdout` is what the code printed before it failed, when it is known.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        traceback: str = "",
        line: int | None = None,
        stdout: str = "",
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.traceback = traceback
        self.line = line
        self.stdout = stdout

    def __repr__(self) -> str:
        return f"CodeFailed(kind={self.kind!r}, message={self.message!r})"
