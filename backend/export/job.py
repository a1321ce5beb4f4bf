"""Merge and export as queued jobs: the functions the CLI calls, reporting through job events.

Progress is reported per tensor (or per check) within named stages, and a stop request is
honoured between two of them. Every output is staged and renamed into place only when
complete, so a stopped or failed job leaves nothing half-written, and running it again
starts from the beginning: there are no checkpoints to resume from.
"""

from __future__ import annotations

import time
from pathlib import Path

from backend.core.events import Artifact, EventSink, Progress, Warn
from backend.core.layout import JobLayout
from backend.core.progress import Stage, time_left
from backend.core.result import JobResult
from backend.core.stop import StopRequest
from backend.core.task_specs import ExportSpec, MergeSpec
from backend.export.adapter import ADAPTER_CONFIG
from backend.export.logits import LogitCheck

MERGED_DIR = "merged"
"""Inside a job folder: the merged model of a merge job (or of an export from an adapter)."""
EXPORT_DIR = "export"
"""Inside a job folder: what an export job writes when its spec names no output_dir."""


class StageProgress:
    """The export progress callback as ``progress`` events; raises Cancelled once a stop is asked for."""

    def __init__(self, sink: EventSink, stop: StopRequest) -> None:
        self._sink = sink
        self._stop = stop
        self._began = time.monotonic()
        self._stage: Stage | None = None
        self._stage_began = self._began

    def __call__(self, stage: Stage, done: int, total: int | None) -> None:
        self._stop.raise_if_set()
        now = time.monotonic()
        if stage != self._stage:
            self._stage, self._stage_began = stage, now
            self._sink.log(f"{stage}...")
        total = total or done
        self._sink.emit(
            Progress(
                step=done,
                total_steps=total,
                elapsed_s=now - self._began,
                eta_s=time_left(total - done, done, now - self._stage_began),
                stage=stage,
            )
        )


def run_merge(spec: MergeSpec, layout: JobLayout, sink: EventSink, stop: StopRequest) -> JobResult:
    """Merge the adapter into its base at ``output_dir`` (or the job folder's merged/), verified unless told not to."""
    out = Path(spec.output_dir) if spec.output_dir else layout.root / MERGED_DIR
    sink.log(f"merging {spec.adapter} into {spec.base_model or 'the base it was trained on'}")
    metrics = _merge(spec.adapter, out, spec.base_model, spec.dtype, spec.verify, sink, StageProgress(sink, stop))
    return JobResult(status="succeeded", metrics=metrics, output_path=out.absolute())


def run_export(spec: ExportSpec, layout: JobLayout, sink: EventSink, stop: StopRequest) -> JobResult:
    """A GGUF package (merging an adapter source first), a GGUF LoRA adapter or a vLLM-ready adapter, under
    ``output_dir`` or export/."""
    root = Path(spec.output_dir) if spec.output_dir else layout.root / EXPORT_DIR
    source = Path(spec.source)
    progress = StageProgress(sink, stop)
    if spec.target == "gguf_lora":
        return _export_gguf_lora(spec, root, sink, progress)
    if spec.target == "adapter":
        from backend.export.adapter_export import export_adapter

        exported = export_adapter(source, root / spec.name, progress=progress)
        _warn(sink, "export", exported.warnings)
        sink.emit(Artifact(kind="export", path=str(exported.path)))
        return JobResult(status="succeeded", metrics={"rank": float(exported.rank)}, output_path=exported.path)

    from backend.export.gguf_export import export_gguf

    metrics: dict[str, float] = {}
    if (source / ADAPTER_CONFIG).is_file():
        source, metrics = _merged_source(spec, layout, sink, progress)
    result = export_gguf(
        source, root, spec.gguf_type, model_name=spec.name, publisher=spec.publisher, system=spec.system,
        verify=spec.verify, progress=progress,
    )  # fmt: skip
    for check in result.checks:
        sink.log(check.describe())
    _warn(sink, "export", result.warnings)
    if result.llama_cpp_sample is not None:
        sink.log(f"llama.cpp generated from the file: {result.llama_cpp_sample!r}")
    sink.emit(Artifact(kind="gguf", path=str(result.gguf)))
    sink.emit(Artifact(kind="modelfile", path=str(result.modelfile)))
    sink.emit(Artifact(kind="export", path=str(result.folder)))
    metrics |= _check_metrics("gguf", result.checks)
    metrics["gguf_bytes"] = float(result.gguf.stat().st_size)
    return JobResult(status="succeeded", metrics=metrics, output_path=result.folder)


