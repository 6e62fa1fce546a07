"""`knotflow bot create | list`, `knotflow app create | list` (bots and apps, each in a space) and `knotflow
variable declare | list` (their variables). As every command: the last line of stdout is the value, the rest is
stderr."""

from __future__ import annotations

from typing import Annotated

import typer

from knotflow.cli.commands import _fail, _note, _table, _with_app, handle_errors
from knotflow.service.owners import APP, BOT
from knotflow.store.records import BotApp, VariableDeclaration

bot_app = typer.Typer(help="Bots (they own user variables, tables and conversations).", no_args_is_help=True)
variable_app = typer.Typer(help="Bots' and apps' variables (Coze's global variables).", no_args_is_help=True)

_SPACE_HELP = "The space it belongs to (created if new, as workflow import does; default: the first space)."


def _create(kind: str, name: str, owner_id: str | None, space: str | None) -> None:
    record: BotApp = _with_app(lambda app: app.owners.create(kind, name, owner_id=owner_id, space_id=space))
    _note(f"created {kind} {record.name!r} in space {record.space_id}")
    typer.echo(record.id)


@bot_app.command("create")
@handle_errors
def bot_create(
    name: Annotated[str, typer.Option("--name", help="The bot's name.")],
    bot_id: Annotated[str | None, typer.Option("--id", help="Keep this id (what runs pass as bot_id).")] = None,
    space: Annotated[str | None, typer.Option("--space", help=_SPACE_HELP)] = None,
) -> None:
    """Create a bot and print its id."""
    _create(BOT, name, bot_id, space)


@handle_errors
def app_create(
    name: Annotated[str, typer.Option("--name", help="The app's name.")],
    app_id: Annotated[str | None, typer.Option("--id", help="Keep this id (what runs pass as app_id).")] = None,
    space: Annotated[str | None, typer.Option("--space", help=_SPACE_HELP)] = None,
) -> None:
    """Create an app and print its id."""
    _create(APP, name, app_id, space)


def _list(kind: str) -> None:
    records: list[BotApp] = _with_app(lambda app: app.owners.list(kind))
    if not records:
        _note(f"no {kind}s yet: `knotflow {kind} create --name N` makes one")
        return
    typer.echo(_table(["ID", "NAME", "SPACE"], [[r.id, r.name, r.space_id] for r in records]))


@bot_app.command("list")
@handle_errors
def bot_list() -> None:
    """List the bots: id, name, space."""
    _list(BOT)


@handle_errors
def app_list() -> None:
    """List the apps: id, name, space."""
    _list(APP)


def _owner(bot: str | None, app_id: str | None) -> tuple[str, str]:
    if (bot is None) == (app_id is None):
        raise _fail("name the variable's owner: --bot ID or --app ID (one of them)")
    return (BOT, bot) if bot is not None else (APP, app_id or "")


def _shown_default(declaration: VariableDeclaration) -> str:
    return repr(declaration.default) if declaration.type == "string" else declaration.default or "-"


@variable_app.command("declare")
@handle_errors
def variable_declare(
    name: Annotated[str, typer.Option("--name", help="The variable's name, as canvases reference it.")],
    type_text: Annotated[str, typer.Option("--type", help="string, integer, float, boolean, object or list<T>.")],
    bot: Annotated[str | None, typer.Option("--bot", help="The bot the variable belongs to.")] = None,
    app_id: Annotated[str | None, typer.Option("--app", help="The app the variable belongs to.")] = None,
    default: Annotated[str | None, typer.Option("--default", help="Its value until one is set: text for a "
                                                                  "string, JSON for the others.")] = None,
    scope: Annotated[str | None, typer.Option("--scope", help="user (default): one value per user; app (apps "
                                                              "only): one value for the app.")] = None,
) -> None:
    """Declare a bot's or app's variable (or change its default) and print its name."""
    kind, owner = _owner(bot, app_id)
    declared = _with_app(lambda app: app.variables.declare(kind, owner, name, type_text, default, scope))
    _note(f"{kind} {owner} has the {declared.scope} variable {declared.name} ({declared.type}, default "
          f"{_shown_default(declared)})")
    typer.echo(declared.name)


@variable_app.command("list")
@handle_errors
def variable_list(
    bot: Annotated[str | None, typer.Option("--bot", help="The bot's variables.")] = None,
    app_id: Annotated[str | None, typer.Option("--app", help="The app's variables.")] = None,
) -> None:
    """List a bot's or app's variables: name, scope, type and default."""
    kind, owner = _owner(bot, app_id)
    declared = _with_app(lambda app: app.variables.declarations(kind, owner))
    if not declared:
        _note(f"{kind} {owner} has no variables yet: `knotflow variable declare --{kind} {owner} --name N "
              "--type T` declares one")
        return
    rows = [[d.name, d.scope, d.type, _shown_default(d)] for d in declared]
    typer.echo(_table(["NAME", "SCOPE", "TYPE", "DEFAULT"], rows))
