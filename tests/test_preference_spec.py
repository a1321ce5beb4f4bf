"""The spec's preference settings: objectives, the method's settings, continue_from; checked in plain words,
written by ``lora-studio spec new --objective``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backend.cli.common import EXIT_OK, EXIT_USAGE
from backend.cli.main import main
from backend.core.spec import PREFERENCE_LEARNING_RATE, JobSpec, SpecError


def spec(**training: Any) -> dict[str, Any]:
    return {"data": {"path": "pairs.jsonl"}, "training": training}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            spec(objective="kto", micro_batch_size=1),
            "training.objective kto needs training.micro_batch_size of 2 or more: KTO takes its reference point from "
            "the other answers in each micro-batch; you wrote 1.",
        ),
        (
            spec(objective="dpo", packing=True),
            "training.packing joins examples into one sequence, which training.objective dpo cannot use",
        ),
        (
            {**spec(objective="orpo"), "preference": {"loss_type": "ipo"}},
            "preference.loss_type is used by training.objective dpo only, and this job's objective is orpo",
        ),
        (
            {**spec(objective="dpo"), "preference": {"desirable_weight": 2}},
            "preference.desirable_weight is used by training.objective kto only",
        ),
        (
            {**spec(), "continue_from": "adapter"},
            "continue_from goes on training an adapter with a preference objective",
        ),
        (
            {"data": {"path": "p.jsonl", "format": "alpaca"}, "training": {"objective": "dpo"}},
            "data.format alpaca is a layout for sft; training.objective dpo recognises its preference layouts itself",
        ),
        (
            spec(objective="ppo"),
            "training.objective must be one of 'sft', 'dpo', 'orpo', 'simpo' or 'kto'; you wrote 'ppo'",
        ),
        (
            {**spec(objective="dpo"), "preference": {"loss_type": "sigmoidal"}},
            "preference.loss_type must be one of 'sigmoid', 'ipo'",
        ),
    ],
)
def test_preference_settings_are_checked_in_plain_words(values: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as caught:
        JobSpec.from_dict(values)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(message), caught.value.problems


def test_a_preference_spec_round_trips(tmp_path: Path) -> None:
    values = {
        **spec(objective="dpo", micro_batch_size=2),
        "preference": {"beta": 0.2, "loss_type": "ipo"},
        "continue_from": str(tmp_path / "sft-adapter"),
    }
    written = JobSpec.from_dict(values)
    written.save(tmp_path / "spec.yaml")
    again = JobSpec.load(tmp_path / "spec.yaml")
    assert again == written and again.preference.loss_type == "ipo" and again.training.objective == "dpo"


def test_spec_new_writes_a_preference_job(tmp_path: Path) -> None:
    out = tmp_path / "job.yaml"
    args = ["spec", "new", "--data", "pairs.jsonl", "--objective", "dpo", "--continue-from", "sft/adapter"]
    assert main([*args, "-o", str(out)]) == EXIT_OK
    spec = JobSpec.load(out)
    assert spec.training.objective == "dpo" and spec.training.learning_rate == PREFERENCE_LEARNING_RATE
    assert spec.continue_from is not None and Path(spec.continue_from).name == "adapter"


def test_spec_new_refuses_continue_from_without_a_preference_objective(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "job.yaml"
    assert main(["spec", "new", "--data", "d.jsonl", "--continue-from", "a", "-o", str(out)]) == EXIT_USAGE
    assert capsys.readouterr().err.startswith("error: continue_from goes on training an adapter with a preference")
    assert not out.exists()
