"""The isolated code runner behind Coze's Code node (type 5): Python and JavaScript/TypeScript in sandboxes.

A leaf package: it imports nothing of knotflow but `knotflow.errors`. Mechanism, limits and their honest gaps are
described in bench/README.md, section "code_sandbox.py".
"""

from knotflow.sandbox.errors import KINDS, CodeFailed, ErrorKind
from knotflow.sandbox.options import SandboxOptions
from knotflow.sandbox.pool import CodeRequest, CodeResult, CodeSandbox

__all__ = ["KINDS", "CodeFailed", "CodeRequest", "CodeResult", "CodeSandbox", "ErrorKind", "SandboxOptions"]
