"""Checks before a job is queued: each problem is a message a person can act on.

Nothing here raises for a bad job: a queue that accepts a job should be able to
run it, and one that refuses says why in the same words the GUI shows. No torch:
the model is looked up in the store, not loaded.
"""

from __future__ import annotations

from pathlib import Path

from backend.core.spec import JobSpec
from backend.core.task_specs import AnySpec, EvaluateSpec, MergeSpec
from backend.core.telemetry import Nvml
from backend.estimator.estimate import estimate
from backend.jobs.adapter_preflight import evaluate_checks, export_checks, merge_checks, output_disk_checks
from backend.jobs.checks import HEADROOM, Check, free_bytes, size_text
from backend.models.errors import ModelError
from backend.models.hf_folder import read_config
from backend.models.hub_import import is_hub_id
from backend.models.record import ModelRecord
from backend.models.store import DEFAULT_ALIAS, get_model

_PER_SAVE_OVERHEAD = 16 << 20
"""Tokenizer files, trainer and RNG state written with every checkpoint and the adapter."""


def blocking(checks: list[Check]) -> bool:
    return any(check.level == "error" for check in checks)


def preflight(spec: AnySpec, jobs_dir: Path) -> list[Check]:
    """Every check for a valid spec of any kind: its inputs, the disk space its outputs need, the GPU."""
    if isinstance(spec, MergeSpec):
        return merge_checks(spec, jobs_dir)
    if isinstance(spec, EvaluateSpec):
        return [*evaluate_checks(spec), *_gpu("runs")]
    if not isinstance(spec, JobSpec):
        return export_checks(spec, jobs_dir)
    record, checks = _model(spec)
    checks += _data(spec)
    if spec.kind == "measure":
        return checks + _measure_gpu()  # a measurement writes no checkpoint and no adapter
    checks += _disk(spec, record, jobs_dir)
    checks += _gpu()
    return checks


def launch_checks(spec: AnySpec, jobs_dir: Path) -> list[Check]:
    """What is worth checking again when a job that waited in line starts: the disk may have filled up."""
    if not isinstance(spec, JobSpec):
        return output_disk_checks(spec, jobs_dir)
    if spec.kind == "measure":
        return []
    record, _ = _model(spec)
    return _disk(spec, record, jobs_dir)


def estimate_disk_bytes(spec: JobSpec, record: ModelRecord) -> int | None:
    """Bytes the job writes: kept checkpoints (adapter + optimizer state) and the final adapter.

    The memory estimator's ``disk_checkpoints_bytes`` (one more checkpoint than kept, since the
    trainer writes the newest before deleting the oldest) plus the final adapter, which is no
    bigger than one checkpoint. Where the model's shapes cannot be read, a rough upper bound
    from its size: LoRA on every linear layer of a transformer adds about ``2 * r / hidden_size``
    of its parameters.
    """
    try:
        checkpoints = estimate(spec, record.path, with_suggestions=False).host.disk_checkpoints_bytes
    except (ModelError, ValueError, KeyError, OSError):
        checkpoints = 0
    if checkpoints > 0:
        return checkpoints + checkpoints // (spec.schedule.keep_checkpoints + 1)
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
    if free < need + HEADROOM:
        return [
            Check(
                "error",
                "disk",
                f"Not enough disk space: the job needs about {size_text(need)} for checkpoints and the adapter "
                f"(plus {size_text(HEADROOM)} to spare), and {size_text(free)} is free where it writes ({jobs_dir}). "
                "Free some space, or keep fewer checkpoints (schedule.keep_checkpoints).",
            )
        ]
    return []


def _gpu(verb: str = "trains") -> list[Check]:
    gpus = Nvml().gpus()
    if not gpus:
        return [
            Check(
                "info",
                "gpu",
                f"No NVIDIA GPU found: the job {verb} on the CPU, which is slow but fine for small models. "
                "Jobs do not require a GPU.",
            )
        ]
    return [Check("info", "gpu", f"GPU found: {gpus[0].name} ({size_text(gpus[0].memory_total_bytes)}).")]


def _measure_gpu() -> list[Check]:
    if Nvml().gpus():
        return _gpu()
    return [
        Check(
            "warning",
            "gpu",
            "No NVIDIA GPU found: the measurement runs on the CPU and reports the peak RAM only; calibrating the "
            "GPU memory estimate needs a CUDA GPU.",
        )
    ]
