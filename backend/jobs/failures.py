"""Map an exception from a job to a typed error a person can act on.

The queue and the GUI show ``message`` and ``hint``; ``details`` keeps the raw
text for a bug report. Types: out_of_memory, data, config, dependency, internal.
"""

from __future__ import annotations

import traceback

from backend.core.events import Error
from backend.core.spec import SpecError
from backend.data.problems import DataError

_OOM_HINT = (
    "Make the job smaller: turn on gradient checkpointing, halve training.micro_batch_size and double "
    "gradient_accumulation_steps (same effective batch), lower training.max_seq_length, or use a 4-bit base."
)


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "failed to allocate" in text)


def classify(exc: BaseException) -> Error:
    details = "".join(traceback.format_exception(exc))
    if _is_out_of_memory(exc):
        where = "system RAM" if isinstance(exc, MemoryError) else "GPU memory"
        return Error(
            error_type="out_of_memory", message=f"The job ran out of {where}.", hint=_OOM_HINT, details=details
        )
    if isinstance(exc, SpecError):
        return Error(
            error_type="config",
            message=str(exc),
            hint="Fix the listed settings and queue the job again.",
            details=details,
        )
    if isinstance(exc, DataError):
        return Error(error_type="data", message=str(exc), hint="Fix the dataset file and try again.", details=details)
    if isinstance(exc, ImportError):
        missing = exc.name or str(exc)
        return Error(
            error_type="dependency",
            message=f"A library the job needs is missing or broken: {missing}.",
            hint="Reinstall LoRA Studio's dependencies (make install) and try again.",
            details=details,
        )
    kind, hint = getattr(exc, "error_type", None), getattr(exc, "hint", None)
    # A typed error of ours (ExportError, ...) says what to do; an internal one with its own hint (a failed
    # verification) keeps it rather than the generic bug-report line.
    if kind in ("config", "data", "dependency") or (kind == "internal" and hint):
        return Error(error_type=kind, message=str(exc), hint=hint, details=details)
    return Error(
        error_type="internal",
        message=f"LoRA Studio hit an unexpected error: {type(exc).__name__}: {exc}",
        hint="This is a bug. The job's worker.log and events.jsonl help us fix it; please attach them to a report.",
        details=details,
    )
