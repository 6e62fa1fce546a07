"""The `knotflow` command line.

Scripts depend on one contract: the LAST line of stdout is the command's value (a token, a workflow id, a
version); anything meant for people goes to stderr. Every command that touches the database first brings it
to the current schema, so a fresh data directory just works, and a failure is one line on stderr with exit
code 1.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from sqlalchemy.exc import SQLAlchemyError

from knotflow import logs
from knotflow.config import get_settings
from knotflow.dsl import jsonutil
from knotflow.errors import KnotflowError
from knotflow.service.access import PERMISSIONS
from knotflow.service.container import Container
from knotflow.service.signals import PUBLISHED, REVOKED
from knotflow.service.tokens import issue_token, parse_duration, revoke_token
from knotflow.store.records import PERMISSION_RUN, Token, Workflow, WorkflowVersion

P = ParamSpec("P")
T = TypeVar("T")

app = typer.Typer(
    name="knotflow",
    help="knotflow: a self-hosted workflow platform with Coze's workflow API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _configure_logging(ctx: typer.Context) -> None:
    """The server logs at KNOTFLOW_LOG_LEVEL; the other commands only what went wrong (their output is for
    people and scripts)."""
    settings = get_settings()
    level = settings.log_level if ctx.invoked_subcommand in ("serve", "worker") else "warning"
    logs.configure(level, settings.log_format)


token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
workflow_app = typer.Typer(help="Import, publish and list workflows.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(workflow_app, name="workflow")
app.add_typer(db_app, name="db")


# --- plumbing ---------------------------------------------------------------------------------------------
def _note(message: str) -> None:
    typer.echo(message, err=True)


def _fail(message: str) -> typer.Exit:
    _note(f"error: {message}")
    return typer.Exit(code=1)


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "unknown error"


def handle_errors(command: Callable[P, T]) -> Callable[P, T]:
    """Turn every failure into one line on stderr and exit code 1: scripts read the code, people the line.

    KNOTFLOW_LOG_LEVEL=debug lets an unexpected exception through with its traceback.
    """

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except KnotflowError as exc:
            raise _fail(_one_line(exc.message)) from None
        except jsonutil.JSONDecodeError as exc:
            raise _fail(f"invalid JSON: {_one_line(str(exc))}") from None
        except SQLAlchemyError as exc:
            # The driver's own message (`orig`) says what went wrong without SQLAlchemy's SQL dump.
            raise _fail(f"database: {_one_line(str(getattr(exc, 'orig', None) or exc))}") from None
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise _fail(f"{_one_line(exc.strerror or str(exc))}{where}") from None
        except KeyboardInterrupt:
            raise _fail("interrupted") from None
        except Exception as exc:  # a bug, but still no traceback for the person at the terminal
            if get_settings().log_level.lower() == "debug":
                raise
            raise _fail(f"{type(exc).__name__}: {_one_line(str(exc))}") from None

    return wrapper


def _database_url() -> str:
    """The configured database, migrated to the current schema (a no-op when it already is)."""
    from knotflow.store.migrate import upgrade

    url = get_settings().resolved_database_url()
    upgrade(url)
    return url


def _with_app(work: Callable[[Container], Awaitable[T]]) -> T:
    """`work` on the application as the server builds it (the composition root), without its background work:
    these commands administer the catalog while servers may be running."""
    _database_url()

    async def run() -> T:
        async with Container(get_settings(), background=False) as app:
            return await work(app)

    return asyncio.run(run())


async def _announce_publish(app: Container, workflow_id: str) -> None:
    """Every server reads the workflow's row again at once (with Redis; else within KNOTFLOW_WORKFLOW_CACHE_SECONDS)."""
    await app.scale.signals.announce(PUBLISHED, workflow_id)


# --- tokens -----------------------------------------------------------------------------------------------
@token_app.command("create")
@handle_errors
def token_create(
    name: Annotated[str, typer.Option("--name", help="A label to recognise the token by.")],
    permission: Annotated[
        list[str] | None,
        typer.Option("--permission", help=f"Granted permission (repeatable; default: run; known: "
                                          f"{', '.join(sorted(PERMISSIONS))})."),
    ] = None,
    space: Annotated[
        list[str] | None,
        typer.Option("--space", help="Restrict to this existing space id (repeatable; default: all)."),
    ] = None,
    expires_in: Annotated[
        str | None,
        typer.Option("--expires-in", help="Lifetime, e.g. 30d, 12h, 90m or 3600s (default: never expires)."),
    ] = None,
) -> None:
    """Create an API token and print it (it is stored only hashed: this is the one time it is shown)."""
    permissions = list(dict.fromkeys(permission or [PERMISSION_RUN]))
    spaces = list(dict.fromkeys(space)) if space else None
    lifetime = parse_duration(expires_in) if expires_in is not None else None
    token, plaintext = _with_app(lambda app: issue_token(app.store, name, permissions, spaces, lifetime))
    scope = ", ".join(spaces) if spaces else "all spaces"
    until = f"expires {_when(token.expires_at)}" if token.expires_at is not None else "never expires"
    _note(f"created token {token.name!r} (id {token.id}; {', '.join(permissions)}; {scope}; {until}); "
          "it is shown once")
    typer.echo(plaintext)


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


