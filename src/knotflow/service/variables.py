"""Bots' and apps' variables (Coze's global variables): declaring them (`knotflow variable declare | list`), the
open API's user variables (`GET` / `PUT /v1/variables`), and what a run reads and writes (`RunVariables`).

A variable is declared on a bot or an app with a name, a type and a default, in one of two scopes:

- **app** (apps only; canvases read it as `global_variable_app`): one value for the app, whoever runs it;
- **user** (canvases read `global_variable_user`): one value per user of the bot or app, the user being the run's
  connector (`connector_id`) and connector uid (`ext.user_id`; none is one anonymous user per connector).

Values are kept as Coze keeps them, as text: a string as it is, anything else as JSON; a variable never set reads
its declared default. Reading converts the text to the declared type as Coze Studio's variable store does (an
empty text is the type's zero: "", 0, false, or null for objects and lists); writing converts the value to the
declared type as Coze converts a run's inputs (fail-fast), so a stored value always reads back. `global_variable_
system` names the read-only system variables of the run (`SYSTEM_VARIABLES`).
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from knotflow.dsl import jsonutil
from knotflow.dsl.canvas import NodeDef, parse_canvas
from knotflow.dsl.convert import coerce
from knotflow.dsl.types import BOOLEAN, FLOAT, INTEGER, LIST, OBJECT, STRING, TypeInfo, TypeMismatch, to_text
from knotflow.dsl.values import parse_block_input
from knotflow.errors import BadRequest, CanvasError, NodeError
from knotflow.service.access import PERMISSION_READ, PERMISSION_RUN, check_permission
from knotflow.service.owners import APP, BOT, Owners, require_owner
from knotflow.store.records import SCOPE_APP, SCOPE_USER, Run, Token, VariableDeclaration
from knotflow.store.repository import Store

APP_SOURCE, USER_SOURCE, SYSTEM_SOURCE = "global_variable_app", "global_variable_user", "global_variable_system"
SCOPE_SOURCES = {SCOPE_APP: APP_SOURCE, SCOPE_USER: USER_SOURCE}
SCOPES = (SCOPE_APP, SCOPE_USER)
MAX_NAME = 50  # Coze's limit on a variable's name
MAX_VARIABLES = 100  # per bot or app
MAX_VALUE_BYTES = 1 << 20  # a stored value's text
VARIABLE_ERROR = 777777764  # Coze Studio's ErrVariablesAPIFail
ASSIGN_NODE_TYPE = "40"
APP_KEY = ("", "")  # the (connector id, connector uid) an app variable's value is stored under
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_LIST = re.compile(r"(?:list|array)\s*<\s*(.+?)\s*>")
_SCALARS = {"string": STRING, "integer": INTEGER, "float": FLOAT, "number": FLOAT, "boolean": BOOLEAN,
            "object": OBJECT}
_EMPTY = {INTEGER: 0, FLOAT: 0, BOOLEAN: False}  # what an empty text reads as (Coze Studio's varStore.Get)


class VariableError(NodeError):
    """A variable a run cannot read or write: undeclared, of another scope, read-only, or a value that does not
    fit its type."""

    def __init__(self, message: str, *, internal_code: int = VARIABLE_ERROR) -> None:
        super().__init__(message, internal_code=internal_code)


# --- types and values ---------------------------------------------------------------------------------------
def parse_type(text: str) -> TypeInfo:
    """A variable type as the CLI writes it: string, integer, float (or number), boolean, object, or
    list<T> / array<T> of any of those."""
    spelled = text.strip().lower()
    listed = _LIST.fullmatch(spelled)
    if listed:
        return TypeInfo(LIST, element=parse_type(listed.group(1)))
    if spelled in ("list", "array"):
        raise BadRequest(f"a list type names its elements' type, e.g. list<string>; got {text!r}")
    if spelled not in _SCALARS:
        raise BadRequest(f"unknown variable type {text!r}: use string, integer, float, boolean, object or "
                         "list<T>")
    return TypeInfo(_SCALARS[spelled])


def type_name(info: TypeInfo) -> str:
    if info.type == LIST:
        return f"list<{type_name(info.element) if info.element is not None else STRING}>"
    return info.type


def decode(text: str, info: TypeInfo, label: str) -> Any:
    """A stored text as a value of type `info` (ValueError when it is none). Unlike Coze Studio, whose
    integer variables parse in base 64 and so never read back, integers are decimal."""
    if info.type == STRING:
        return text
    if text == "":
        return _EMPTY.get(info.type)
    value: Any = text
    if info.type in (OBJECT, LIST):
        try:
            value = jsonutil.loads(text)
        except jsonutil.JSONDecodeError as exc:
            raise ValueError(f"{label}: {_shown(text)} is no JSON {info.type}") from exc
    try:
        return coerce(value, info, "value")
    except TypeMismatch as exc:
        inside = f" ({exc})" if str(exc).startswith("field value.") else ""
        raise ValueError(f"{label}: {_shown(text)} is not of type {type_name(info)}{inside}") from exc


def encode(value: Any, info: TypeInfo, label: str) -> str:
    """A value to store: converted to type `info` as Coze converts a run's inputs (TypeMismatch when it does
    not fit), then as text."""
    converted = coerce(value, info, label)
    return "" if converted is None else to_text(converted)


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:80] + "…")


def check_size(text: str, label: str) -> None:
    size = len(text.encode())
    if size > MAX_VALUE_BYTES:
        raise BadRequest(f"{label}: a value is at most {MAX_VALUE_BYTES} bytes, this one is {size}")


def check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.fullmatch(name) or len(name) > MAX_NAME:
        raise BadRequest(f"a variable name is 1 to {MAX_NAME} letters, digits and '_', starting with a letter; "
                         f"got {name!r}")
    if name.startswith("sys_"):
        raise BadRequest(f"names starting with sys_ are the system variables': {name!r}")
    return name


@dataclass(frozen=True, slots=True)
class Declared:
    """A declaration with its parsed type."""

    declaration: VariableDeclaration
    info: TypeInfo

    @classmethod
    def of(cls, declaration: VariableDeclaration) -> Declared:
        return cls(declaration, parse_type(declaration.type))

    @property
    def name(self) -> str:
        return self.declaration.name

    @property
    def scope(self) -> str:
        return self.declaration.scope


def owner_label(kind: str, owner_id: str) -> str:
    return f"{kind} {owner_id}"


def check_assignments(canvas: dict[str, Any], declared: Mapping[str, TypeInfo], owner: str) -> None:
    """Coze Studio's publish check of Variable assign nodes (CheckGlobalVariables): each assignment's variable
    type on the canvas (`left`, by the assignment's name) must be the type `owner` declares, and a list's
    element type its element type. Names it does not declare are not checked (a run refuses them)."""
    for node in _assign_nodes(parse_canvas(canvas).nodes):
        entries = node.inputs.get("inputParameters")
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or not entry.get("name") or not isinstance(entry.get("left"), dict):
                continue
            name = str(entry["name"])
            wanted = declared.get(name)
            if wanted is None:
                continue
            given = parse_block_input(entry["left"])[1]
            where = f"variable assign node '{node.title}' ({node.id}): param [{name}]"
            if given.type != wanted.type:
                raise CanvasError(f"{where} is {type_name(given)} but {owner} declares {name} as "
                                  f"{type_name(wanted)}: type mismatch")
            if wanted.type == LIST and given.element and wanted.element and given.element.type != wanted.element.type:
                raise CanvasError(f"{where} is {type_name(given)} but {owner} declares {name} as "
                                  f"{type_name(wanted)}: array element type mismatch")


def _assign_nodes(nodes: Sequence[NodeDef]) -> Iterator[NodeDef]:
    for node in nodes:
        if node.type == ASSIGN_NODE_TYPE:
            yield node
        yield from _assign_nodes(node.blocks)


# --- system variables ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RunContext:
    """Who a run's variables belong to: its bot or app (`owner`, None for neither), its user, and what the
    system variables tell."""

    owner: tuple[str, str] | None
    connector_id: str
    connector_uid: str
    workflow_id: str = ""
    execute_id: str = ""
    bot_id: str = ""
    app_id: str = ""
    conversation_id: str = ""

    @classmethod
    def of(cls, run: Run, conversation_id: str | None = None) -> RunContext:
        # As Coze Studio: the app's variables when the run has an app, else the bot's.
        owner = (APP, run.app_id) if run.app_id else (BOT, run.bot_id) if run.bot_id else None
        return cls(owner, run.connector_id, run.connector_uid, run.workflow_id, run.execute_id, run.bot_id,
                   run.app_id, conversation_id or "")

    @property
    def user_key(self) -> tuple[str, str]:
        return self.connector_id, self.connector_uid


def _sys_uuid(context: RunContext) -> str | None:
    """Coze Studio's user id: base64 of "<1 bot | 2 app>|<bot or app id>|<connector uid>|<connector id>"."""
    if context.owner is None:
        return None
    kind, owner_id = context.owner
    plain = f"{1 if kind == BOT else 2}|{owner_id}|{context.connector_uid}|{context.connector_id}"
    return base64.b64encode(plain.encode()).decode()


# The system variables a run reads (`global_variable_system`): Coze Studio's `sys_uuid`, and what else knotflow
# knows of the run. Strings are "" when the run has none (no ext.user_id, no bot, outside a chat).
SYSTEM_VARIABLES: dict[str, Callable[[RunContext], Any]] = {
    "sys_uuid": _sys_uuid,
    "sys_user_id": lambda c: c.connector_uid,
    "sys_connector_id": lambda c: c.connector_id,
    "sys_bot_id": lambda c: c.bot_id,
    "sys_app_id": lambda c: c.app_id,
    "sys_conversation_id": lambda c: c.conversation_id,
    "sys_workflow_id": lambda c: c.workflow_id,
    "sys_execute_id": lambda c: c.execute_id,
    "sys_current_time": lambda c: datetime.now(UTC).isoformat(timespec="seconds"),  # at the read, UTC
    "sys_timestamp": lambda c: int(time.time()),  # at the read, seconds since 1970
}


# --- a run's variables --------------------------------------------------------------------------------------
class RunVariables(Mapping[tuple[str, str], Any]):
    """A run's global variables: `RunServices.global_variables` (the engine reads `(source, name)`) and
    `RunServices.variables` (Variable assign writes). Loaded when the run starts (or resumes); a write is
    stored at once and seen by the rest of the run, sub-workflows included.

    Without a bot or app, app and user variables read null (as Studio's test runs do) and cannot be written. With
    one, a variable it does not declare in the reference's scope fails the run, as in Coze Studio."""

    def __init__(self, store: Store, context: RunContext, declared: Sequence[Declared],
                 values: Mapping[str, str]) -> None:
        self.store = store
        self.context = context
        self._declared = {d.name: d for d in declared}
        self._values = dict(values)  # stored texts by name, for this run's app and user

    def __getitem__(self, key: tuple[str, str]) -> Any:
        source, name = key
        if source == SYSTEM_SOURCE:
            return self._system(name)
        if source not in (APP_SOURCE, USER_SOURCE) or self.context.owner is None:
            raise KeyError(key)
        declared = self._declaration(source, name)
        text = self._values.get(name, declared.declaration.default)
        try:
            return decode(text, declared.info, f"variable {name}")
        except ValueError as exc:
            raise VariableError(f"{exc}: the {self._owner} stores a value its type cannot read") from exc

    def __iter__(self) -> Iterator[tuple[str, str]]:
        if self.context.owner is not None:
            yield from ((SCOPE_SOURCES[d.scope], d.name) for d in self._declared.values())
        yield from ((SYSTEM_SOURCE, name) for name in SYSTEM_VARIABLES)

    def __len__(self) -> int:
        return (len(self._declared) if self.context.owner is not None else 0) + len(SYSTEM_VARIABLES)

    @property
    def _owner(self) -> str:
        assert self.context.owner is not None
        return owner_label(*self.context.owner)

    def _system(self, name: str) -> Any:
        found = SYSTEM_VARIABLES.get(name)
        if found is None:
            raise VariableError(f"system variable {name!r} does not exist; knotflow's are "
                                f"{', '.join(SYSTEM_VARIABLES)}")
        return found(self.context)

    def _declaration(self, source: str, name: str) -> Declared:
        if not name:
            raise VariableError("a reference to a variable names none (its path is empty)")
        declared = self._declared.get(name)
        scope = SCOPE_APP if source == APP_SOURCE else SCOPE_USER
        if declared is None:
            assert self.context.owner is not None
            kind, owner_id = self.context.owner
            raise VariableError(f"variable {name} is not declared by the {self._owner} (declare it: knotflow "
                                f"variable declare --{kind} {owner_id} --name {name} --type T --scope {scope})")
        if declared.scope != scope:
            raise VariableError(f"variable {name} of the {self._owner} has the scope {declared.scope}, but "
                                f"{source} names variables of the scope {scope}")
        return declared

    async def assign(self, source: str, name: str, value: Any) -> None:
        """Variable assign: store `value` as the app's or the run's user's value of variable `name`."""
        if source == SYSTEM_SOURCE:
            raise VariableError(f"system variable {name} is read-only")
        if source not in (APP_SOURCE, USER_SOURCE):
            raise VariableError(f"{source} names no variables a Variable assign node can write")
        if self.context.owner is None:
            raise VariableError(f"assigning variable {name} needs the run's bot_id or app_id: variables belong "
                                "to a bot or app")
        declared = self._declaration(source, name)
        try:
            text = encode(value, declared.info, name)
            check_size(text, f"variable {name}")
        except (TypeMismatch, BadRequest) as exc:
            reason = exc.message if isinstance(exc, BadRequest) else str(exc)
            raise VariableError(f"variable {name} of the {self._owner} is {declared.declaration.type}: "
                                f"{reason}") from exc
        kind, owner_id = self.context.owner
        key = APP_KEY if declared.scope == SCOPE_APP else self.context.user_key
        await self.store.set_variable_values(kind, owner_id, *key, {name: text}, time.time())
        self._values[name] = text


# --- the service -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UserValue:
    """A user variable's value as the open API shows it: stored (with its times), or the default (times 0)."""

    name: str
    value: str
    created_at: int
    updated_at: int


class VariableService:
    def __init__(self, store: Store, owners: Owners) -> None:
        self.store = store
        self.owners = owners

    # --- declarations -------------------------------------------------------------------------------------
    async def declare(self, kind: str, owner_id: str, name: str, type_text: str, default: str | None = None,
                      scope: str | None = None) -> VariableDeclaration:
        """Declare a variable, or change the default of one declared before. Its type or scope change only
        while no value is stored for it (stored values would no longer fit)."""
        owner_id = await require_owner(self.owners, kind, owner_id)
        name = check_name(name)
        scope = scope or SCOPE_USER
        if scope not in SCOPES:
            raise BadRequest(f"a variable's scope is app or user, not {scope!r}")
        if kind == BOT and scope == SCOPE_APP:
            raise BadRequest("a bot has user variables only; app variables belong to apps")
        info = parse_type(type_text)
        text = "" if default is None else default
        if text and info.type != STRING:
            try:
                text = encode(decode(text, info, f"the default of {name}"), info, name)
            except ValueError as exc:
                raise BadRequest(str(exc)) from exc
        check_size(text, f"the default of {name}")
        existing = {d.name: d for d in await self.store.variable_declarations(kind, owner_id)}
        before = existing.get(name)
        now = time.time()
        declaration = VariableDeclaration(owner_kind=kind, owner_id=owner_id, name=name, type=type_name(info),
                                          scope=scope, default=text, created_at=now, updated_at=now)
        if before is None and len(existing) >= MAX_VARIABLES:
            raise BadRequest(f"{owner_label(kind, owner_id)} already has {MAX_VARIABLES} variables, the most it "
                             "may have")
        if before is not None and (before.type, before.scope) != (declaration.type, scope):
            stored = await self.store.count_variable_values(kind, owner_id, name)
            if stored:
                raise BadRequest(f"variable {name} of {owner_label(kind, owner_id)} is a {before.scope} variable "
                                 f"of type {before.type} with {stored} stored value(s): its type and scope stay")
        await self.store.declare_variable(declaration)
        if before is not None:
            declaration.created_at = before.created_at
        return declaration

    async def declarations(self, kind: str, owner_id: str) -> list[VariableDeclaration]:
        owner_id = await require_owner(self.owners, kind, owner_id)
        return await self.store.variable_declarations(kind, owner_id)

    async def _user_variables(self, token: Token, kind: str, owner_id: str) -> tuple[str, dict[str, Declared]]:
        owner_id = await require_owner(self.owners, kind, owner_id, token)
        declared = [Declared.of(d) for d in await self.store.variable_declarations(kind, owner_id)]
        return owner_id, {d.name: d for d in declared if d.scope == SCOPE_USER}

    # --- the open API: a user's values ----------------------------------------------------------------------
    async def user_values(self, token: Token, kind: str, owner_id: str, connector_id: str, connector_uid: str,
                          keywords: Sequence[str]) -> list[UserValue]:
        """`GET /v1/variables`: the user's values of the bot's or app's user variables (those named by
        `keywords`, in that order; none: all of them), defaults included. Other names are left out."""
        check_permission(token, PERMISSION_READ)
        owner_id, declared = await self._user_variables(token, kind, owner_id)
        names = [name for name in dict.fromkeys(keywords) if name in declared] if keywords else list(declared)
        stored = {v.name: v for v in await self.store.variable_values(kind, owner_id,
                                                                     [(connector_id, connector_uid)])}
        result = []
        for name in names:
            value = stored.get(name)
            if value is None:
                result.append(UserValue(name, declared[name].declaration.default, 0, 0))
            else:
                result.append(UserValue(name, value.value, int(value.created_at), int(value.updated_at)))
        return result

    async def set_user_values(self, token: Token, kind: str, owner_id: str, connector_id: str,
                              connector_uid: str, items: Sequence[tuple[str, str]]) -> None:
        """`PUT /v1/variables`: set the user's values (text as Coze keeps it) in one transaction. Every keyword
        must be a user variable of the bot or app, every value fit its type; else nothing is set (4000)."""
        check_permission(token, PERMISSION_RUN)
        if not items:
            raise BadRequest("data must list at least one variable")
        owner_id, declared = await self._user_variables(token, kind, owner_id)
        values: dict[str, str] = {}
        for name, text in items:
            found = declared.get(name)
            if found is None:
                raise BadRequest(f"keyword {name!r} is no user variable of {owner_label(kind, owner_id)}")
            try:
                decode(text, found.info, f"variable {name}")
            except ValueError as exc:
                raise BadRequest(str(exc)) from exc
            check_size(text, f"variable {name}")
            values[name] = text
        await self.store.set_variable_values(kind, owner_id, connector_id, connector_uid, values, time.time())

    # --- runs ---------------------------------------------------------------------------------------------
    async def for_run(self, run: Run, conversation_id: str | None = None) -> RunVariables:
        """The run's variables: its bot's or app's declarations, the app's values and the run's user's."""
        context = RunContext.of(run, conversation_id)
        if context.owner is None:
            return RunVariables(self.store, context, [], {})
        kind, owner_id = context.owner
        declared = [Declared.of(d) for d in await self.store.variable_declarations(kind, owner_id)]
        values: dict[str, str] = {}
        if declared:
            scopes = {d.name: d.scope for d in declared}
            for value in await self.store.variable_values(kind, owner_id, [APP_KEY, context.user_key]):
                key = APP_KEY if scopes.get(value.name) == SCOPE_APP else context.user_key
                if (value.connector_id, value.connector_uid) == key:
                    values[value.name] = value.value
        return RunVariables(self.store, context, declared, values)
