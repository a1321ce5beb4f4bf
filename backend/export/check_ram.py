"""RAM of a merge or an export: the streaming merge, and the logits checks and the precision they run in.

Each check holds one whole model in RAM at a time (the reference, then the candidate), so its
peak grows with the model while the merge and the GGUF writer stream one tensor at a time. The
first precision that fits in ``USABLE_SHARE`` of the RAM available when the plan is made is used:

- ``float32``: the model loaded in float32; exact up to summation order.
- ``layerwise``: the model kept in 16 bits (its checkpoint's type; a GGUF dequantized into it)
  and each layer computed in float32 (``logits.float32_compute``). A 16-bit value is exact in
  float32, so the logits are the float32 model's, bit for bit, at well under half the RAM. A
  float32 checkpoint kept in 16 bits is rounded: its limits widen by ``COMPUTE_NOISE``.

Where none fits, the logits are not compared and the plan says so: a worker killed by the
out-of-memory killer after minutes of writing is worse than a file checked for structure only.

The bytes per parameter of each kind of check are measured by ``bench/export_ram.py``
(``bench/results/export_ram.md``): a float32 load from 16-bit safetensors also keeps the mapped
file's pages resident; transformers' GGUF loader holds the converted tensors and the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BYTES_PER_PARAMETER = {
    "model": {"float32": 6.1, "layerwise": 2.5},
    "gguf": {"float32": 6.2, "layerwise": 4.5},
}
"""Peak RAM per parameter, in order of preference: ``model`` loads a saved model (or the base with PEFT's
adapter) and runs the check prompts (``layerwise``: the 16-bit model plus one layer in float32; the largest
tensor in float32 comes on top, ``LAYERWISE_PIECE``); ``gguf`` reads a GGUF back through transformers."""
LAYERWISE_PIECE = 4
"""Bytes per element of the largest tensor added to a ``layerwise`` check: the embeddings or head, upcast alone."""
CheckKind = Literal["model", "gguf"]
MERGE_CHECK = "The merge's logits check"
SOURCE_CHECK = "The comparison with the source model's logits"
READBACK_CHECK = "Reading the GGUF back through transformers"
LORA_CHECK = "Running the adapter in llama.cpp against PEFT's base + adapter"
COMPUTE_NOISE = {"float32": 0.0, "layerwise": 0.0, "bfloat16": 0.10}
"""Added to a limit (relative to the largest logit) where one side's weights were rounded to bfloat16 for the
check (a float32 checkpoint held layer by layer): a float32 merge of the tiny models differs by up to 1.8% then
(tests/test_check_ram.py), and bfloat16 arithmetic throughout by 0.8-6.0% (measured before layer-by-layer
checks replaced it). Such a check still catches a wrong layout or a lost adapter whose effect is larger."""
RUNTIME_BYTES = 1024**3
"""Python, torch and transformers themselves, before any weight is loaded."""
USABLE_SHARE = 0.8
"""Of the RAM available when the plan is made: the rest is left to the desktop and the page cache."""


@dataclass(frozen=True)
class CheckRam:
    """The precision a logits check runs in (None: not run) and the RAM it takes."""

    precision: str | None
    ram_bytes: int
    """Peak RAM of the check in ``precision``; when it does not run, of the least the check would have needed."""
    available_bytes: int

    def note(self, what: str) -> str | None:
        """A warning for the plan when the check will not run; None when it will (either way, as exact)."""
        return None if self.precision is not None else self.skipped(what)

    def skipped(self, what: str) -> str:
        """The warning that ``what`` will not run for want of RAM."""
        need, have = self.ram_bytes / 2**30, self.available_bytes / 2**30
        return (
            f"{what} was skipped: it needs about {need:.1f} GiB of RAM at least and {have:.1f} GiB is "
            "available. Close other programs, or run this on a machine with more RAM, to have it checked."
        )


WORKING_COPIES = 4
"""Float32 copies of a tensor alive while it is merged: base, delta, sum, DoRA norm/rescale."""


def streaming_merge_ram_bytes(
    output_bytes: int, largest_tensor: int, output_item: int, adapter_bytes: int, shard_bytes: int
) -> int:
    """Peak RAM of the streaming merge: one output shard, the largest tensor's float32 working copies and
    its output, the adapter (``adapter_bytes``: as loaded), and the runtime."""
    largest = largest_tensor * (4 * WORKING_COPIES + output_item)
    return min(shard_bytes, output_bytes) + largest + adapter_bytes + RUNTIME_BYTES


def check_ram_bytes(
    parameter_count: int, kind: CheckKind, precision: str, extra_bytes: int = 0, largest_tensor: int = 0
) -> int:
    """Peak RAM of a ``kind`` check of a model of ``parameter_count`` parameters (the largest tensor of
    ``largest_tensor`` elements) in ``precision``."""
    piece = LAYERWISE_PIECE * largest_tensor if precision == "layerwise" else 0
    return RUNTIME_BYTES + int(BYTES_PER_PARAMETER[kind][precision] * parameter_count) + piece + extra_bytes


def plan_check(
    parameter_count: int,
    kind: CheckKind = "model",
    extra_bytes: int = 0,
    available: int | None = None,
    largest_tensor: int = 0,
) -> CheckRam:
    """The first of the kind's precisions that fits in the usable RAM, else no logits check."""
    if available is None:
        import psutil

        available = psutil.virtual_memory().available
    need = 0
    for precision in BYTES_PER_PARAMETER[kind]:
        need = check_ram_bytes(parameter_count, kind, precision, extra_bytes, largest_tensor)
        if need <= available * USABLE_SHARE:
            return CheckRam(precision, need, available)
    return CheckRam(None, need, available)


def gguf_checks(
    parameter_count: int, largest_tensor: int, available: int | None = None
) -> tuple[CheckRam, CheckRam, list[str]]:
    """A GGUF export's two logits checks (against the source model; transformers reading the file back) and
    what to tell the user about them. Without the source's logits there is nothing to read the file back for."""
    source = plan_check(parameter_count, "model", available=available, largest_tensor=largest_tensor)
    readback = plan_check(parameter_count, "gguf", available=available, largest_tensor=largest_tensor)
    notes = [source.note(SOURCE_CHECK)]
    if source.precision is not None:
        notes.append(readback.note(READBACK_CHECK))
    return source, readback, [note for note in notes if note]


def lora_check(parameter_count: int, largest_tensor: int, adapter_bytes: int, available: int | None = None) -> CheckRam:
    """The GGUF LoRA export's check: PEFT's base + adapter as the reference for llama.cpp's run."""
    return plan_check(parameter_count, "model", 2 * adapter_bytes, available, largest_tensor)


def coarser(*precisions: str) -> str:
    """The precision whose limits a comparison between sides computed in ``precisions`` must use."""
    return max(precisions, key=COMPUTE_NOISE.__getitem__)
