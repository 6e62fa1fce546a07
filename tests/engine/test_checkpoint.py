"""The typed checkpoint: what it writes, every version it reads, nesting, and damaged ones refused clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knotflow.engine.checkpoint import VERSION, Checkpoint, CheckpointError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "checkpoints"


def sample(**changes: object) -> Checkpoint:
    checkpoint = Checkpoint(outputs=[{"a": 1}, None], skipped=[False, False], pending=[0, 1], live=[False, True],
                            started=[True, False], ready=[1], input_tokens=3, output_tokens=4, bytes_used=7,
                            resume_data={"2": "yes"}, node_state={"2": {"asked": 1}}, deferred={1: None})
    for name, value in changes.items():
        setattr(checkpoint, name, value)
    return checkpoint


def test_a_checkpoint_round_trips_through_its_text() -> None:
    checkpoint = sample()
    text = checkpoint.dumps()
    assert json.loads(text)["version"] == VERSION
    assert Checkpoint.loads(text) == checkpoint


def test_checkpoints_nest() -> None:
    inner = sample(ready=[0], children={"item-3": sample()})
    outer = sample(children={"loop/2": inner})
    restored = Checkpoint.loads(outer.dumps())
    assert restored.children["loop/2"].children["item-3"] == sample()
    assert restored == outer


@pytest.mark.parametrize("name", ["question", "input"])
def test_version_1_checkpoints_written_by_earlier_code_load(name: str) -> None:
    stored = json.loads((FIXTURES / f"{name}.json").read_text())["interrupt"]["checkpoint"]
    assert json.loads(stored)["version"] == 1
    checkpoint = Checkpoint.loads(stored)
    assert checkpoint.children == {} and checkpoint.fits(4)
    assert Checkpoint.loads(checkpoint.dumps()) == checkpoint  # and they are written back in the current format


def test_question_fixture_keeps_its_node_state() -> None:
    stored = json.loads((FIXTURES / "question.json").read_text())["interrupt"]["checkpoint"]
    checkpoint = Checkpoint.loads(stored)
    assert checkpoint.outputs[1] == {"output": "Hello, Ann!"} and checkpoint.ready == [2]
    assert checkpoint.node_state["140000"]["questions"][0]["question"] == "Where do you live, Ann?"


@pytest.mark.parametrize("text, problem", [
    ('{"version": 99}', "version 99"),
    ('{"outputs": []}', "version None"),
    ("[1, 2]", "version None"),
    ("not json", "not JSON"),
    ('{"version": 2, "outputs": []}', "damaged"),
])
def test_an_unreadable_checkpoint_is_a_clear_error(text: str, problem: str) -> None:
    with pytest.raises(CheckpointError, match=problem):
        Checkpoint.loads(text)


def test_a_checkpoint_of_another_plan_does_not_fit() -> None:
    assert sample().fits(2)
    assert not sample().fits(3)
    assert not sample(ready=[5]).fits(2)
