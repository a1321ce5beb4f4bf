"""RAM and disk a job needs besides the GPU: loading, checkpoints, merging and exporting."""

from __future__ import annotations

from backend.estimator.knobs import Knobs
from backend.estimator.memory import StepMemory
from backend.estimator.result import HostNeeds
from backend.estimator.shapes import ModelShapes

RUNTIME_RAM = 3 * 1024**3
"""Resident memory of a worker with torch, CUDA libraries, transformers and the tokenized data loaded."""
CHECKPOINT_EXTRA = 1024**2
"""Scheduler, RNG and trainer state files written with each checkpoint."""


def host_needs(shapes: ModelShapes, knobs: Knobs, step: StepMemory) -> HostNeeds:
    """Loading reads safetensors through mmap, so RAM holds about the largest tensor being placed
    at a time; merging loads the base in 16-bit on the CPU and adds one fp32 delta (B @ A)
    per layer; a checkpoint holds the adapter and the optimizer state; the trainer writes the
    newest before deleting the oldest, so one more than ``keep_checkpoints`` exists briefly."""
    largest_tensor = shapes.largest_tensor_bytes
    base_16bit = 2 * shapes.parameter_count
    per_checkpoint = step.trainable + step.optimizer + CHECKPOINT_EXTRA
    return HostNeeds(
        ram_load_bytes=RUNTIME_RAM + 2 * largest_tensor,
        ram_merge_bytes=RUNTIME_RAM + base_16bit + 4 * shapes.largest_linear,
        disk_checkpoints_bytes=(knobs.keep_checkpoints + 1) * per_checkpoint,
        disk_merge_bytes=base_16bit,
        disk_export_bytes=base_16bit,
    )
