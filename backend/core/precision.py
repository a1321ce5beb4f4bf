"""How a spec's "auto" compute dtype and mixed precision resolve on a machine: one rule, torch-free.

The trainer (``backend.models.runtime.Runtime.detect``), the side-by-side comparison and the
estimator all call it, so an estimate assumes the dtype the run will really use. The caller
gathers the facts: the device kind and whether it has native bfloat16 (on a GPU torch's
``cuda.is_bf16_supported()``; on a CPU the AVX512-BF16 flag, which is all that torch's
``cpu._is_avx512_bf16_supported()`` reads from cpuinfo).
"""

from __future__ import annotations

from typing import Literal

Device = Literal["cpu", "cuda"]


def auto_dtype(device: Device, bf16: bool) -> str:
    """The dtype "auto" loads a base in: bfloat16 where it is native, else float16 on a GPU and float32 on a CPU.

    On a CPU without native bf16 matmuls (AVX512-BF16, AMX) bfloat16 is emulated and slower than float32;
    with them it is about a quarter faster (bench/results/train_step.md).
    """
    if bf16:
        return "bfloat16"
    return "float16" if device == "cuda" else "float32"


def resolve_precision(device: Device, bf16: bool, compute_dtype: str, precision: str) -> tuple[str, str]:
    """``(compute dtype, mixed precision)`` for the spec's choices: a torch dtype name, and bf16, fp16 or no."""
    compute = auto_dtype(device, bf16) if compute_dtype == "auto" else compute_dtype
    if precision == "auto":
        precision = {"bfloat16": "bf16", "float16": "fp16"}.get(compute, "no")
    elif precision == "fp32":
        precision = "no"
    return compute, precision
