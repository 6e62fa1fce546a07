"""Plain records the repository returns and accepts. The rest of knotflow never sees ORM objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RUNNING, SUCCESS, FAIL, INTERRUPTED = "Running", "Success", "Fail", "Interrupted"
QUEUED = "Queued"  # an async run waiting in the queue for a worker (only with Redis)
RUN_MODE_SYNC, RUN_MODE_STREAM, RUN_MODE_ASYNC = 0, 1, 2
PERMISSION_RUN = "run"
BOT, APP = "bot", "app"  # who owns variables, tables and conversation templates
SCOPE_APP, SCOPE_USER = "app", "user"  # a variable's scope: one value per app, or per bot/app and user


@dataclass(slots=True)
class Space:
    id: str
    name: str
    created_at: int


@dataclass(slots=True)
class Token:
    id: str
    name: str
    permissions: list[str]
    space_ids: list[str] | None  # None: every space
    created_at: int
    expires_at: float | None = None  # None: never
    revoked_at: float | None = None  # None: not revoked

    def status(self, now: float) -> str:
        """"active", "expired" or "revoked"."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def can_access(self, space_id: str) -> bool:
        return self.space_ids is None or space_id in self.space_ids


@dataclass(slots=True)
class Workflow:
    id: str
    space_id: str
    name: str
    description: str
    icon_url: str
    app_id: str | None
    requires_bot: bool
    mode: str  # "workflow" | "chatflow"
    canvas: dict[str, Any]
    created_at: int
    updated_at: int
    creator_id: str = ""
    latest_version: str | None = None
    published_at: float | None = None  # when the latest version was published
    draft_changed: bool = False  # the draft changed after the latest version was published


@dataclass(slots=True)
class WorkflowVersion:
    id: str
    workflow_id: str
    version: str
    canvas: dict[str, Any]
    description: str
    created_at: int
    creator_id: str = ""


@dataclass(slots=True)
class Run:
    execute_id: str
    workflow_id: str
    version: str
    space_id: str
    run_mode: int
    status: str
    connector_id: str = "1024"
    connector_uid: str = ""
    bot_id: str = ""
    app_id: str = ""
    inputs: str = "{}"  # JSON text
    output: str = ""  # JSON text of the End node's data (what /v1/workflow/run returns in `data`)
    error_code: int = 0
    error_message: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    logid: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)  # Output-node texts by title, for run histories
    owner: str | None = None  # the process running it (None once it ended or waits for an answer)
    lease_until: float | None = None  # when the owner's hold lapses unless renewed


@dataclass(slots=True)
class RunSummary:
    """A run as a list shows it: no inputs or outputs, its workflow's name joined in."""

    execute_id: str
    workflow_id: str
    workflow_name: str  # "" when the workflow is gone
    version: str
    space_id: str
    run_mode: int
    status: str
    connector_id: str
    error_code: int
    error_message: str
    input_tokens: int
    output_tokens: int
    created_at: float
    updated_at: float


@dataclass(slots=True)
class NodeExecution:
    id: str  # node_execute_uuid
    execute_id: str
    node_id: str
    node_type: str
    node_title: str
    status: str
    inputs: str  # JSON text
    outputs: str  # JSON text
    error: str | None
    started_at: float
    finished_at: float
    warnings: list[str] = field(default_factory=list)  # what went wrong without failing the node
    # Inside a Loop's iteration, a Batch's item or a sub-workflow: that composite node's id, and the index.
    parent_node_id: str | None = None
    iteration: int | None = None
    # The tokens its model calls used; None for a node that called no model.
    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass(slots=True)
class StoredFile:
    """An uploaded file's metadata (Coze's File: id, bytes, created_at, file_name), plus where it belongs."""

    id: str
    space_id: str
    file_name: str
    bytes: int
    content_type: str
    created_at: int


@dataclass(slots=True)
class InterruptRecord:
    """A question a run waits on: the node that asked, what it asked, and the checkpoint to resume from."""

    execute_id: str
    event_id: str
    node_id: str
    node_title: str
    node_type: str
    kind: int  # Coze InterruptType: 2 question, 5 input
    data: str
    checkpoint: str  # JSON text
    created_at: float
    resumed_at: float | None = None


