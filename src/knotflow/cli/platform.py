"""`knotflow app conversation add` (an app's conversation templates) and `knotflow database create | list |
drop` (bots' and apps' tables). As every command: the last line of stdout is the value, the rest is stderr."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from knotflow.cli.commands import _fail, _note, _table, _with_app, handle_errors
from knotflow.dsl import jsonutil
from knotflow.service.owners import APP, BOT
from knotflow.store.records import FIELD_TYPES, RW_MODES, UserTable

app_app = typer.Typer(help="Apps (their conversation templates; `app create`).", no_args_is_help=True)
app_conversation_app = typer.Typer(help="An app's conversation templates (Coze Studio's static conversations).",
                                   no_args_is_help=True)
database_app = typer.Typer(help="Bots' and apps' tables (Coze's databases).", no_args_is_help=True)
app_app.add_typer(app_conversation_app, name="conversation")


@app_conversation_app.command("add")
@handle_errors
def conversation_add(
    app_id: Annotated[str, typer.Option("--app", help="The app's id.")],
    name: Annotated[str, typer.Option("--name", help="The conversation's name, as canvases name it.")],
) -> None:
    """Add a conversation template to an app (every app already has "Default") and print its name."""
    template = _with_app(lambda app: app.conversations.add_template(app_id, name))
    _note(f"app {template.app_id} has the conversation {template.name!r} (template {template.id})")
    typer.echo(template.name)


@app_conversation_app.command("list")
@handle_errors
def conversation_list(app_id: Annotated[str, typer.Option("--app", help="The app's id.")]) -> None:
    """List an app's conversation templates, "Default" first."""
    for name in _with_app(lambda app: app.conversations.template_names(app_id)):
        typer.echo(name)


def _owner(bot: str | None, app_id: str | None) -> tuple[str, str]:
    if (bot is None) == (app_id is None):
        raise _fail("name the table's owner: --bot ID or --app ID (one of them)")
    return (BOT, bot) if bot is not None else (APP, app_id or "")


@database_app.command("create")
@handle_errors
def database_create(
    file: Annotated[Path, typer.Option("--file", help="The table as Coze defines it (JSON): id, table_name, "
                                                      "rw_mode, field_list.")],
    bot: Annotated[str | None, typer.Option("--bot", help="The bot the table belongs to.")] = None,
    app_id: Annotated[str | None, typer.Option("--app", help="The app the table belongs to.")] = None,
) -> None:
    """Define a bot's or app's table and print its id (what canvases reference as databaseInfoID)."""
    kind, owner = _owner(bot, app_id)
    definition = jsonutil.loads(file.read_bytes())
    table = _with_app(lambda app: app.databases.define(kind, owner, definition))
    fields = ", ".join(f"{f.name} ({FIELD_TYPES[f.type]}, id {f.id})" for f in table.fields)
    _note(f"{kind} {owner} has table {table.name!r} ({RW_MODES[table.rw_mode]}): {fields}")
    typer.echo(table.id)


def _row(table: UserTable) -> list[str]:
    return [table.id, table.name, f"{table.owner_kind} {table.owner_id}", RW_MODES[table.rw_mode],
            ", ".join(f.name for f in table.fields)]


@database_app.command("list")
@handle_errors
def database_list(
    bot: Annotated[str | None, typer.Option("--bot", help="Only this bot's tables.")] = None,
    app_id: Annotated[str | None, typer.Option("--app", help="Only this app's tables.")] = None,
) -> None:
    """List the tables (of one bot or app, or all)."""
    kind, owner = _owner(bot, app_id) if bot is not None or app_id is not None else (None, None)
    tables = _with_app(lambda app: app.databases.tables(kind, owner))
    if not tables:
        _note("no tables yet: `knotflow database create --bot ID --file TABLE.json` defines one")
        return
    typer.echo(_table(["ID", "NAME", "OWNER", "MODE", "FIELDS"], [_row(t) for t in tables]))


@database_app.command("drop")
@handle_errors
def database_drop(table_id: Annotated[str, typer.Argument(help="The table's id.")]) -> None:
    """Drop a table with all its rows and print its id."""
    table = _with_app(lambda app: app.databases.drop(table_id))
    _note(f"dropped table {table.name!r} of {table.owner_kind} {table.owner_id} and its rows")
    typer.echo(table.id)
