"""What a node may reach outside its run, one declared slot per service (`RunServices`), each typed by the
protocol its implementation satisfies. The composition root (`knotflow.service.container`) fills the slots;
a slot left empty means the server offers no such service, and the node that needs it fails clearly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from knotflow.contract.models import Message, ModelProvider
from knotflow.errors import KnotflowError, NodeError


@dataclass(frozen=True, slots=True)
class FetchedFile:
    data: bytes
    content_type: str
    file_name: str


class FileFetcher(Protocol):
    """A file value's bytes: a URL a run holds (this server's signed links included), fetched under the
    server's size, time and address limits."""

    async def fetch(self, url: str) -> FetchedFile: ...


@dataclass(frozen=True, slots=True)
class ContentPart:
    """One part of a multimodal message: its text, or its file by URL (`type` image, file, audio or video)."""

    type: str
    text: str = ""
    url: str = ""
    file_name: str = ""


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


# The third-party Python packages a Code node's code may import besides the standard library (Coze Studio's
# SupportThirdPartModules, less httpx: code has no network unless the server turns egress on). Publishing refuses
# code importing anything else.
CODE_PYTHON_PACKAGES: tuple[str, ...] = ("numpy",)
# What Python code may import in addition when the server gives code network egress (KNOTFLOW_CODE_EGRESS).
CODE_EGRESS_PACKAGES: tuple[str, ...] = ("httpx",)


@dataclass(frozen=True)
class CodeRequest:
    language: str  # "python" | "javascript" | "typescript" (JavaScript runs as TypeScript: a superset)
    code: str  # defines `main`: Python `async def main(args: Args) -> Output`, JS `async function main({ params })`
    params: dict[str, Any]  # JSON-compatible; Python sees it as `args.params`, JavaScript as `params`
    timeout: float | None = None  # seconds; None: the runner's default


@dataclass
class CodeResult:
    output: dict[str, Any]  # what `main` returned, as JSON
    stdout: str = ""  # what the code printed (Python: stdout and stderr), cut to the runner's limit


CodeFailureKind = Literal["exception", "timeout", "memory", "output_too_large", "invalid_output", "sandbox"]
CODE_FAILURE_KINDS: tuple[CodeFailureKind, ...] = (
    "exception", "timeout", "memory", "output_too_large", "invalid_output", "sandbox")


class CodeFailed(KnotflowError):
    """A call of user code that did not produce an output.

    kind:
      exception         the code raised (or did not compile, or had no `main`); `message` is "Type: text" as Coze
                        prints it, `traceback` the frames of the user's code only, `line` the line it was raised at
      timeout           the wall-clock timeout or the CPU-time limit was reached; the code was killed
      memory            the memory limit was reached (MemoryError, QuickJS's memory limit)
      output_too_large  the JSON of what `main` returned is over the output limit
      invalid_output    `main` returned something other than a JSON object
      sandbox           the runner itself failed (cannot start on this machine, died, broke its protocol, closed)
    `stdout` is what the code printed before it failed, when it is known.
    """

    def __init__(self, kind: CodeFailureKind, message: str, *, traceback: str = "", line: int | None = None,
                 stdout: str = "") -> None:
        super().__init__(message)
        self.kind: CodeFailureKind = kind
        self.traceback = traceback
        self.line = line
        self.stdout = stdout

    def __repr__(self) -> str:
        return f"CodeFailed(kind={self.kind!r}, message={self.message!r})"


class CodeRunner(Protocol):
    """Runs a Code node's user code outside the server's process, without its rights. Raises CodeFailed when
    the code produced no output, ValueError for an unknown language or params that are not JSON."""

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
    """App and user variables (Coze's global variables) as Variable assign nodes write them; references read
    them through `RunServices.global_variables`, which sees a write at once. `source` is the reference's
    (`global_variable_app` or `global_variable_user`; `global_variable_system` is read-only)."""

    async def assign(self, source: str, name: str, value: Any) -> None:
        """Store `value` as the variable's value (the app's, or the run's user's), converted to the variable's
        type; NodeError when the run's bot or app does not declare it, or the value does not fit."""
        ...


