"""What to change after a job ran out of GPU memory: the estimator's first suggestion.

The queue calls this when a job fails with ``out_of_memory``; the sentence it returns
is added to the job's message. The GPU is the one the job really ran on, as its
``started`` event recorded it, so the advice does not depend on where it is read.
"""

from __future__ import annotations

from backend.core.events import Error, Started, read_events
from backend.core.layout import JobLayout
from backend.core.spec import JobSpec, SpecError
from backend.core.task_specs import load_spec
from backend.estimator.estimate import estimate
from backend.estimator.result import GpuMemory
from backend.models.errors import ModelError
from backend.models.store import get_model

_GIB = 2**30


def advise_out_of_memory(layout: JobLayout, error: Error) -> str | None:
    """One sentence naming the smallest change the estimator expects to fit, or None when it has none."""
    started = next((e for e in read_events(layout.events) if isinstance(e, Started)), None)
    if started is None or started.device.kind != "cuda" or not started.device.memory_total_bytes:
        return None
    try:
        spec = load_spec(layout.spec)
        if not isinstance(spec, JobSpec):  # evaluate, merge, export: the estimator knows only training's memory
            return None
        model = get_model(spec.base_model).path
    except (SpecError, ModelError):
        return None
    gpu = GpuMemory(name=started.device.name, total_bytes=started.device.memory_total_bytes)
    result = estimate(spec, model, gpu)
    if not result.suggestions:
        return None
    total = gpu.total_bytes / _GIB
    fitting = [s for s in result.suggestions if s.verdict == "fits"]
    if fitting:
        best = fitting[0]
        return f"{best.title}: {best.detail} (estimated peak {best.peak_bytes / _GIB:.1f} GiB of {total:.1f})"
    closest = min(result.suggestions, key=lambda s: s.peak_bytes)
    return (
        f"No single change fits this GPU; the closest is: {closest.title} (estimated peak "
        f"{closest.peak_bytes / _GIB:.1f} GiB of {total:.1f}). Use a smaller base model or a GPU with more memory."
    )
