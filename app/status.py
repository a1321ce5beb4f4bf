"""Status-bar texts built from backend facts that need no torch."""

from __future__ import annotations

from backend.core.telemetry import NVML

_GIB = 2**30


def gpu_status_text() -> str:
    gpus = NVML.gpus()
    if not gpus:
        return "No NVIDIA GPU found: jobs run on the CPU"
    parts = []
    for gpu in gpus:
        free = (gpu.memory_total_bytes - gpu.memory_used_bytes) / _GIB
        parts.append(f"{gpu.name}: {free:.1f} of {gpu.memory_total_bytes / _GIB:.1f} GiB free")
    return " · ".join(parts)
