"""RAM of a merge or an export: the streaming merge, and the logits checks and the precision they run in.

Each check holds one whole model in RAM at a time (the reference, then the candidate), so its
peak grows with the model while the merge and the GGUF writer stream one tensor at a time. In
float32 the comparison is exact up to summation order; where that does not fit in
``USABLE_SHARE`` of the RAM available when the plan is made, bfloat16 takes less and the
limits are widened by ``COMPUTE_NOISE`` (both sides then round their activations); where not
even that fits, the logits are not compared and the plan says so. A worker killed by the
out-of-memory killer after minutes of writing is worse than a file checked for structure only.

The bytes per parameter of each kind of check are measured by ``bench/export_ram.py``
(``bench/results/export_ram.md``): a float32 load from 16-bit safetensors also keeps the mapped
file's pages resident; transformers' GGUF loader holds the converted tensors and the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CHECK_DTYPES = ("float32", "bfloat16")
BYTES_PER_PARAMETER = {
    "model": {"float32": 6.1, "bfloat16": 2.3},
    "gguf": {"float32": 6.2, "bfloat16": 4.5},
}
"""Peak RAM per parameter: ``model`` loads a saved model (or the base with PEFT's adapter) and runs the
check prompts; ``gguf`` reads a GGUF back through transformers. Measured 6.02/2.22 and 6.06/4.39."""
CheckKind = Literal["model", "gguf"]
MERGE_CHECK = "The merge's logits check"
SOURCE_CHECK = "The comparison with the source model's logits"
READBACK_CHECK = "Reading the GGUF back through transformers"
LORA_CHECK = "Running the adapter in llama.cpp against PEFT's base + adapter"
COMPUTE_NOISE = {"float32": 0.0, "bfloat16": 0.10}
"""Added to a limit (relative to the largest logit) when the comparison is computed in that dtype: bfloat16
activations round on both sides, 0.8-5.5% on the six tiny test architectures (tests/test_check_ram.py) and up
to 5.8% on SmolLM2-135M with a trained adapter (docs/export.md), where float32 gave 0.16-0.81%. Such a check
still catches a wrong layout or a lost adapter whose effect is larger; the check's line says both."""
RUNTIME_BYTES = 1024**3
"""Python, torch and transformers themselves, before any weight is loaded."""
USABLE_SHARE = 0.8
"""Of the RAM available when the plan is made: the rest is left to the desktop and the page cache."""


@dataclass(frozen=True)
class CheckRam:
    """The precision a logits check runs in (None: not run) and the RAM it takes."""

    dtype: str | None
    ram_bytes: int
    """Peak RAM of the check in ``dtype``; when it does not run, of the bfloat16 check it would have needed."""
    available_bytes: int

    def note(self, what: str) -> str | None:
        """A warning for the plan when the check is not the full float32 one; None when it is."""
        need, have = self.ram_bytes / 2**30, self.available_bytes / 2**30
        if self.dtype is None:
            return (
                f"{what} was skipped: it needs about {need:.1f} GiB of RAM even in bfloat16 and {have:.1f} GiB is "
                "available. Close other programs, or run this on a machine with more RAM, to have it checked."
            )
        if self.dtype != "float32":
            return (
                f"{what} runs in bfloat16 (about {need:.1f} GiB of RAM; float32 would not fit in the "
                f"{have:.1f} GiB available), so its limits are {COMPUTE_NOISE[self.dtype]:.0%} of the largest "
                "logit wider."
            )
        return None


WORKING_COPIES = 4
"""Float32 copies of a tensor alive while it is merged: base, delta, sum, DoRA norm/rescale."""


def streaming_merge_ram_bytes(
    output_bytes: int, largest_tensor: int, output_item: int, adapter_bytes: int, shard_bytes: int
) -> int:
    """Peak RAM of the streaming merge: one output shard, the largest tensor's float32 working copies and
    its output, the adapter (``adapter_bytes``: as loaded), and the runtime."""
    largest = largest_tensor * (4 * WORKING_COPIES + output_item)
    return min(shard_bytes, output_bytes) + largest + adapter_bytes + RUNTIME_BYTES


def check_ram_bytes(parameter_count: int, kind: CheckKind, dtype: str, extra_bytes: int = 0) -> int:
    """Peak RAM of a ``kind`` check of a model of ``parameter_count`` parameters computed in ``dtype``."""
    return RUNTIME_BYTES + int(BYTES_PER_PARAMETER[kind][dtype] * parameter_count) + extra_bytes


def plan_check(
    parameter_count: int, kind: CheckKind = "model", extra_bytes: int = 0, available: int | None = None
) -> CheckRam:
    """float32 where it fits in the usable RAM, else bfloat16 where that fits, else no logits check."""
    if available is None:
        import psutil

        available = psutil.virtual_memory().available
    need = 0
    for dtype in CHECK_DTYPES:
        need = check_ram_bytes(parameter_count, kind, dtype, extra_bytes)
        if need <= available * USABLE_SHARE:
            return CheckRam(dtype, need, available)
    return CheckRam(None, need, available)


def gguf_checks(parameter_count: int, available: int | None = None) -> tuple[CheckRam, CheckRam, list[str]]:
    """A GGUF export's two logits checks (against the source model; transformers reading the file back) and
    what to tell the user about them. Without the source's logits there is nothing to read the file back for."""
    source = plan_check(parameter_count, "model", available=available)
    readback = plan_check(parameter_count, "gguf", available=available)
    notes = [source.note(SOURCE_CHECK)]
    if source.dtype is not None:
        notes.append(readback.note(READBACK_CHECK))
    return source, readback, [note for note in notes if note]


def lora_check(parameter_count: int, adapter_bytes: int, available: int | None = None) -> CheckRam:
    """The GGUF LoRA export's check: PEFT's base + adapter as the reference for llama.cpp's run."""
    return plan_check(parameter_count, "model", extra_bytes=2 * adapter_bytes, available=available)


def coarser(*dtypes: str) -> str:
    """The dtype whose limits a comparison between sides computed in ``dtypes`` must use."""
    return max(dtypes, key=COMPUTE_NOISE.__getitem__)
