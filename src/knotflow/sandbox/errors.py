"""Why a call failed: `CodeFailed` with a `kind` the Code node maps to Coze Studio's codes and messages. The types
are the node contract's (`knotflow.contract`), so that the node knows them without knowing the sandbox."""

from __future__ import annotations

from knotflow.contract import CODE_FAILURE_KINDS as KINDS
from knotflow.contract import CodeFailed
from knotflow.contract import CodeFailureKind as ErrorKind

__all__ = ["KINDS", "CodeFailed", "ErrorKind"]
