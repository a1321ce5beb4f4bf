"""The job spec: defaults, round trips, and a readable message for every rejected value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.core.spec import SCHEMA_VERSION, JobSpec, SpecError
from backend.core.task_specs import EvaluateSpec, ExportSpec, MergeSpec

MINIMAL = {"data": {"path": "train.jsonl"}}


def _with(section: str, key: str, value: object) -> dict:
    return {**MINIMAL, section: {**MINIMAL.get(section, {}), key: value}}


def test_defaults_follow_current_practice() -> None:
    spec = JobSpec.from_dict(MINIMAL)
    assert spec.schema_version == SCHEMA_VERSION
    assert (spec.lora.r, spec.lora.effective_alpha, spec.lora.dropout) == (16, 32.0, 0.05)
    assert spec.lora.target_modules == "all_linear"
    assert (spec.training.learning_rate, spec.training.lr_scheduler) == (2e-4, "cosine")
    assert spec.training.warmup_ratio > 0
    assert spec.training.max_grad_norm == 0.3
    assert (spec.quantization.mode, spec.quantization.double_quant) == ("nf4", True)
    assert spec.training.gradient_checkpointing is True
    assert spec.data.loss_on == "assistant"


def _custom() -> JobSpec:
    return JobSpec.from_dict(
        {
            "name": "contracts-v2",
            "base_model": "/models/qwen",
            "quantization": {"mode": "fp4", "double_quant": False, "compute_dtype": "float16"},
            "lora": {"r": 64, "alpha": 16, "target_modules": ["q_proj", "v_proj"], "use_rslora": True},
            "training": {"max_steps": 300, "optimizer": "paged_adamw_8bit", "packing": True, "precision": "fp16"},
            "data": {"path": "d.jsonl", "eval_path": "e.jsonl", "loss_on": "all"},
            "schedule": {"eval_every_steps": 25, "save_every_steps": 100},
            "output_dir": "/out",
        }
    )


def test_yaml_and_json_round_trip_keep_every_value(tmp_path: Path) -> None:
    spec = _custom()
    assert JobSpec.from_text(spec.to_yaml(), "yaml") == spec
    assert JobSpec.from_text(spec.to_json(), "json") == spec
    for name in ("spec.yaml", "spec.json"):
        spec.save(tmp_path / name)
        assert JobSpec.load(tmp_path / name) == spec
    assert json.loads((tmp_path / "spec.json").read_text())["lora"]["target_modules"] == ["q_proj", "v_proj"]


REJECTED = [
    ("lora", "alpha", -16, "lora.alpha must be greater than 0; you wrote -16"),
    ("lora", "r", 0, "lora.r must be greater than 0; you wrote 0"),
    ("lora", "r", 2048, "lora.r must be at most 1024; you wrote 2048"),
    ("lora", "r", 8.5, "lora.r must be a whole number; you wrote 8.5"),
    ("lora", "dropout", 1.0, "lora.dropout must be less than 1; you wrote 1.0"),
    ("lora", "dropout", -0.1, "lora.dropout must be at least 0; you wrote -0.1"),
    ("lora", "target_modules", "attn", "lora.target_modules must be one of 'attention', 'attention_mlp' or"),
    ("lora", "target_modules", [], "lora.target_modules needs at least one module name"),
    ("lora", "use_dora", "maybe", "lora.use_dora must be true or false; you wrote 'maybe'"),
    ("quantization", "mode", "int3", "quantization.mode must be one of 'nf4', 'fp4', 'int8' or 'none'"),
    ("quantization", "compute_dtype", "fp8", "quantization.compute_dtype must be one of"),
    ("training", "learning_rate", 0, "training.learning_rate must be greater than 0; you wrote 0"),
    ("training", "learning_rate", 5, "training.learning_rate must be at most 1; you wrote 5"),
    ("training", "lr_scheduler", "step", "training.lr_scheduler must be one of"),
    ("training", "warmup_ratio", 1.5, "training.warmup_ratio must be less than 1; you wrote 1.5"),
    ("training", "epochs", 0, "training.epochs must be greater than 0; you wrote 0"),
    ("training", "max_steps", -5, "training.max_steps must be greater than 0; you wrote -5"),
    ("training", "micro_batch_size", "four", "training.micro_batch_size must be a whole number; you wrote 'four'"),
    ("training", "gradient_accumulation_steps", 0, "training.gradient_accumulation_steps must be greater than 0"),
    ("training", "max_seq_length", 8, "training.max_seq_length must be at least 16; you wrote 8"),
    ("training", "optimizer", "adam", "training.optimizer must be one of 'adamw_torch', 'adamw_8bit'"),
    ("training", "weight_decay", 2, "training.weight_decay must be at most 1; you wrote 2"),
    ("training", "max_grad_norm", -1, "training.max_grad_norm must be at least 0; you wrote -1"),
    ("training", "precision", "int8", "training.precision must be one of 'auto', 'bf16', 'fp16' or 'fp32'"),
    ("training", "seed", -1, "training.seed must be at least 0; you wrote -1"),
    ("data", "path", "", "data.path must not be empty"),
    ("data", "eval_split", 0.9, "data.eval_split must be at most 0.5; you wrote 0.9"),
    ("data", "loss_on", "prompt", "data.loss_on must be one of 'assistant' or 'all'; you wrote 'prompt'"),
    ("schedule", "save_every_steps", 0, "schedule.save_every_steps must be greater than 0; you wrote 0"),
    ("schedule", "eval_every_steps", -3, "schedule.eval_every_steps must be greater than 0; you wrote -3"),
    ("schedule", "keep_checkpoints", 0, "schedule.keep_checkpoints must be greater than 0; you wrote 0"),
]


@pytest.mark.parametrize(
    ("section", "key", "value", "message"), REJECTED, ids=[f"{s}.{k}={v!r}" for s, k, v, _ in REJECTED]
)
def test_rejected_value_names_field_rule_and_input(section: str, key: str, value: object, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        JobSpec.from_dict(_with(section, key, value))
    assert any(problem.startswith(message) for problem in caught.value.problems), caught.value.problems
    assert len(caught.value.problems) == 1


def test_top_level_values_rejected() -> None:
    for data, message in [
        ({**MINIMAL, "name": ""}, "name must not be empty"),
        ({**MINIMAL, "base_model": ""}, "base_model must not be empty"),
        ({**MINIMAL, "kind": "dance"}, "kind must be one of 'train'"),
        ({**MINIMAL, "schema_version": 0}, "schema_version must be 1 or more"),
        ({}, "data is required"),
    ]:
        with pytest.raises(SpecError) as caught:
            JobSpec.from_dict(data)
        assert caught.value.problems == [message] or caught.value.problems[0].startswith(message)


def test_every_problem_is_listed_at_once() -> None:
    data = {"data": {"path": "x"}, "lora": {"r": -1, "alpha": 0}, "training": {"micro_batch_size": 0}}
    with pytest.raises(SpecError) as caught:
        JobSpec.from_dict(data)
    assert len(caught.value.problems) == 3


def test_unknown_setting_suggests_the_close_one() -> None:
    with pytest.raises(SpecError) as caught:
        JobSpec.from_dict(_with("training", "learnig_rate", 1e-4))
    assert caught.value.problems == [
        "training.learnig_rate is not a setting LoRA Studio knows; did you mean learning_rate?"
    ]
    with pytest.raises(SpecError) as caught:
        JobSpec.from_dict({**MINIMAL, "frobnicate": "red"})
    assert caught.value.problems == ["frobnicate is not a setting LoRA Studio knows; remove it"]


def test_cross_field_conflicts_are_explained() -> None:
    with pytest.raises(SpecError, match="use_dora does not work with an 8-bit base"):
        JobSpec.from_dict({**MINIMAL, "quantization": {"mode": "int8"}, "lora": {"use_dora": True}})
    with pytest.raises(SpecError, match="mixes two half formats"):
        JobSpec.from_dict({**MINIMAL, "quantization": {"compute_dtype": "bfloat16"}, "training": {"precision": "fp16"}})


def test_spec_from_a_newer_version_says_to_update() -> None:
    with pytest.raises(SpecError, match=r"newer LoRA Studio .* update LoRA Studio"):
        JobSpec.from_dict({**MINIMAL, "schema_version": SCHEMA_VERSION + 1})


def test_unreadable_files_give_messages(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the spec"):
        JobSpec.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("lora: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        JobSpec.load(bad)
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(SpecError, match="must be a mapping of settings; this file holds a list"):
        JobSpec.load(listing)


def test_alpha_defaults_to_twice_the_rank() -> None:
    assert JobSpec.from_dict(_with("lora", "r", 8)).lora.effective_alpha == 16
    assert JobSpec.from_dict({**MINIMAL, "lora": {"r": 8, "alpha": 8}}).lora.effective_alpha == 8


def _leaf_fields(model: type = JobSpec, prefix: str = "") -> list[tuple[str, object]]:
    from pydantic import BaseModel

    leaves = []
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            leaves += _leaf_fields(field.annotation, f"{prefix}{name}.")
        else:
            leaves.append((f"{prefix}{name}", field))
    return leaves


def test_every_setting_has_plain_language_help_and_is_documented() -> None:
    """The GUI's form shows these descriptions next to each field; docs/job-spec.md lists them."""
    reference = (Path(__file__).parent.parent / "docs" / "job-spec.md").read_text()
    for name, field in _leaf_fields():
        assert field.description, f"{name} has no help text"
        assert f"`{name}`" in reference, f"{name} is missing from docs/job-spec.md"


