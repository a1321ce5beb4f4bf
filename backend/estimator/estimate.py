"""The estimate: terms that add up to the GPU memory a job needs, a verdict and what to change.

``estimate`` is what the form calls on every edit; everything it needs is plain
arithmetic over cached shapes, so it takes well under the 5 ms budget
(bench/estimator_latency.py).
"""

from __future__ import annotations

from pathlib import Path

from backend.core.spec import JobSpec
from backend.estimator.calibration import CalibrationStore, signature
from backend.estimator.host import host_needs
from backend.estimator.knobs import Attention, Knobs, resolve
from backend.estimator.memory import StepMemory
from backend.estimator.overhead import CUDA_CONTEXT
from backend.estimator.quant import bytes_per_param_4bit
from backend.estimator.result import DataStats, Estimate, GpuMemory, Suggestion, Term
from backend.estimator.sizing import Sized, size, verdict
from backend.estimator.stack import INSTALLED, Stack, version_drift
from backend.estimator.suggest import suggestions
from backend.models.shapes import ModelShapes, shapes_from_folder


def estimate(
    spec: JobSpec,
    model: ModelShapes | Path,
    gpu: GpuMemory | None = None,
    data: DataStats | None = None,
    *,
    stack: Stack = INSTALLED,
    attention: Attention | None = None,
    calibration: CalibrationStore | None = None,
    with_suggestions: bool = True,
) -> Estimate:
    """Estimate the GPU memory ``spec`` needs on ``gpu`` for ``model`` (shapes or a local folder)."""
    shapes = model if isinstance(model, ModelShapes) else shapes_from_folder(model)
    knobs = resolve(spec, shapes, gpu, attention)
    calib, context = (None, CUDA_CONTEXT)
    if calibration is not None and gpu is not None:
        calib, context = calibration.lookup(gpu.name, signature(shapes, knobs, stack), CUDA_CONTEXT)
    sized = size(shapes, knobs, gpu, data, stack, calib, context)
    pageable = sized.step.optimizer if sized.step.optimizer_pageable else 0
    calibrated = calib is not None and calib.exact
    ruling, reason = verdict(sized.total, pageable, gpu, calibrated)
    advice: tuple[Suggestion, ...] = ()
    if with_suggestions and ruling in ("tight", "wont_fit"):
        advice = suggestions(shapes, sized, gpu, data, stack, calib)
    notes = [f"Library versions differ from the checked ones: {d}." for d in version_drift()]
    if knobs.objective != "sft":
        notes.append(objective_note(knobs))
    if shapes.is_moe:
        notes.append("Mixture-of-experts layers are estimated as dense layers; expect an underestimate.")
    return Estimate(
        terms=terms(shapes, sized),
        peak_allocated_bytes=sized.step.peak,
        peak_reserved_bytes=sized.reserved,
        total_bytes=sized.total,
        peak_phase=sized.step.peak_phase,
        eval_peak_bytes=sized.step.phases["evaluation batch"],
        tokens_per_micro_batch=sized.step.tokens,
        verdict=ruling,
        verdict_reason=reason,
        gpu=gpu,
        host=host_needs(shapes, knobs, sized.step),
        suggestions=advice,
        calibration=calib,
        notes=tuple(notes),
    )


def terms(shapes: ModelShapes, sized: Sized) -> tuple[Term, ...]:
    """The stacked breakdown: resident terms, then the temporaries of the peak's moment, then overheads."""
    step, knobs = sized.step, sized.knobs
    phase = step.peak_phase
    out = list(_weight_terms(shapes, step, knobs))
    training = phase != "evaluation batch"
    out.append(Term("adapter", "LoRA adapter", step.trainable, _adapter_text(knobs), "training_state"))
    if training:
        out.append(
            Term("gradients", "Gradients", step.gradients, "One gradient per trainable weight.", "training_state")
        )
    out.append(
        Term(
            "optimizer",
            "Optimizer state",
            step.optimizer,
            _optimizer_text(knobs.optimizer),
            "training_state",
            pageable=step.optimizer_pageable,
        )
    )
    out += _moment_terms(step, knobs, phase)
    if step.workspaces:
        text = "Scratch memory cuBLAS keeps for matrix multiplies: one for the forward, one for the backward thread."
        out.append(Term("workspaces", "cuBLAS workspaces", step.workspaces, text, "overhead"))
    calibrated_extra = sized.reserved - step.peak - sized.reserve
    out.append(
        Term(
            "allocator",
            "Allocator reserve",
            sized.reserve + calibrated_extra,
            "PyTorch keeps freed blocks cached for reuse; fragmentation leaves some unusable."
            + (" Raised by measurements on this GPU." if calibrated_extra else ""),
            "overhead",
        )
    )
    out.append(
        Term(
            "cuda_context",
            "CUDA context",
            sized.context,
            "The driver's state and the loaded GPU kernels, outside PyTorch's view.",
            "overhead",
        )
    )
    return tuple(out)


