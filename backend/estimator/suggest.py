"""Ranked changes that make a job fit, each with the estimate it leads to.

Changes that keep training the same come first (gradient checkpointing; a smaller
micro-batch with more accumulation, same effective batch), then changes to what is
trained on or how (a max length at the data's 99th percentile, an 8-bit or paged
optimizer, a 4-bit base). When no single change fits, their combination is offered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from backend.estimator.knobs import Knobs
from backend.estimator.result import Calibration, DataStats, GpuMemory, Suggestion, Verdict
from backend.estimator.sizing import Sized, size, verdict
from backend.estimator.stack import Stack
from backend.models.shapes import ModelShapes

_Change = tuple[str, str, dict[str, object], Knobs, bool]


def candidates(knobs: Knobs, data: DataStats | None) -> list[_Change]:
    """Every applicable change, in rank order: (title, detail, spec changes, new knobs, keeps effective batch)."""
    found: list[_Change] = []
    if not knobs.checkpointing:
        found.append(
            (
                "Turn on gradient checkpointing",
                "Recomputes each layer in the backward pass instead of keeping its activations; about 25% slower.",
                {"training.gradient_checkpointing": True},
                replace(knobs, checkpointing=True),
                True,
            )
        )
    if knobs.micro_batch > 1:
        found.append(_halved(knobs))
    if data is not None and data.p99_tokens and data.p99_tokens < knobs.max_len:
        p99 = max(16, data.p99_tokens)
        found.append(
            (
                f"Shorten max length to {p99} tokens",
                "99% of your examples fit in it; the longest 1% get cut.",
                {"training.max_seq_length": p99},
                replace(knobs, max_len=p99),
                True,
            )
        )
    if knobs.optimizer in ("adamw_torch", "paged_adamw_32bit"):
        found.append(
            (
                "Use the paged 8-bit AdamW optimizer",
                "Stores the optimizer state in 8 bits, in memory that can move to RAM when the GPU runs short.",
                {"training.optimizer": "paged_adamw_8bit"},
                replace(knobs, optimizer="paged_adamw_8bit"),
                True,
            )
        )
    if knobs.quant in ("none", "int8"):
        found.append(
            (
                "Load the base model in 4 bits (NF4)",
                "QLoRA: about a quarter of the 16-bit weight memory, with little quality loss.",
                {"quantization.mode": "nf4", "quantization.double_quant": True},
                replace(knobs, quant="nf4", double_quant=True),
                True,
            )
        )
    return found


def _halved(knobs: Knobs) -> _Change:
    micro, accum = knobs.micro_batch // 2, knobs.grad_accum * 2
    keeps = micro * accum == knobs.effective_batch
    return (
        f"Micro-batch {micro}, accumulation {accum}",
        f"Same effective batch of {micro * accum}, reached in more, smaller steps."
        if keeps
        else f"Effective batch becomes {micro * accum} (from {knobs.effective_batch}).",
        {"training.micro_batch_size": micro, "training.gradient_accumulation_steps": accum},
        replace(knobs, micro_batch=micro, grad_accum=accum),
        keeps,
    )


def suggestions(
    shapes: ModelShapes,
    current: Sized,
    gpu: GpuMemory | None,
    data: DataStats | None,
    stack: Stack,
    calibration: Calibration | None,
) -> tuple[Suggestion, ...]:
    """Changes that lower the peak, those that make the job fit first, each with its new estimate."""
    calibrated = calibration is not None and calibration.exact

    def judge(knobs: Knobs) -> tuple[Sized, Verdict]:
        sized = size(shapes, knobs, gpu, data, stack, calibration, current.context)
        pageable = sized.step.optimizer if sized.step.optimizer_pageable else 0
        return sized, verdict(sized.total, pageable, gpu, calibrated)[0]

    found: list[tuple[int, int, Suggestion]] = []
    changes = candidates(current.knobs, data)
    for rank, (title, detail, fields, knobs, keeps) in enumerate(changes):
        sized, ruling = judge(knobs)
        # Keep halving the micro-batch while it helps and the job does not fit yet.
        while ruling != "fits" and fields.get("training.micro_batch_size") and knobs.micro_batch > 1:
            title, detail, fields, knobs, keeps = _halved(knobs)
            sized, ruling = judge(knobs)
        if sized.total < current.total:
            found.append((ruling != "fits", rank, Suggestion(title, detail, fields, keeps, sized.total, ruling)))
    if found and all(s.verdict != "fits" for _, _, s in found):
        combined = _combined(current.knobs, data, judge)
        if combined is not None:
            found.append((False, -1, combined))
    return tuple(s for _, _, s in sorted(found, key=lambda item: (item[0], item[1])))


def _combined(
    knobs: Knobs, data: DataStats | None, judge: Callable[[Knobs], tuple[Sized, Verdict]]
) -> Suggestion | None:
    """Apply the changes in rank order until the job fits."""
    fields: dict[str, object] = {}
    titles: list[str] = []
    keeps = True
    while True:
        step = candidates(knobs, data)
        if not step:
            return None
        title, _, more, knobs, keep = step[0]
        fields.update(more)
        titles = [t for t in titles if not (t.startswith("micro-batch") and title.startswith("Micro-batch"))]
        titles.append(title.lower())
        keeps = keeps and keep
        sized, ruling = judge(knobs)
        if ruling == "fits":
            text = "Together: " + "; ".join(titles) + "."
            return Suggestion("Combine several changes", text, fields, keeps, sized.total, ruling)
