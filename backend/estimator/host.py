"""RAM and disk a job needs besides the GPU: loading, checkpoints, merging and exporting."""

from __future__ import annotations

from backend.estimator.knobs import Knobs
from backend.estimator.memory import StepMemory
from backend.estimator.result import HostNeeds
from backend.export.check_ram import check_ram_bytes, streaming_merge_ram_bytes
from backend.export.safetensors_io import DEFAULT_SHARD_BYTES
from backend.models.shapes import ModelShapes

RUNTIME_RAM = 3 * 1024**3
"""Resident memory of a worker with torch, CUDA libraries, transformers and the tokenized data loaded."""
CHECKPOINT_EXTRA = 1024**2
"""Scheduler, RNG and trainer state files written with each checkpoint."""


def host_needs(shapes: ModelShapes, knobs: Knobs, step: StepMemory) -> HostNeeds:
    """Loading reads safetensors through mmap, so RAM holds about the largest tensor being placed
    at a time; the merge job streams the base one tensor at a time, but its logits check holds a
    whole model, in 16 bits computed layer by layer at least (float32 where RAM allows,
    ``backend/export/check_ram``); a checkpoint holds the adapter and the optimizer state; the
    trainer writes the newest before deleting the oldest, so one more than ``keep_checkpoints``
    exists briefly."""
    largest_tensor = shapes.largest_tensor_bytes
    base_16bit = 2 * shapes.parameter_count
    adapter = 2 * step.trainable  # as the merge loads it, with a copy
    largest = shapes.largest_tensor_numel
    merge = streaming_merge_ram_bytes(base_16bit, largest, 2, adapter, DEFAULT_SHARD_BYTES)
    per_checkpoint = step.trainable + step.optimizer + CHECKPOINT_EXTRA
    return HostNeeds(
        ram_load_bytes=RUNTIME_RAM + 2 * largest_tensor,
        ram_merge_bytes=max(merge, check_ram_bytes(shapes.parameter_count, "model", "layerwise", adapter, largest)),
        disk_checkpoints_bytes=(knobs.keep_checkpoints + 1) * per_checkpoint,
        disk_merge_bytes=base_16bit,
        disk_export_bytes=base_16bit,
    )
