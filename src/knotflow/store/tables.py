"""The tables, as SQLAlchemy Core. Portable types only: JSON is TEXT, times are seconds as doubles, ids are
strings.

The Alembic migrations in `migrations/versions/` create exactly these; a change here needs a new revision.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

ID = String(32)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

spaces = Table(
    "spaces",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("created_at", Double, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # hex SHA-256 of the plaintext
    Column("permissions", Text, nullable=False),  # JSON list
    Column("space_ids", Text, nullable=True),  # JSON list; NULL = every space
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=True),  # NULL = never
    Column("revoked_at", Double, nullable=True),  # NULL = not revoked
)

workflows = Table(
    "workflows",
    metadata,
    Column("id", ID, primary_key=True),
    Column("space_id", ID, ForeignKey("spaces.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("icon_url", Text, nullable=False, default=""),
    Column("app_id", ID, nullable=True),
    Column("requires_bot", Boolean, nullable=False, default=False),
    Column("mode", String(16), nullable=False),
    Column("canvas", Text, nullable=False),  # the draft, JSON
    Column("creator_id", ID, nullable=False, default=""),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),  # when the draft last changed
    # Denormalised from workflow_versions so that reading a workflow and the publish-status filters need no
    # join; written in the same transaction as the version.
    Column("latest_version", String(64), nullable=True),
    Column("published_at", Double, nullable=True),
    Index("ix_workflows_space_created", "space_id", "created_at"),
    Index("ix_workflows_created", "created_at"),
)

workflow_versions = Table(
    "workflow_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("workflow_id", ID, ForeignKey("workflows.id"), nullable=False),
    Column("version", String(64), nullable=False),
    Column("seq", Integer, nullable=False),  # 1, 2, … per workflow: orders versions regardless of clock ties
    Column("canvas", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("creator_id", ID, nullable=False, default=""),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("workflow_id", "version", name="uq_workflow_versions_workflow_version"),
    UniqueConstraint("workflow_id", "seq", name="uq_workflow_versions_workflow_seq"),
)

# Run tables carry no foreign keys: they are written in batches behind the hot path, and a trace must never be
# refused because of the order in which batches land.
runs = Table(
    "runs",
    metadata,
    Column("execute_id", ID, primary_key=True),
    Column("workflow_id", ID, nullable=False),
    Column("version", String(64), nullable=False),
    Column("space_id", ID, nullable=False),
    Column("run_mode", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("connector_id", String(32), nullable=False),
    Column("connector_uid", String(255), nullable=False),
    Column("bot_id", ID, nullable=False),
    Column("app_id", ID, nullable=False),
    Column("inputs", Text, nullable=False),
    Column("output", Text, nullable=False),
    Column("error_code", Integer, nullable=False),
    Column("error_message", Text, nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("logid", String(64), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("extra", Text, nullable=False),  # JSON object
    # The process running the run and until when it holds it: it renews the lease while the run runs; a
    # lapsed lease means the process is gone (see service/leases.py).
    Column("owner", String(96), nullable=True),
    Column("lease_until", Double, nullable=True),
    Index("ix_runs_workflow_created", "workflow_id", "created_at"),
    Index("ix_runs_status_updated", "status", "updated_at"),
    Index("ix_runs_status_lease", "status", "lease_until"),
    Index("ix_runs_space_created", "space_id", "created_at"),  # the console's run list, newest first per space
)

node_executions = Table(
    "node_executions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("execute_id", ID, nullable=False),
    Column("node_id", String(64), nullable=False),
    Column("node_type", String(32), nullable=False),
    Column("node_title", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("inputs", Text, nullable=False),
    Column("outputs", Text, nullable=False),
    Column("error", Text, nullable=True),
    Column("started_at", Double, nullable=False),
    Column("finished_at", Double, nullable=False),
    Column("warnings", Text, nullable=True),  # JSON list of texts; null when the node had none
    # The composite node it ran inside and the iteration or item; null for a node of the workflow itself.
    Column("parent_node_id", String(64), nullable=True),
    Column("iteration", Integer, nullable=True),
    # The tokens its model calls used; null for a node that called no model.
    Column("input_tokens", Integer, nullable=True),
    Column("output_tokens", Integer, nullable=True),
    Index("ix_node_executions_execute", "execute_id", "started_at"),
)

# Uploaded files: the metadata only; the bytes live in a FileStorage (knotflow.files) under the same id.
files = Table(
    "files",
    metadata,
    Column("id", ID, primary_key=True),
    Column("space_id", ID, ForeignKey("spaces.id"), nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("bytes", BigInteger, nullable=False),  # uploads may exceed 2 GiB when the limit is raised
    Column("content_type", String(255), nullable=False),
    Column("created_at", Double, nullable=False),
)

# One row per question a run asked; `resumed_at` is set exactly once (the compare-and-swap of a resume).
interrupts = Table(
    "interrupts",
    metadata,
    Column("execute_id", ID, primary_key=True),
    Column("event_id", ID, primary_key=True),
    Column("node_id", String(64), nullable=False),
    Column("node_title", String(255), nullable=False),
    Column("node_type", String(32), nullable=False),
    Column("kind", Integer, nullable=False),
    Column("data", Text, nullable=False),
    Column("checkpoint", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("resumed_at", Double, nullable=True),
)

# A chat's conversation, per space and per connector (channels' records are isolated). `pending_*` name the
# question a chatflow run waits on: the next chat in the conversation answers it.
conversations = Table(
    "conversations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("space_id", ID, ForeignKey("spaces.id"), nullable=False),
    Column("connector_id", String(32), nullable=False),
    Column("name", String(255), nullable=False),
    Column("meta_data", Text, nullable=False),  # JSON object of strings
    Column("creator_id", ID, nullable=False),
    Column("pending_event", String(80), nullable=True),  # "<execute_id>/<event id>"
    Column("pending_workflow", ID, nullable=True),
    Column("pending_kind", Integer, nullable=True),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    # The chat in progress and until when its lease holds: one chat at a time, and a process that died
    # mid-chat stops renewing, so the conversation frees itself.
    Column("running_chat", ID, nullable=True),
    Column("running_until", Double, nullable=True),
    # The bot or app the conversation belongs to ("" for none): cozepy's `bot_id`, Coze Studio's agent_id.
    Column("bot_id", ID, nullable=False, server_default=""),
    # The current section: a clear starts a new one, and chats see only its messages as history.
    Column("section_id", ID, nullable=False, server_default=""),
    Column("deleted_at", Double, nullable=True),  # deleted conversations (and their messages) are gone for good
    Index("ix_conversations_space_bot", "space_id", "bot_id", "connector_id", "created_at"),
)

# A conversation by name (Coze Studio's dynamic conversations): per space, app or bot ("" for none) and
# connector, the conversation a chat without conversation_id continues. Studio also keys names by user; a
# token is a credential here, not a person, and the space already bounds who may see the conversation.
conversation_names = Table(
    "conversation_names",
    metadata,
    Column("space_id", ID, primary_key=True),
    Column("app_id", ID, primary_key=True),
    Column("connector_id", ID, primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("conversation_id", ID, nullable=False),
    Column("updated_at", Double, nullable=False),
)

# A conversation's messages; `chat_id` groups one round (the user's message and the answers to it).
messages = Table(
    "messages",
    metadata,
    Column("id", ID, primary_key=True),
    Column("conversation_id", ID, nullable=False),
    Column("chat_id", ID, nullable=False),
    Column("role", String(16), nullable=False),
    Column("type", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("content_type", String(32), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("incomplete", Boolean, nullable=False, server_default=false()),  # an answer cut short
    Column("section_id", ID, nullable=False, server_default=""),  # the conversation's section when written
    Column("bot_id", ID, nullable=False, server_default=""),
    Column("meta_data", Text, nullable=False, server_default="{}"),  # JSON object of strings
    Column("updated_at", Double, nullable=False, server_default="0"),
    Column("deleted_at", Double, nullable=True),
    Index("ix_messages_conversation_chat", "conversation_id", "chat_id"),
    Index("ix_messages_conversation_created", "conversation_id", "created_at"),
)

# An app's conversation templates (Coze Studio's static conversations), by name. Every app also has "Default",
# which needs no row. A template's conversation is the one its name stands for in conversation_names, as for a
# name a node or a chat created (Studio's dynamic conversations): a template only makes the name fixed, so
# nodes may not rename or delete it.
conversation_templates = Table(
    "conversation_templates",
    metadata,
    Column("id", ID, primary_key=True),
    Column("app_id", ID, nullable=False),
    Column("name", String(255), nullable=False),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("app_id", "name", name="uq_conversation_templates_app_name"),
)

# A bot's or app's table (Coze's database), defined by `knotflow database create`. Its rows live in a real
# table of this database (`physical_name`), with a column per field (`f_<field id>`) and Coze's system
# columns; `fields` is the JSON list of the fields (id, name, type, required, description).
database_tables = Table(
    "database_tables",
    metadata,
    Column("id", ID, primary_key=True),  # the databaseInfoID canvases reference
    Column("owner_kind", String(8), nullable=False),  # "bot" | "app"
    Column("owner_id", ID, nullable=False),
    Column("name", String(255), nullable=False),  # what custom SQL calls the table
    Column("description", Text, nullable=False),
    Column("rw_mode", Integer, nullable=False),  # Coze's BotTableRWMode: 1 single-user, 2 read-only, 3 multi-user
    Column("fields", Text, nullable=False),
    Column("physical_name", String(64), nullable=False, unique=True),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("owner_kind", "owner_id", "name", name="uq_database_tables_owner_name"),
)


def _owners(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("id", ID, primary_key=True),
        Column("space_id", ID, ForeignKey("spaces.id"), nullable=False),
        Column("name", String(255), nullable=False),
        Column("created_at", Double, nullable=False),
    )


# Bots and apps (Coze's agents and projects), each in a space. Conversation templates, tables and variables name
# their owner by kind and id.
bots = _owners("bots")
apps = _owners("apps")

# A bot's or app's declared variables (Coze's variable meta): name, type, scope ("app": one value per app, "user":
# one per user) and default value, as text the way Coze keeps it (a string as it is, anything else as JSON).
variables = Table(
    "variables",
    metadata,
    Column("owner_kind", String(8), primary_key=True),  # "bot" | "app"
    Column("owner_id", ID, primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("type", String(255), nullable=False),
    Column("scope", String(8), nullable=False),
    Column("default_value", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

# Variables' stored values (Coze's variable instances): an app variable's under connector "" and uid "", a user
# variable's under the user's connector and connector uid (`ext.user_id`). A variable without a row here has
# its declared default.
variable_values = Table(
    "variable_values",
    metadata,
    Column("owner_kind", String(8), primary_key=True),
    Column("owner_id", ID, primary_key=True),
    Column("connector_id", String(32), primary_key=True),
    Column("connector_uid", String(255), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

# A person signed in to the console: the cookie's value is known only to the browser; the row keeps its SHA-256,
# the API token it stands for, and the CSRF token every change must carry. Signing out deletes the row.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("token_id", ID, nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
    Index("ix_console_sessions_expires", "expires_at"),
)