@dataclass(frozen=True, slots=True)
class ConversationMessage:
    """A conversation's message as a node sees it. `content` is the text; a multimodal message's (object_string)
    is its texts, then its files' URLs, joined by commas (Coze Studio's ConvertMessageToString)."""

    id: str
    role: str  # "user" | "assistant"
    content_type: str  # "text" | "object_string"
    content: str
    conversation_id: str = ""


@dataclass(frozen=True, slots=True)
class ConversationMessagePage:
    messages: list[ConversationMessage]
    has_more: bool


class Conversations(Protocol):
    """The conversations and messages a run may reach, for the conversation and message nodes: those of the
    run's app (or bot), in the run's space and connector. Names are resolved as Coze Studio does: an app's
    conversation template names a conversation that is created on first use; any other name is a conversation a
    node (or a chat) created. Bound to one run: it knows the run's own conversation when the run is a chat, and
    keeps that chat's section and round up to date as nodes clear the conversation or write to it."""

    app_id: str  # "" when the run has no app
    bot_id: str  # "" when the run has no bot
    conversation_id: str | None  # the chat's conversation; None outside a chat

    async def is_template(self, name: str) -> bool:
        """Whether `name` is one of the app's conversation templates (every app has "Default")."""
        ...

    async def find(self, name: str) -> str | None:
        """The id of the live conversation `name` stands for, without creating one."""
        ...

    async def get_or_create(self, name: str) -> tuple[str, bool]:
        """The conversation `name` stands for, created on first use; and whether it existed."""
        ...

    async def rename(self, name: str, new_name: str) -> tuple[str, str | None]:
        """("renamed", id), ("taken", the id `new_name` stands for) or ("missing", None)."""
        ...

    async def forget(self, name: str) -> bool:
        """Unbind a name (its conversation and messages stay); False when it stood for none."""
        ...

    async def names(self) -> list[tuple[str, str]]:
        """(name, conversation id) of the app's templates first ("0" for one never used), then of every
        other name bound to a live conversation."""
        ...

    async def history(self, conversation_id: str, rounds: int | None) -> list[ConversationMessage]:
        """The messages of the conversation's last `rounds` rounds (None: all) in its current section, oldest
        first, leaving out the run's own chat round and the rounds started after it."""
        ...

    async def clear(self, conversation_id: str) -> bool:
        """Start a new section of the conversation; False when it no longer exists."""
        ...

    async def messages(self, conversation_id: str, *, limit: int, before_id: str = "",
                       after_id: str = "") -> ConversationMessagePage | None:
        """Questions and answers: with `before_id` the newer ones after it, oldest first; with `after_id` the
        older ones before it, newest first; with neither the newest first. None when the cursor is no message
        of the conversation."""
        ...

    async def add_message(self, conversation_id: str, role: str, content: str) -> str | None:
        """Write a text message (a user's opens a new round; an assistant's joins the run's round in its own
        conversation, else the conversation's latest round) and return its id; None when an assistant
        message has no round to join in the run's own conversation."""
        ...

    async def message(self, message_id: str) -> ConversationMessage | None:
        ...

    async def edit_message(self, conversation_id: str, message_id: str, content: str) -> bool:
        """Replace a message's text; False when the conversation has no such message."""
        ...

    async def delete_message(self, conversation_id: str, message_id: str) -> bool:
        ...


@dataclass(frozen=True, slots=True)
class TableFieldInfo:
    """A table's field as the database nodes see it: `id` is the field id canvases reference."""

    id: str
    name: str
    type: int  # Coze's FieldItemType: 1 Text, 2 Number, 3 Date, 4 Float, 5 Boolean
    required: bool


@dataclass(frozen=True, slots=True)
class Clause:
    """One condition: a field (by name; `id`, `uuid` and `bstudio_create_time` are the system fields), Coze's
    operation (EQUAL, NOT_EQUAL, GREATER_THAN, LESS_THAN, GREATER_EQUAL, LESS_EQUAL, IN, NOT_IN, IS_NULL,
    IS_NOT_NULL, LIKE, NOT_LIKE) and its value."""

    left: str
    operation: str
    right: Any = None


