"""`knotflow app conversation add|list` and `knotflow database create|list|drop` (of bots and apps made with
`knotflow bot|app create`): the last line of stdout is the value, failures are one stderr line and exit code 1."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import cli, data_dir, failure, value

__all__ = ["data_dir"]

TABLE = {"id": "7478954112676282405", "table_name": "notes", "table_desc": "what users noted", "rw_mode": 3,
         "field_list": [{"name": "text", "desc": "", "type": 1, "must_required": True, "alterId": 1783122026497},
                        {"name": "stars", "type": 2, "alterId": 1783392627713}]}


def table_file(tmp_path: Path, table: dict[str, object]) -> str:
    path = tmp_path / "table.json"
    path.write_text(json.dumps(table), encoding="utf-8")
    return str(path)


def owners(*ids: tuple[str, str]) -> None:
    for kind, owner_id in ids:
        assert value(cli(kind, "create", "--name", f"{kind} {owner_id}", "--id", owner_id)) == owner_id


def test_database_create_list_drop(data_dir: Path, tmp_path: Path) -> None:
    file = table_file(tmp_path, TABLE)
    assert "bot 42 does not exist" in failure(cli("database", "create", "--bot", "42", "--file", file))
    owners(("bot", "42"), ("app", "43"))
    assert value(cli("database", "create", "--bot", "42", "--file", file)) == "7478954112676282405"
    assert "already exists" in failure(cli("database", "create", "--app", "43", "--file", file))
    listed = cli("database", "list").stdout
    assert "7478954112676282405" in listed and "notes" in listed and "bot 42" in listed and "multi-user" in listed
    assert "notes" not in cli("database", "list", "--app", "42").stdout
    assert value(cli("database", "drop", "7478954112676282405")) == "7478954112676282405"
    assert "does not exist" in failure(cli("database", "drop", "7478954112676282405"))
    assert value(cli("database", "create", "--app", "43", "--file", file)) == "7478954112676282405"  # again


def test_database_create_refuses_bad_definitions(data_dir: Path, tmp_path: Path) -> None:
    owners(("bot", "42"))
    assert "--bot ID or --app ID" in failure(cli("database", "create", "--file", table_file(tmp_path, TABLE)))
    assert "--bot ID or --app ID" in failure(cli("database", "create", "--bot", "1", "--app", "2", "--file",
                                                 table_file(tmp_path, TABLE)))
    bad = [({**TABLE, "field_list": []}, "field_list"),
           ({**TABLE, "rw_mode": 9}, "rw_mode"),
           ({**TABLE, "field_list": [{"name": "id", "type": 1}]}, "system field"),
           ({**TABLE, "field_list": [{"name": "a", "type": 7}]}, "type must be"),
           ({**TABLE, "field_list": [{"name": "a", "type": 1, "alterId": 3}, {"name": "b", "type": 1, "alterId": 3}]},
            "must differ"),
           ({**TABLE, "id": "abc"}, "positive number")]
    for table, reason in bad:
        assert reason in failure(cli("database", "create", "--bot", "42", "--file", table_file(tmp_path, table)))
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    assert "invalid JSON" in failure(cli("database", "create", "--bot", "42", "--file", str(tmp_path / "broken.json")))


def test_app_conversation_add(data_dir: Path) -> None:
    assert "app 9 does not exist" in failure(cli("app", "conversation", "add", "--app", "9", "--name", "support"))
    owners(("app", "9"))
    assert value(cli("app", "conversation", "add", "--app", "9", "--name", "support")) == "support"
    assert "already has" in failure(cli("app", "conversation", "add", "--app", "9", "--name", "support"))
    assert "already has" in failure(cli("app", "conversation", "add", "--app", "9", "--name", "Default"))
    assert cli("app", "conversation", "list", "--app", "9").stdout.split() == ["Default", "support"]
    assert cli("app", "conversation", "list", "--app", "10").stdout.split() == ["Default"]