@pytest.mark.parametrize("document", [EvaluateSpec, MergeSpec, ExportSpec])
def test_every_setting_of_the_other_kinds_is_documented_in_its_own_section(document: type) -> None:
    reference = (Path(__file__).parent.parent / "docs" / "job-spec.md").read_text()
    kind = document.model_fields["kind"].default
    heading = f"## `kind: {kind}`\n"
    assert heading in reference, f"docs/job-spec.md has no section for {kind} jobs"
    section = reference.split(heading, 1)[1].split("\n## ", 1)[0]
    for name, field in _leaf_fields(document):
        assert field.description, f"{kind}: {name} has no help text"
        assert f"| `{name}` |" in section, f"{kind}: {name} is missing from its section of docs/job-spec.md"


# -- lora-studio spec new: the window's presets from a terminal -------------------------------


@pytest.mark.parametrize("preset", ["quick-test", "balanced", "max-quality", None])
def test_spec_new_starts_from_the_window_s_presets(tmp_path: Path, preset: str | None) -> None:
    from backend.cli.common import EXIT_OK
    from backend.cli.main import main
    from backend.core.presets import DEFAULT_PRESET, PRESETS, flatten, matching_preset

    out = tmp_path / "job.yaml"
    args = ["spec", "new", "--data", "train.jsonl", "--model", "someone/model", "-o", str(out)]
    assert main([*args, "--preset", preset] if preset else args) == EXIT_OK
    spec = JobSpec.load(out)
    expected = next(p.name for p in PRESETS.values() if p.key == preset) if preset else DEFAULT_PRESET
    assert matching_preset(flatten(spec.model_dump())) == expected
    assert (spec.base_model, Path(spec.data.path).name) == ("someone/model", "train.jsonl")
