"""The isolated code runner behind Coze's Code node (type 5): Python and JavaScript/TypeScript in sandboxes.

It imports nothing of knotflow but the node contract's code types (`CodeRequest`, `CodeResult`, `CodeFailed`:
one type each, shared with the Code node), `knotflow.errors`, and for egress (off by default; egress.py) the
outbound forward proxy and its address guard. The mechanism, its limits and their honest gaps
are described in the README ("Code isolation"); how calls are kept apart inside each runtime, the interface and
the figures in bench/README.md ("code_sandbox.py").
"""

from knotflow.contract import CodeRequest, CodeResult
from knotflow.sandbox.errors import KINDS, CodeFailed, ErrorKind
from knotflow.sandbox.options import SandboxOptions
from knotflow.sandbox.pool import CodeSandbox

__all__ = ["KINDS", "CodeFailed", "CodeRequest", "CodeResult", "CodeSandbox", "ErrorKind", "SandboxOptions"]
