"""One configuration's size (step, allocator reserve, context) and its verdict against a GPU."""

from __future__ import annotations

from dataclasses import dataclass

from backend.estimator.knobs import Knobs, sequence_length
from backend.estimator.memory import StepMemory, step_memory
from backend.estimator.overhead import CUDA_CONTEXT, allocator_reserve
from backend.estimator.result import Calibration, DataStats, GpuMemory, Verdict
from backend.estimator.stack import Stack
from backend.models.shapes import ModelShapes

TIGHT_MARGIN = 0.10
"""Without a measurement on this GPU, an estimate within 10% of the free memory is "tight"."""
TIGHT_MARGIN_CALIBRATED = 0.05


@dataclass(frozen=True)
class Sized:
    """One configuration's memory: the step, the allocator's reserve and the context."""

    knobs: Knobs
    step: StepMemory
    reserve: int
    context: int
    factor: float

    @property
    def reserved(self) -> int:
        return int((self.step.peak + self.reserve) * self.factor)

    @property
    def total(self) -> int:
        return self.reserved + self.context


def size(
    shapes: ModelShapes,
    knobs: Knobs,
    gpu: GpuMemory | None,
    data: DataStats | None,
    stack: Stack,
    calibration: Calibration | None = None,
    context: int = CUDA_CONTEXT,
) -> Sized:
    step = step_memory(shapes, knobs, stack, gpu, sequence_length(knobs, data))
    reserve = allocator_reserve(shapes, knobs, stack, step)
    factor = calibration.factor if calibration else 1.0
    return Sized(knobs=knobs, step=step, reserve=reserve, context=context, factor=factor)


def verdict(total: int, pageable: int, gpu: GpuMemory | None, calibrated: bool) -> tuple[Verdict, str]:
    """Compare with free memory (a desktop session already uses some), or the total when NVML gave none."""
    if gpu is None:
        return "unknown", "No GPU selected: the estimate cannot be compared with one."
    available = gpu.free_bytes if gpu.free_bytes is not None else gpu.total_bytes
    where = "free" if gpu.free_bytes is not None else "in total"
    margin = TIGHT_MARGIN_CALIBRATED if calibrated else TIGHT_MARGIN
    need, have = _gib(total), _gib(available)
    if total > available:
        if total - pageable <= available:
            return "tight", f"Needs {need} of {have} {where}; the paged optimizer state will spill to RAM (slower)."
        if gpu.free_bytes is not None and total <= gpu.total_bytes:
            return "wont_fit", f"Needs {need}, but only {have} is free: other programs use the rest of the GPU."
        return "wont_fit", f"Needs {need}, more than the {have} {where} on {gpu.name}."
    if total > available * (1 - margin):
        return "tight", f"Needs {need} of {have} {where}: within the estimate's margin of error."
    return "fits", f"Needs {need} of {have} {where}."


def _gib(n: int) -> str:
    return f"{n / 1024**3:.1f} GiB"
