"""Checks before a job is queued: each problem is a message a person can act on.

Nothing here raises for a bad job: a queue that accepts a job should be able to
run it, and one that refuses says why in the same words the GUI shows. No torch:
the model is looked up in the store, not loaded.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from backend.models.errors import ModelError
from backend.models.hf_folder import read_config
from backend.models.hub_import import is_hub_id
from backend.models.record import ModelRecord
from backend.models.store import DEFAULT_ALIAS, get_model
from backend.spec import JobSpec
from backend.telemetry import Nvml

_PER_SAVE_OVERHEAD = 16 << 20
"""Tokenizer files, trainer and RNG state written with every checkpoint and the adapter."""
_HEADROOM = 256 << 20
"""Room left for logs, events and the rest of the system."""


@dataclass(frozen=True)
class Check:
    level: Literal["error", "warning", "info"]
    topic: Literal["spec", "model", "data", "disk", "gpu"]
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"level": self.level, "topic": self.topic, "message": self.message}


def blocking(checks: list[Check]) -> bool:
    return any(check.level == "error" for check in checks)


def preflight(spec: JobSpec, jobs_dir: Path) -> list[Check]:
    """Every check for a valid spec: model, data, disk space, GPU."""
    record, checks = _model(spec)
    checks += _data(spec)
    checks += _disk(spec, record, jobs_dir)
    checks += _gpu()
    return checks


def launch_checks(spec: JobSpec, jobs_dir: Path) -> list[Check]:
    """What is worth checking again when a job that waited in line starts: the disk may have filled up."""
    record, _ = _model(spec)
    return _disk(spec, record, jobs_dir)


def free_bytes(path: Path) -> int:
    """Free space on the filesystem that holds ``path`` (or would, once created)."""
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def estimate_disk_bytes(spec: JobSpec, record: ModelRecord) -> int | None:
    """Bytes the job writes: kept checkpoints (adapter + Adam state) and the final adapter.

    A rough upper bound from the model's size: LoRA on every linear layer of a
    transformer adds about ``2 * r / hidden_size`` of its parameters.
    """
    if not record.parameter_count:
        return None
    try:
        hidden = int(read_config(record.path).get("hidden_size") or 0)
    except ModelError:
        hidden = 0
    share = 2 * spec.lora.r / hidden if hidden else 0.05
    weights = int(record.parameter_count * min(share, 1.0)) * 4  # float32
    checkpoint = 3 * weights + _PER_SAVE_OVERHEAD  # weights and Adam's two moments
    # The trainer writes a new checkpoint before it deletes the oldest one it keeps.
    return (spec.schedule.keep_checkpoints + 1) * checkpoint + weights + _PER_SAVE_OVERHEAD


def _model(spec: JobSpec) -> tuple[ModelRecord | None, list[Check]]:
    ref = spec.base_model
    try:
        record = get_model(ref)
    except ModelError as exc:
        if ref == DEFAULT_ALIAS or is_hub_id(ref):
            return None, [Check("warning", "model", f"{exc} The job imports it when it starts.")]
        return None, [Check("error", "model", str(exc))]
    if not record.path.is_dir():
        return None, [
            Check("error", "model", f"Model '{record.slug}' points to {record.path}, which no longer exists.")
        ]
    return record, []


def _data(spec: JobSpec) -> list[Check]:
    checks = []
    for setting, value in (("data.path", spec.data.path), ("data.eval_path", spec.data.eval_path)):
        if not value:
            continue
        path = Path(value)
        try:
            with path.open("rb") as handle:
                empty = not handle.read(4096).strip()
        except OSError as exc:
            checks.append(Check("error", "data", f"{setting}: cannot read {path}: {exc.strerror}."))
            continue
        if empty:
            checks.append(Check("error", "data", f"{setting}: {path} is empty."))
    return checks


def _disk(spec: JobSpec, record: ModelRecord | None, jobs_dir: Path) -> list[Check]:
    need = estimate_disk_bytes(spec, record) if record else None
    if need is None:
        return [Check("info", "disk", "The disk space the job needs could not be estimated before its model is known.")]
    target = Path(spec.output_dir) if spec.output_dir else jobs_dir
    free = min(free_bytes(jobs_dir), free_bytes(target))
    if free < need + _HEADROOM:
        return [
            Check(
                "error",
                "disk",
                f"Not enough disk space: the job needs about {_size(need)} for checkpoints and the adapter "
                f"(plus {_size(_HEADROOM)} to spare), and {_size(free)} is free where it writes ({jobs_dir}). "
                "Free some space, or keep fewer checkpoints (schedule.keep_checkpoints).",
            )
        ]
    return []


def _gpu() -> list[Check]:
    gpus = Nvml().gpus()
    if not gpus:
        return [
            Check(
                "info",
                "gpu",
                "No NVIDIA GPU found: the job trains on the CPU, which is slow but fine for small models. "
                "Jobs do not require a GPU.",
            )
        ]
    return [Check("info", "gpu", f"GPU found: {gpus[0].name} ({_size(gpus[0].memory_total_bytes)}).")]


def _size(count: int) -> str:
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.0f} MiB"
