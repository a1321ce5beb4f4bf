"""What the worker runs for each kind of job: train, measure, evaluate, merge and export.

Each kind has its own module; this one picks it by the spec's ``kind`` and says how the
job announces itself (the ``started`` event). Only training keeps checkpoints: a resumed
job of any other kind runs again from the start. The modules are imported only here,
inside the functions, so a broken ML install still becomes a typed error event.
"""

from __future__ import annotations

import os
import platform

from backend.core.events import Artifact, DeviceInfo, EventSink, Started, Warn
from backend.core.layout import JobLayout
from backend.core.result import JobResult
from backend.core.spec import JobSpec
from backend.core.stop import StopRequest
from backend.core.task_specs import AnySpec, EvaluateSpec, ExportSpec, MergeSpec
from backend.training.checkpoints import checkpoint_step, latest_checkpoint


def started_event(spec: AnySpec, layout: JobLayout, resume: bool) -> Started:
    """The job's first event: its kind, libraries and the device its work runs on."""
    if isinstance(spec, JobSpec):
        from backend.models.runtime import Runtime

        runtime = Runtime.detect(spec)
        checkpoint = latest_checkpoint(layout.checkpoints) if resume and spec.kind == "train" else None
        return Started(
            job_kind=spec.kind,
            pid=os.getpid(),
            resumed_from_step=checkpoint_step(checkpoint) if checkpoint else None,
            versions=runtime.versions,
            device=runtime.device_info(),
        )
    from backend.models.runtime import library_versions

    # Merge and export stream tensors on the CPU; an evaluation generates on the GPU when there is one.
    device = _gpu() if isinstance(spec, EvaluateSpec) else None
    return Started(job_kind=spec.kind, pid=os.getpid(), versions=library_versions(), device=device or _cpu())


def run_kind(spec: AnySpec, layout: JobLayout, sink: EventSink, stop: StopRequest, resume: bool) -> JobResult:
    """Do the job; raises Cancelled when it stopped on request before it had anything to keep."""
    if resume and not (isinstance(spec, JobSpec) and spec.kind == "train"):
        sink.log(f"a {spec.kind} job keeps no checkpoints: it runs again from the start")
    if isinstance(spec, JobSpec):
        from backend.models.runtime import Runtime

        runtime = Runtime.detect(spec)
        if spec.kind == "measure":
            from backend.training.measure import run_measure

            return run_measure(spec, layout, sink, stop, runtime)
        if spec.training.objective != "sft":
            from backend.training.preference import run_preference

            return register(run_preference(spec, layout, sink, stop, resume, runtime), spec, layout, sink)
        from backend.training.sft import run_sft

        return register(run_sft(spec, layout, sink, stop, resume, runtime), spec, layout, sink)
    if isinstance(spec, MergeSpec):
        from backend.export.job import run_merge

        return run_merge(spec, layout, sink, stop)
    if isinstance(spec, ExportSpec):
        from backend.export.job import run_export

        return run_export(spec, layout, sink, stop)
    from backend.evaluation.job import run_evaluation

    outcome = run_evaluation(spec, layout, sink, stop)
    return JobResult(status="succeeded", metrics=outcome.metrics, output_path=outcome.report_path)


def _gpu() -> DeviceInfo | None:
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return DeviceInfo(kind="cuda", name=props.name, memory_total_bytes=int(props.total_memory))


def _cpu() -> DeviceInfo:
    return DeviceInfo(kind="cpu", name=platform.processor() or platform.machine())


def register(result: JobResult, spec: JobSpec, layout: JobLayout, sink: EventSink) -> JobResult:
    """Register a trained adapter as the next version of the adapter named after the job.

    A registry that cannot take it (a full disk, a broken folder) does not fail the job: the
    adapter is in the job folder, and the warning says how to register it later.
    """
    if result.status != "succeeded" or result.adapter_path is None:
        return result
    from backend.registry.errors import RegistryError
    from backend.registry.registry import Registry
    from backend.registry.version import slug

    name = slug(spec.name) or "adapter"
    lineage = {"continued_from": spec.continue_from} if spec.continue_from else {}
    try:
        version = Registry().add(result.adapter_path, name, job=str(layout.root), lineage=lineage)
    except (OSError, RegistryError) as exc:
        sink.emit(
            Warn(
                code="not_registered",
                message=f"the adapter was not added to the registry: {exc}. Add it later with: "
                f"lora-studio adapters add {result.adapter_path} --name {name}",
            )
        )
        return result
    sink.emit(Artifact(kind="version", path=str(version.folder), step=result.step))
    sink.log(f"registered as {version.label} (staging)")
    return result
