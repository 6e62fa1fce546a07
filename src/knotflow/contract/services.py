"""What a node may reach outside its run, one declared slot per service (`RunServices`), each typed by the
protocol its implementation satisfies. The composition root (`knotflow.service.container`) fills the slots;
a slot left empty means the server offers no such service, and the node that needs it fails clearly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from knotflow.contract.models import Message, ModelProvider
from knotflow.errors import NodeError


@dataclass(frozen=True, slots=True)
class FetchedFile:
    data: bytes
    content_type: str
    file_name: str


class FileFetcher(Protocol):
    """A file value's bytes: a URL a run holds (this server's signed links included), fetched under the
    server's size, time and address limits."""

    async def fetch(self, url: str) -> FetchedFile: ...


MAX_HISTORY_ROUNDS = 30  # the most rounds a node may ask for (Coze Studio's editor allows 1 to 30)


@dataclass(slots=True)
class ChatHistory:
    """A conversation's rounds before the current one, oldest first; a round is the user's message and the
    answers to it. Only a run inside a conversation (a chatflow's chat) has one."""

    rounds: Sequence[Sequence[Message]] = field(default_factory=list)

    def last(self, count: int) -> list[Message]:
        """The messages of the last `count` rounds, in order."""
        if count <= 0:
            return []
        return [message for round_ in self.rounds[-count:] for message in round_]


@dataclass(frozen=True, slots=True)
class CodeRequest:
    language: str  # "python" | "javascript" | "typescript"
    code: str
    params: dict[str, Any]
    timeout: float | None = None  # seconds; None: the runner's default


@dataclass(slots=True)
class CodeResult:
    output: dict[str, Any]  # what the code's `main` returned
    stdout: str = ""  # what the code printed, cut to the runner's limit


class CodeRunner(Protocol):
    """Runs a Code node's user code outside the server's process, without its rights."""

    async def run(self, request: CodeRequest) -> CodeResult: ...


@dataclass(frozen=True, slots=True)
class FormPart:
    """One part of a multipart/form-data body: a text field, or a file (sent with its name and content type)."""

    name: str
    value: str | FetchedFile


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    url: str
    headers: Sequence[tuple[str, str]] = ()
    body: bytes | None = None
    form: Sequence[FormPart] | None = None  # a multipart/form-data body instead (the client sets its boundary)
    timeout: float | None = None  # seconds for the whole exchange, redirects included; None: the client's default


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    reason: str  # the status line's phrase ("Not Found")
    headers: Sequence[tuple[str, str]]  # as received, in order, minus the transfer framing the client undid
    body: bytes  # decompressed unless the request asked for an encoding itself (Accept-Encoding)


class HttpSendError(NodeError):
    """A request that got no response. `transient` when trying again may succeed (a connection error, a
    timeout), not when it never can (an address the guard refuses, a malformed URL, a response over the limit)."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class HttpClient(Protocol):
    """Outbound HTTP for the HTTP request node, through the server's address guard and size limits. Redirects
    are followed (each hop checked by the guard); a response of any status is returned; HttpSendError when
    there is none."""

    async def send(self, request: HttpRequest) -> HttpResponse: ...


class Variables(Protocol):
    """App, user and system variables (Coze's global variables): read by references, written by Variable
    assign nodes. `scope` is the reference's source (`global_variable_app`, `_user`, `_system`)."""

    async def get(self, scope: str, name: str) -> Any: ...

    async def set(self, scope: str, name: str, value: Any) -> None: ...


class Database(Protocol):
    """A bot's or app's tables, for the database nodes (operations declared by the database nodes' issue)."""


class Conversations(Protocol):
    """Conversations and messages, for the conversation nodes (operations declared by their issue)."""


class SubWorkflows(Protocol):
    """Other published workflows a Sub-workflow node runs (operations declared by the composite nodes' issue)."""


@dataclass(slots=True)
class RunServices:
    """Everything a node may reach outside the engine, for one run."""

    models: ModelProvider | None = None
    files: FileFetcher | None = None
    chat_history: ChatHistory | None = None
    # Global variables' values by (reference source, name), as the run sees them when it starts.
    global_variables: Mapping[tuple[str, str], Any] = field(default_factory=dict)
    code: CodeRunner | None = None
    http: HttpClient | None = None
    variables: Variables | None = None
    database: Database | None = None
    conversations: Conversations | None = None
    workflows: SubWorkflows | None = None