@token_app.command("list")
@handle_errors
def token_list() -> None:
    """List the tokens (never their values): id, name, permissions, spaces, created, expires, status."""
    tokens = _with_app(lambda app: app.store.list_tokens())
    if not tokens:
        _note("no tokens yet: `knotflow token create --name NAME` makes one")
        return
    now = time.time()
    rows = [[token.id, token.name, ",".join(token.permissions), ",".join(token.space_ids or []) or "all",
             _when(token.created_at), _when(token.expires_at), token.status(now)] for token in tokens]
    typer.echo(_table(["ID", "NAME", "PERMISSIONS", "SPACES", "CREATED", "EXPIRES", "STATUS"], rows))


@token_app.command("revoke")
@handle_errors
def token_revoke(token_id: Annotated[str, typer.Argument(help="The token's id (from `token list`).")]) -> None:
    """Revoke a token for good and print its id; servers refuse it at once with Redis, else within 5 seconds."""

    async def revoke(app: Container) -> Token:
        token = await revoke_token(app.store, token_id)
        await app.scale.signals.announce(REVOKED, token.id)
        return token

    token = _with_app(revoke)
    _note(f"revoked token {token.name!r} (id {token.id}) at {_when(token.revoked_at)}")
    typer.echo(token.id)


# --- workflows --------------------------------------------------------------------------------------------
@workflow_app.command("import")
@handle_errors
def workflow_import(
    file: Annotated[Path, typer.Argument(help="A Coze Studio canvas, as JSON or YAML.")],
    workflow_id: Annotated[
        str | None,
        typer.Option("--id", help="Keep this workflow id; an existing id gets its draft replaced."),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Default: the file's name.")] = None,
    space: Annotated[str | None, typer.Option("--space", help="Space id (default: the first space).")] = None,
    app_id: Annotated[str | None, typer.Option("--app-id", help="The app the workflow belongs to (created in the "
                                                                 "workflow's space if new).")] = None,
    chatflow: Annotated[bool, typer.Option("--chatflow", help="Import as a chatflow.")] = False,
    requires_bot: Annotated[bool, typer.Option("--requires-bot", help="Runs need a bot_id or app_id.")] = False,
    publish: Annotated[bool, typer.Option("--publish", help="Also publish the draft.")] = False,
    version: Annotated[
        str | None, typer.Option("--version", help="Publish as this version (implies --publish).")
    ] = None,
) -> None:
    """Import a canvas as a workflow's draft and print the workflow id."""
    from knotflow.dsl.canvas import load_file
    from knotflow.service.catalog import PublishRefused, import_workflow

    if workflow_id is not None and not workflow_id.strip():
        raise _fail("--id cannot be empty")
    canvas = load_file(file)
    async def work(app: Container) -> tuple[Workflow, WorkflowVersion | None]:
        imported = await import_workflow(
            app.store,
            canvas,
            workflow_id=workflow_id,
            name=name,
            default_name=file.stem,
            space_id=space,
            app_id=app_id,
            chatflow=chatflow,
            requires_bot=requires_bot,
            publish=publish or version is not None,
            version=version,
            node_types=app.node_types,
        )
        if imported[1] is not None:
            await _announce_publish(app, imported[0].id)
        return imported

    try:
        workflow, published = _with_app(work)
    except PublishRefused as refused:
        # The draft is stored: its id is the value, the publish's failure the one line on stderr.
        _note(f"error: imported {file} as draft {refused.workflow.id}, not published: {_one_line(refused.message)}; "
              f"then: knotflow workflow publish {refused.workflow.id}")
        typer.echo(refused.workflow.id)
        raise typer.Exit(code=1) from None
    state = f"published {published.version}" if published else "draft"
    _note(f"imported {file} as {workflow.mode} {workflow.name!r} in space {workflow.space_id} ({state})")
    typer.echo(workflow.id)


@workflow_app.command("publish")
@handle_errors
def workflow_publish(
    workflow_id: Annotated[str, typer.Argument(help="The workflow whose draft to publish.")],
    version: Annotated[str | None, typer.Option("--version", help="Default: the next v0.0.N.")] = None,
) -> None:
    """Publish a workflow's draft as a new immutable version and print the version."""
    from knotflow.service.catalog import publish

    async def work(app: Container) -> WorkflowVersion:
        published = await publish(app.store, workflow_id, version, node_types=app.node_types)
        await _announce_publish(app, workflow_id)
        return published

    published = _with_app(work)
    _note(f"published workflow {workflow_id} as {published.version}")
    typer.echo(published.version)


def _all_workflows(app: Container) -> Awaitable[list[Workflow]]:
    async def collect() -> list[Workflow]:
        found: list[Workflow] = []
        while True:
            page, more = await app.store.list_workflows(space_ids=None, offset=len(found), limit=200)
            found.extend(page)
            if not more or not page:
                return found

    return collect()


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = [headers, ["-" * width for width in widths], *rows]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


@workflow_app.command("list")
@handle_errors
def workflow_list() -> None:
    """List every workflow, newest first."""
    workflows = _with_app(_all_workflows)
    if not workflows:
        _note("no workflows yet: `knotflow workflow import FILE --publish` adds one")
        return
    rows = [[w.id, w.name, w.latest_version or "-", w.app_id or "-", w.mode] for w in workflows]
    typer.echo(_table(["ID", "NAME", "LATEST VERSION", "APP", "MODE"], rows))


# --- database, server, local runs -------------------------------------------------------------------------
@db_app.command("upgrade")
@handle_errors
def db_upgrade() -> None:
    """Migrate the database to the current schema and print its revision."""
    from knotflow.store.migrate import current_revision, upgrade

    url = get_settings().resolved_database_url()
    before = current_revision(url)
    upgrade(url)
    revision = current_revision(url) or ""
    where = _display_url(url)
    if before is None:
        _note(f"created the knotflow schema in the empty database {where}: revision {revision} (the current one)")
    elif before != revision:
        _note(f"migrated database {where} from revision {before} to {revision} (the current one)")
    else:
        _note(f"database {where} was already at the current schema: revision {revision}")
    typer.echo(revision)


def _display_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command("serve")
@handle_errors
def serve(
    host: Annotated[str | None, typer.Option("--host", help="Default: KNOTFLOW_HOST or 127.0.0.1.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Default: KNOTFLOW_PORT or 8000.")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1,
                                         help="Server processes sharing the port (needs KNOTFLOW_REDIS_URL).")] = 1,
) -> None:
    """Run the API server (migrating the database first)."""
    settings = get_settings()
    _database_url()
    from knotflow.api.server import serve as serve_api

    serve_api(host or settings.host, port if port is not None else settings.port, workers)