@dataclass(slots=True)
class Conversation:
    """A chat's conversation. `pending_event` is the question ("<execute_id>/<event id>") a run waits on."""

    id: str
    space_id: str
    connector_id: str
    name: str
    meta_data: dict[str, str]
    creator_id: str
    created_at: float
    updated_at: float
    pending_event: str | None = None
    pending_workflow: str | None = None
    pending_kind: int | None = None
    running_chat: str | None = None
    running_until: float | None = None
    bot_id: str = ""  # the bot or app it belongs to ("" for none)
    section_id: str = ""  # the current section (a clear starts a new one)
    deleted_at: float | None = None


@dataclass(slots=True)
class ChatMessage:
    """One message of a conversation; `chat_id` is the round it belongs to."""

    id: str
    conversation_id: str
    chat_id: str
    role: str  # "user" | "assistant"
    type: str  # "question" | "answer"
    content: str
    content_type: str  # "text" | "object_string"
    created_at: float
    incomplete: bool = False  # an answer its chat did not finish (the client left and the run was cancelled)
    section_id: str = ""  # "" when written: the conversation's current section
    bot_id: str = ""  # "" when written: the conversation's bot or app
    meta_data: dict[str, str] = field(default_factory=dict)
    updated_at: float = 0.0  # 0 when written: its creation time
    deleted_at: float | None = None


@dataclass(slots=True)
class MessagePage:
    """A page of a conversation's messages, in the order asked for; `has_more`: more lie beyond the last one
    in the direction of travel."""

    messages: list[ChatMessage]
    has_more: bool


@dataclass(slots=True)
class ConversationTemplate:
    """A name an app's conversations are fixed under (Coze Studio's conversation template)."""

    id: str
    app_id: str
    name: str
    created_at: float


TEXT_FIELD, NUMBER_FIELD, DATE_FIELD, FLOAT_FIELD, BOOLEAN_FIELD = 1, 2, 3, 4, 5  # Coze's FieldItemType
FIELD_TYPES = {TEXT_FIELD: "Text", NUMBER_FIELD: "Number", DATE_FIELD: "Date", FLOAT_FIELD: "Float",
               BOOLEAN_FIELD: "Boolean"}
SINGLE_USER, READ_ONLY, MULTI_USER = 1, 2, 3  # Coze's BotTableRWMode
RW_MODES = {SINGLE_USER: "single-user", READ_ONLY: "read-only", MULTI_USER: "multi-user"}


@dataclass(frozen=True, slots=True)
class TableField:
    """One of a table's fields: `id` is the field id canvases reference (Coze's alterId)."""

    id: str
    name: str
    type: int  # Coze's FieldItemType
    required: bool = False
    description: str = ""

    @property
    def column(self) -> str:
        return f"f_{self.id}"


@dataclass(slots=True)
class UserTable:
    """A bot's or app's table (Coze's database)."""

    id: str
    owner_kind: str  # "bot" | "app"
    owner_id: str
    name: str
    description: str
    rw_mode: int
    fields: list[TableField]
    physical_name: str
    created_at: float

    def field_by_id(self, field_id: str) -> TableField | None:
        return next((f for f in self.fields if f.id == field_id), None)

    def field_by_name(self, name: str) -> TableField | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(slots=True)
class BotApp:
    """A bot or an app (Coze's agent or project), in a space: it owns variables, tables and conversation
    templates."""

    kind: str  # BOT | APP
    id: str
    space_id: str
    name: str
    created_at: float


@dataclass(slots=True)
class VariableDeclaration:
    """A bot's or app's variable (Coze's variable meta). An app variable (`scope` "app") has one value per app;
    a user variable ("user") one per user (connector and connector uid). `default` and stored values are text
    as Coze keeps them: a string as it is, any other value as JSON."""

    owner_kind: str
    owner_id: str
    name: str
    type: str  # "string", "integer", "float", "boolean", "object" or "list<element type>"
    scope: str  # SCOPE_APP | SCOPE_USER
    default: str
    created_at: float
    updated_at: float


@dataclass(slots=True)
class VariableValue:
    """A variable's stored value for one key: the app (connector "" and uid "") or one user."""

    name: str
    connector_id: str
    connector_uid: str
    value: str
    created_at: float
    updated_at: float


@dataclass(slots=True)
class ConsoleSession:
    """A console sign-in: the hash of its cookie's value, the token it stands for, its CSRF token."""

    id_hash: str
    token_id: str
    csrf: str
    created_at: float
    expires_at: float
