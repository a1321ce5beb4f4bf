"""NVML's GPUs as the estimator's input, for the window's GPU menu, the CLI and the benchmarks."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from backend.core.events import GpuSample
from backend.core.telemetry import NVML
from backend.estimator.result import GpuMemory


def gpu_memory(samples: Sequence[GpuSample]) -> list[GpuMemory]:
    """NVML's readings as the estimator's GPUs. Triton ships with Linux CUDA builds of torch only;
    bfloat16 needs compute capability 8.0 (Ampere) or newer."""
    gpus = []
    for sample in samples:
        capability = _capability(sample.compute_capability)
        gpus.append(
            GpuMemory(
                name=sample.name,
                total_bytes=sample.memory_total_bytes,
                free_bytes=max(0, sample.memory_total_bytes - sample.memory_used_bytes),
                supports_bf16=capability is None or capability >= (8, 0),
                triton=sys.platform.startswith("linux"),
                compute_capability=capability,
            )
        )
    return gpus


def _capability(text: str | None) -> tuple[int, int] | None:
    major, _, minor = (text or "").partition(".")
    return (int(major), int(minor)) if major.isdigit() and minor.isdigit() else None


def machine_gpus() -> list[GpuMemory]:
    """This machine's NVIDIA GPUs, in NVML's order; empty without a GPU or a driver."""
    return gpu_memory(NVML.gpus())