@app.command("worker")
@handle_errors
def worker(
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Async runs run at once.")] = 10,
) -> None:
    """Run async runs (`is_async`) from the queue in Redis (KNOTFLOW_REDIS_URL) until stopped (SIGINT, SIGTERM)."""
    settings = get_settings()
    if not settings.redis_url:
        raise KnotflowError("knotflow worker takes async runs from Redis: set KNOTFLOW_REDIS_URL")
    _database_url()
    from knotflow.service.worker import work

    asyncio.run(work(settings, concurrency))


@app.command("run")
@handle_errors
def run(
    workflow_id: Annotated[str, typer.Argument(help="A published workflow.")],
    parameters: Annotated[
        str,
        typer.Option(
            "--parameters", "-p", help='The Start node\'s inputs as a JSON object, e.g. {"name":"x"}.'
        ),
    ] = "{}",
    stream: Annotated[bool, typer.Option("--stream", help="Print the events as Coze's SSE stream.")] = False,
) -> None:
    """Run the latest published version of a workflow in this process and print its result."""
    values: Any = jsonutil.loads(parameters)
    if not isinstance(values, dict):
        raise _fail("--parameters must be a JSON object")
    _database_url()
    from knotflow.cli.run import run_and_print

    code = run_and_print(workflow_id, values, stream)
    raise typer.Exit(code=code)


def _add_platform_commands() -> None:
    from knotflow.cli.platform import app_app, database_app

    app.add_typer(app_app, name="app")
    app.add_typer(database_app, name="database")


_add_platform_commands()


def _add_registry_commands() -> None:
    from knotflow.cli.platform import app_app
    from knotflow.cli.registry import app_create, app_list, bot_app, variable_app

    app.add_typer(bot_app, name="bot")
    app_app.command("create")(app_create)
    app_app.command("list")(app_list)
    app.add_typer(variable_app, name="variable")


_add_registry_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