def _weight_terms(shapes: ModelShapes, step: StepMemory, knobs: Knobs) -> list[Term]:
    if knobs.quant == "none":
        return [
            Term(
                "base_weights",
                "Base model weights",
                step.base_other,
                f"All {shapes.parameter_count / 1e9:.2f} B weights in {knobs.compute_dtype}, frozen.",
                "weights",
            )
        ]
    if knobs.quant == "int8":
        detail = "stored in 8 bits with a scale per row: about 1 byte per weight."
    else:
        per = bytes_per_param_4bit(knobs.double_quant)
        detail = f"stored in 4 bits ({knobs.quant.upper()}) with block scales: {per:.3f} bytes per weight."
    return [
        Term("base_weights", "Base model weights", step.base_quantized, f"Frozen linear layers, {detail}", "weights"),
        Term(
            "unquantized",
            "Embeddings, head and norms",
            step.base_other,
            "Layers bitsandbytes does not quantize, kept in the model's 16-bit (or upcast) format.",
            "weights",
        ),
    ]


def _moment_terms(step: StepMemory, knobs: Knobs, phase: str) -> list[Term]:
    """The activations and temporaries present at the peak's moment."""
    saved = step.saved_layers + step.saved_other
    how = (
        "Each layer's input, kept for recomputation (gradient checkpointing)."
        if knobs.checkpointing
        else "Every layer's intermediate results, kept for the backward pass."
    )
    if phase == "optimizer step":
        text = "Temporaries of the update."
        return [Term("optimizer_step", "Optimizer step", step.optimizer_step, text, "temporary")]
    if phase == "evaluation batch":
        text = "One held-out batch, forward only: one layer's working memory or the loss."
        return [Term("evaluation", "Evaluation batch", step.eval_working, text, "temporary")]
    if knobs.sequences_per_example > 1:
        how += " Each example is two sequences, its chosen and its rejected answer: twice an SFT micro-batch."
    terms = [Term("activations", "Saved activations", saved + step.head_saved, how, "activations")]
    if phase == "reference forward":
        text = (
            "The reference model's forward pass, without gradients: the same base with the adapter switched off "
            "(no second copy of the model), run while the training pass's activations are held."
        )
        terms.append(Term("reference", "Reference forward", step.reference_forward, text, "temporary"))
    elif phase == "end of the forward pass":
        terms.append(Term("loss", "Loss computation", step.head_forward, _loss_text(knobs), "temporary"))
    elif phase == "loss backward":
        terms.append(Term("loss", "Loss backward", step.head_backward, _loss_text(knobs), "temporary"))
    else:
        terms[0] = Term("activations", "Saved activations", saved, how, "activations")
        recomputed = "its activations recomputed from the saved input, " if step.recompute else ""
        dequantized = ", and one weight dequantized from 4/8 bits for its matmul" if step.dequant else ""
        text = f"The layer being back-propagated: {recomputed}the gradients inside it{dequantized}."
        backward = step.recompute + step.layer_backward
        terms.append(Term("backward", "Backward of one layer", backward, text, "temporary"))
    return terms


def objective_note(knobs: Knobs) -> str:
    """Why a preference job needs more memory than SFT at the same settings, in words."""
    name = knobs.objective.upper() if knobs.objective != "simpo" else "SimPO"
    if knobs.objective == "kto":
        return (
            "KTO: each example is one answer, as in SFT, plus forward passes without gradients for its reference "
            "point and the reference model (the adapter switched off, no second copy of the model)."
        )
    text = f"{name}: each example is a chosen and a rejected answer, so activations are about twice SFT's"
    if knobs.reference_forward:
        return text + (
            ", plus a forward pass of the reference model without gradients (the base with the adapter switched "
            "off, no second copy of the model)."
        )
    return text + f"; {name} needs no reference model."


def _loss_text(knobs: Knobs) -> str:
    return "Log-probabilities over the vocabulary, a tile at a time: the full logits are never built."


def _adapter_text(knobs: Knobs) -> str:
    extra = f" plus full copies of {', '.join(knobs.modules_to_save)}" if knobs.modules_to_save else ""
    return f"Rank-{knobs.lora_r} LoRA weights{extra}, the only weights that train."


def _optimizer_text(optimizer: str) -> str:
    return {
        "adamw_torch": "AdamW's two moving averages per trainable weight.",
        "adamw_8bit": "AdamW's two moving averages, stored in 8 bits.",
        "paged_adamw_8bit": "AdamW's averages in 8 bits, in paged memory that can move to RAM.",
        "paged_adamw_32bit": "AdamW's averages in 32 bits, in paged memory that can move to RAM.",
        "adafactor": "Adafactor's factored averages: a row and a column per matrix.",
        "sgd": "Plain SGD keeps no state.",
    }.get(optimizer, "Optimizer state.")
