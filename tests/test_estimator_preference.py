"""The estimator prices preference jobs: two sequences per pair, the reference's forward, and says so."""

from __future__ import annotations

from typing import Any

import pytest

from backend.core.spec import JobSpec
from backend.estimator import GpuMemory, estimate, shapes_from_config
from backend.estimator.calibration import signature
from backend.estimator.knobs import resolve
from backend.estimator.stack import INSTALLED
from tests.model_configs import LLAMA_8B

GIB = 1024**3
RTX_4090 = GpuMemory("NVIDIA GeForce RTX 4090", 24 * GIB, 23 * GIB)
SHAPES = shapes_from_config(LLAMA_8B)


def spec(objective: str, **training: Any) -> JobSpec:
    settings = {"objective": objective, "micro_batch_size": 4, "max_seq_length": 2048, **training}
    return JobSpec.from_dict({"data": {"path": "train.jsonl"}, "training": settings})


def total(objective: str, **training: Any) -> int:
    return estimate(spec(objective, **training), SHAPES, RTX_4090).total_bytes


@pytest.mark.parametrize("checkpointing", [True, False])
def test_preference_jobs_cost_more_than_sft_at_the_same_settings(checkpointing: bool) -> None:
    cost = {o: total(o, gradient_checkpointing=checkpointing) for o in ("sft", "dpo", "orpo", "simpo", "kto")}
    # Pairs double the sequences; the reference pass of DPO and KTO holds no activations of its own, so it
    # raises the peak only where it is the largest moment (the backward's working memory usually is).
    assert cost["dpo"] >= cost["orpo"] == cost["simpo"] > cost["kto"] >= cost["sft"]
    assert cost["dpo"] > cost["sft"]


def test_a_pair_doubles_the_saved_activations() -> None:
    from backend.estimator.memory import step_memory

    def saved(objective: str) -> int:
        step = step_memory(SHAPES, resolve(spec(objective), SHAPES, RTX_4090), INSTALLED, RTX_4090, 2048)
        return step.saved_layers

    assert saved("dpo") == saved("orpo") == 2 * saved("sft") == 2 * saved("kto")


def test_a_pair_costs_what_two_sft_examples_cost() -> None:
    # The same tokens per micro-batch: ORPO's pair of answers is SFT's micro-batch of twice as many examples.
    orpo = estimate(spec("orpo", micro_batch_size=2), SHAPES, RTX_4090)
    sft = estimate(spec("sft", micro_batch_size=4), SHAPES, RTX_4090)
    assert orpo.tokens_per_micro_batch == sft.tokens_per_micro_batch == 4 * 2048
    assert orpo.total_bytes == sft.total_bytes


def test_the_reference_forward_is_a_phase_without_gradients_on_top_of_the_held_activations() -> None:
    knobs = resolve(spec("dpo"), SHAPES, RTX_4090)
    from backend.estimator.memory import step_memory

    step = step_memory(SHAPES, knobs, INSTALLED, RTX_4090, 2048)
    held = step.persistent + step.saved_layers + step.saved_other + step.head_saved
    assert step.phases["reference forward"] == held + step.reference_forward
    assert 0 < step.reference_forward < step.saved_layers + step.recompute + step.layer_backward
    orpo = step_memory(SHAPES, resolve(spec("orpo"), SHAPES, RTX_4090), INSTALLED, RTX_4090, 2048)
    assert "reference forward" not in orpo.phases and orpo.reference_forward == 0


def test_the_explanation_says_why() -> None:
    dpo = estimate(spec("dpo"), SHAPES, RTX_4090)
    assert (
        "DPO: each example is a chosen and a rejected answer, so activations are about twice SFT's, plus a forward "
        "pass of the reference model without gradients (the base with the adapter switched off, no second copy of "
        "the model)." in dpo.notes
    )
    activations = next(t for t in dpo.terms if t.key == "activations")
    assert activations.explanation.endswith(
        "Each example is two sequences, its chosen and its rejected answer: twice an SFT micro-batch."
    )
    assert "SimPO needs no reference model." in " ".join(estimate(spec("simpo"), SHAPES, RTX_4090).notes)
    assert any(note.startswith("KTO: each example is one answer") for note in estimate(spec("kto"), SHAPES).notes)
    assert not any("answer" in note for note in estimate(spec("sft"), SHAPES, RTX_4090).notes)


def test_the_reference_forward_is_shown_when_it_is_the_peak() -> None:
    # Without checkpointing the backward's recompute is gone and the reference pass can be the peak moment.
    result = estimate(spec("dpo", gradient_checkpointing=False, micro_batch_size=1), SHAPES, RTX_4090)
    if result.peak_phase == "reference forward":
        assert any(t.key == "reference" for t in result.terms)
    assert sum(t.bytes for t in result.terms) == result.total_bytes


def test_sft_calibrations_are_not_reused_for_preference_jobs() -> None:
    sft, dpo = (signature(SHAPES, resolve(spec(o), SHAPES, RTX_4090), INSTALLED) for o in ("sft", "dpo"))
    assert sft != dpo