def _merged_source(
    spec: ExportSpec, layout: JobLayout, sink: EventSink, progress: StageProgress
) -> tuple[Path, dict[str, float]]:
    """The merged model a GGUF export of an adapter reads: a finished merge of the same adapter, base, format
    and verification when one is complete (``merge_reuse``), else a fresh merge, at ``merged_dir`` or merged/."""
    from backend.export.merge import merge_key, plan_merge
    from backend.export.merge_reuse import find_merge

    plan = plan_merge(spec.source, spec.base_model, spec.merge_dtype)
    key = merge_key(plan, spec.verify)
    kept = Path(spec.merged_dir) if spec.merged_dir else None
    # A merged_dir asks for the merged model in that place: only a merge already there stands in for it.
    candidates = [kept] if kept else sorted(layout.root.parent.glob(f"*/{MERGED_DIR}"))
    found = find_merge(key, candidates, remembered=kept is None) if key is not None else None
    if found is not None:
        sink.log(f"using the finished merge at {found} (same adapter, base and {plan.dtype}): not merging again")
        sink.emit(Artifact(kind="model", path=str(found)))
        return found, {"merge_reused": 1.0}
    merged = kept or layout.root / MERGED_DIR
    sink.log(f"{spec.source} is an adapter: merging it into its base first, into {merged}")
    # The job owns merged/: an earlier attempt's copy is replaced, never trusted. A merged_dir is the user's.
    metrics = _merge(
        spec.source, merged, spec.base_model, spec.merge_dtype, spec.verify, sink, progress, overwrite=kept is None
    )
    return merged, metrics


def _export_gguf_lora(spec: ExportSpec, root: Path, sink: EventSink, progress: StageProgress) -> JobResult:
    from backend.export.gguf_lora_export import export_gguf_lora, where_the_base_comes_from

    result = export_gguf_lora(
        spec.source, root, spec.lora_type, base=spec.base_model, name=spec.name, system=spec.system,
        verify=spec.verify, progress=progress,
    )  # fmt: skip
    for check in result.checks:
        sink.log(check.describe())
    _warn(sink, "export", result.warnings)
    if result.llama_cpp_sample is not None:
        sink.log(f"llama.cpp generated from the base with the adapter: {result.llama_cpp_sample!r}")
    sink.log(f"The Modelfile's FROM is a placeholder. {where_the_base_comes_from(result.base_path)}")
    sink.emit(Artifact(kind="gguf", path=str(result.gguf)))
    sink.emit(Artifact(kind="modelfile", path=str(result.modelfile)))
    sink.emit(Artifact(kind="export", path=str(result.folder)))
    metrics = _check_metrics("gguf_lora", result.checks) | {"gguf_bytes": float(result.gguf.stat().st_size)}
    return JobResult(status="succeeded", metrics=metrics, output_path=result.folder)


def _merge(
    adapter: str | Path,
    out: Path,
    base: str | None,
    dtype: str,
    verify: bool,
    sink: EventSink,
    progress: StageProgress,
    *,
    overwrite: bool = False,
) -> dict[str, float]:
    from backend.export.merge import merge_adapter

    result = merge_adapter(adapter, out, base=base, dtype=dtype, verify=verify, overwrite=overwrite, progress=progress)
    plan = result.plan
    sink.log(f"merged into {plan.base_path} ({plan.parameter_count / 1e6:.1f}M parameters, {plan.dtype})")
    _warn(sink, "merge", plan.warnings)
    for check in result.checks:
        sink.log(check.describe())
    sink.emit(Artifact(kind="model", path=str(result.path)))
    return {"parameters": float(plan.parameter_count), "merged_bytes": float(plan.output_bytes)} | _check_metrics(
        "merge", result.checks
    )


def _check_metrics(prefix: str, checks: list[LogitCheck]) -> dict[str, float]:
    """The first (transformers) check's numbers; the README and records keep every check."""
    if not checks:
        return {}
    check = checks[0]
    metrics = {f"{prefix}_relative_diff": check.relative_diff, f"{prefix}_top1_agreement": check.top1_agreement}
    if check.adapter_effect is not None:
        metrics["adapter_effect"] = check.adapter_effect
    return metrics


def _warn(sink: EventSink, code: str, warnings: list[str]) -> None:
    for warning in warnings:
        sink.emit(Warn(code=code, message=warning))
