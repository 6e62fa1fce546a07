"""`knotflow bot create`, `knotflow app create` and `knotflow variable declare | list` (the contract scripts depend
on): the last line of stdout is the value, failures are one stderr line and exit code 1."""

from __future__ import annotations

from pathlib import Path

from knotflow.store.repository import Store
from tests import canvases as c
from tests.test_cli import cli, data_dir, failure, value, with_store, write_canvas

__all__ = ["data_dir"]


def test_bot_and_app_create_print_the_id(data_dir: Path) -> None:
    created = cli("bot", "create", "--name", "Helper")
    bot_id = value(created)
    assert bot_id.isdigit() and "created bot 'Helper' in space" in created.stderr
    assert value(cli("bot", "create", "--name", "Other", "--id", "7300000000000000001")) == "7300000000000000001"
    assert value(cli("app", "create", "--name", "Shop", "--id", "shop", "--space", "77")) == "shop"
    assert "bot 7300000000000000001 already exists" in failure(cli("bot", "create", "--name", "x", "--id",
                                                                     "7300000000000000001"))
    assert "letters, digits" in failure(cli("app", "create", "--name", "x", "--id", "a b"))
    assert "name is 1 to 255" in failure(cli("bot", "create", "--name", " "))

    async def check(store: Store) -> tuple[str | None, str | None]:
        app, bot = await store.get_bot_app("app", "shop"), await store.get_bot_app("bot", bot_id)
        return app and app.space_id, bot and bot.name

    assert with_store(check) == ("77", "Helper")
    assert [line.split()[0] for line in cli("bot", "list").stdout.splitlines()[2:]] == [bot_id, "7300000000000000001"]
    assert cli("app", "list").stdout.splitlines()[2].split() == ["shop", "Shop", "77"]


def test_variable_declare_and_list(data_dir: Path) -> None:
    value(cli("bot", "create", "--name", "Helper", "--id", "42"))
    value(cli("app", "create", "--name", "Shop", "--id", "43"))
    assert value(cli("variable", "declare", "--bot", "42", "--name", "nick", "--type", "string", "--default",
                     "Ann")) == "nick"
    declared = cli("variable", "declare", "--app", "43", "--name", "visits", "--type", "integer", "--scope", "app",
                   "--default", "0")
    assert value(declared) == "visits" and "app 43 has the app variable visits (integer, default 0)" in \
        declared.stderr
    assert value(cli("variable", "declare", "--app", "43", "--name", "tags", "--type", "array<string>")) == "tags"
    assert cli("variable", "list", "--app", "43").stdout.splitlines() == [
        "NAME    SCOPE  TYPE          DEFAULT",
        "------  -----  ------------  -------",
        "visits  app    integer       0",
        "tags    user   list<string>  -",
    ]
    assert "nick  user   string  'Ann'" in cli("variable", "list", "--bot", "42").stdout
    assert "--bot ID or --app ID" in failure(cli("variable", "list", "--bot", "42", "--app", "43"))
    for args, reason in ((("--bot", "9"), "bot 9 does not exist"),
                         (("--bot", "42", "--scope", "app"), "user variables only"),
                         (("--bot", "42", "--type", "list"), "names its elements' type"),
                         (("--bot", "42", "--default", "x", "--type", "integer"), "'x' is not of type integer")):
        options = {"--name": "v", "--type": "string", **dict(zip(args[::2], args[1::2], strict=True))}
        assert reason in failure(cli("variable", "declare", *[part for item in options.items() for part in item]))
    assert "app 44 does not exist" in failure(cli("variable", "list", "--app", "44"))


def test_workflow_import_creates_its_app(data_dir: Path, tmp_path: Path) -> None:
    file = write_canvas(tmp_path / "echo.json", c.echo())
    assert value(cli("workflow", "import", str(file), "--id", "7001", "--app-id", "shop", "--space", "5")) == "7001"
    assert "app shop belongs to space 5" in failure(cli("workflow", "import", str(file), "--app-id", "shop",
                                                        "--space", "6"))
    listed = cli("variable", "list", "--app", "shop")
    assert listed.exit_code == 0 and "app shop has no variables yet" in listed.stderr