@dataclass(frozen=True, slots=True)
class Condition:
    clauses: Sequence[Clause]
    logic: str = "AND"  # "AND" | "OR"


@dataclass(slots=True)
class Rows:
    """What a database operation returns: rows keyed by field name (system fields as `id`, `uuid`,
    `bstudio_create_time`), and the number of rows affected (None: Coze reports none)."""

    rows: list[dict[str, Any]]
    row_count: int | None


class Database(Protocol):
    """The tables of the run's bot or app, for the database nodes. A table is named by its id (canvases'
    databaseInfoID) and must belong to the run's bot or app. In a single-user table each user (the run's
    connector and connector uid) reads and changes only the rows they wrote; in a multi-user table all share
    them; a read-only table refuses changes. Values are converted to the fields' types."""

    async def fields(self, table_id: str) -> list[TableFieldInfo]:
        ...

    async def select(self, table_id: str, *, field_ids: Sequence[str], condition: Condition | None,
                     order_by: Sequence[tuple[str, bool]], limit: int) -> Rows:
        """Rows with the given fields (ids; none: every field), matching the condition, ordered by (field id,
        ascending) pairs, at most `limit`."""
        ...

    async def insert(self, table_id: str, values: Mapping[str, Any]) -> Rows:
        """One row from values by field id; the result's row is `{"id": the new row's id}`."""
        ...

    async def update(self, table_id: str, condition: Condition, values: Mapping[str, Any]) -> Rows:
        ...

    async def delete(self, table_id: str, condition: Condition) -> Rows:
        ...

    async def execute(self, table_ids: Sequence[str], sql: str, params: Sequence[Any]) -> Rows:
        """A custom SQL statement (MySQL syntax, `?` for each of `params`) over these tables, named as their
        definitions name them. Only one SELECT, INSERT, UPDATE or DELETE on these tables is allowed."""
        ...


@dataclass(frozen=True, slots=True)
class ChildPlan:
    """A child workflow as the engine runs it: its compiled plan (the engine's own value; nodes never look inside)
    and the version it is, so that a child paused at a question resumes in that same version."""

    plan: Any
    version: str


class SubWorkflows(Protocol):
    """Other published workflows a Sub-workflow node runs: the engine asks here for a child's compiled plan."""

    async def load(self, workflow_id: str, version: str | None) -> ChildPlan:
        """`workflow_id` at `version` (None: its latest published version); a NodeError naming the workflow when
        there is none."""
        ...


@dataclass(frozen=True, slots=True)
class RunLimits:
    """Bounds the server sets on what a canvas may make a run do."""

    max_loop_iterations: int = 10_000  # KNOTFLOW_MAX_LOOP_ITERATIONS
    max_workflow_depth: int = 10  # KNOTFLOW_MAX_WORKFLOW_DEPTH: sub-workflows inside sub-workflows


@dataclass(slots=True)
class RunServices:
    """Everything a node may reach outside the engine, for one run."""

    models: ModelProvider | None = None
    files: FileFetcher | None = None
    chat_history: ChatHistory | None = None
    # A chat's user message as parts when it is multimodal (object_string): an LLM prompt that shows USER_INPUT
    # shows these parts to the model.
    user_message: Sequence[ContentPart] | None = None
    # Global variables' values by (reference source, top-level name), as the run sees them: read when it starts,
    # kept up to date by `variables`. A lookup may raise NodeError (a variable the run's bot or app does not
    # declare): the run fails, as in Coze Studio.
    global_variables: Mapping[tuple[str, str], Any] = field(default_factory=dict)
    code: CodeRunner | None = None
    http: HttpClient | None = None
    variables: Variables | None = None
    database: Database | None = None
    conversations: Conversations | None = None
    workflows: SubWorkflows | None = None
    limits: RunLimits = field(default_factory=RunLimits)
