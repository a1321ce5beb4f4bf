"""Map an exception from a job to a typed error a person can act on.

The queue and the GUI show ``message`` and ``hint``; ``details`` keeps the raw
text for a bug report. One taxonomy for every job kind (docs/job-protocol.md, "Error types"): out_of_memory
(GPU or host), disk_full, permission, damaged_input, data, config, dependency, cancelled, and internal, which
is kept for real bugs: a fault of the machine or of a file is never called one.
"""

from __future__ import annotations

import errno
import json
import shutil
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

from backend.core.events import Error, ErrorType
from backend.core.layout import JobLayout
from backend.core.spec import SpecError
from backend.core.stop import Cancelled
from backend.data.problems import DataError

_OOM_HINT = (
    "Make the job smaller: turn on gradient checkpointing, halve training.micro_batch_size and double "
    "gradient_accumulation_steps (same effective batch), lower training.max_seq_length, or use a 4-bit base."
)


def _is_out_of_memory(exc: BaseException) -> bool:
    if _is_host_out_of_memory(exc) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "failed to allocate" in text)


def _is_host_out_of_memory(exc: BaseException) -> bool:
    """Python's MemoryError, or the kernel refusing memory to a call (fork, mmap) with ENOMEM."""
    return isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno == errno.ENOMEM)


_HOST_OOM_HINT = (
    "Close other programs that use memory, or make the job smaller: lower training.max_seq_length and "
    "training.micro_batch_size (raise gradient_accumulation_steps to keep the effective batch), or use a 4-bit base."
)
_DISK_FULL_TEXT = ("no space left on device", "storagefull", "disk quota exceeded", "file write failed")
_DAMAGED_TEXT = (
    "error while deserializing",
    "incomplete metadata",
    "header too large",
    "invalid header",
    "failed finding central directory",
    "pytorchstreamreader failed",
    "unexpected end of file",
    "input/output error",
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and the ones it was raised from or while handling (a library wraps the OSError)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _os_error(exc: BaseException, codes: tuple[int, ...]) -> OSError | None:
    return next((e for e in _chain(exc) if isinstance(e, OSError) and e.errno in codes), None)


def _mentions(exc: BaseException, needles: tuple[str, ...]) -> bool:
    return any(needle in str(e).lower() for e in _chain(exc) for needle in needles)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for item in path.rglob("*"):
        try:
            total += item.stat().st_size if item.is_file() else 0
        except OSError:
            continue
    return total


def _bytes(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _free_bytes(path: Path) -> int | None:
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def _finished(job: Path) -> bool:
    """A job folder whose last ``done`` event says it ended (its checkpoints will not be resumed)."""
    try:
        lines = (job / "events.jsonl").read_bytes().splitlines()
    except OSError:
        return False
    for raw in reversed(lines[-50:]):
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("type") == "done":
            return event.get("status") in ("succeeded", "failed")
    return False


def deletable(layout: JobLayout, limit: int = 5) -> list[tuple[Path, int]]:
    """What LoRA Studio can delete for the user on a full disk, largest first: the checkpoints of other
    jobs that finished (their adapters are kept) and exports (merged models, GGUF files) in job folders."""
    found: list[tuple[Path, int]] = []
    try:
        jobs = [p for p in layout.root.parent.iterdir() if p.is_dir() and p != layout.root]
    except OSError:
        return []
    for job in jobs:
        candidates = [job / "checkpoints"] if _finished(job) else []
        candidates += [p for p in (job / "exports", job / "merged", job / "export") if p.exists()]
        for path in candidates:
            if path.exists() and (size := _size(path)) > 0:
                found.append((path, size))
    return sorted(found, key=lambda item: -item[1])[:limit]


def _checkpoint_size(layout: JobLayout) -> int | None:
    try:
        sizes = [_size(p) for p in layout.checkpoints.iterdir() if p.is_dir()]
    except OSError:
        return None
    return max(sizes, default=0) or None


def _disk_full(exc: BaseException, layout: JobLayout | None, details: str) -> Error:
    os_error = _os_error(exc, (errno.ENOSPC, errno.EDQUOT))
    named = os_error.filename if os_error is not None and os_error.filename else None
    path = Path(str(named)) if named else (layout.root if layout is not None else None)
    where = f" while writing {path}" if named else f" while writing into {path}" if path is not None else ""
    free = _free_bytes(path) if path is not None else None
    free_text = f" That disk has {_bytes(free)} free now." if free is not None else ""
    need = _checkpoint_size(layout) if layout is not None else None
    need_text = f" Each checkpoint of this job takes {_bytes(need)}, and the job saves more as it goes." if need else ""
    hint = "Free space on that disk, then resume the job: it continues from its last complete checkpoint."
    if layout is not None and (spare := deletable(layout)):
        listed = "; ".join(f"{p} ({_bytes(size)})" for p, size in spare)
        hint += f" LoRA Studio can delete these for you: {listed}."
    return Error(
        error_type="disk_full",
        message=f"The disk ran out of space{where}.{free_text}{need_text}",
        hint=hint,
        details=details,
    )


def classify(exc: BaseException, layout: JobLayout | None = None) -> Error:
    """The typed error for ``exc``; ``layout`` (the job's folder) lets a disk-full message say what to free."""
    details = "".join(traceback.format_exception(exc))
    if _is_out_of_memory(exc):
        host = _is_host_out_of_memory(exc)
        where = "system RAM (host memory)" if host else "GPU memory"
        return Error(
            error_type="out_of_memory",
            message=f"The job ran out of {where}.",
            hint=_HOST_OOM_HINT if host else _OOM_HINT,
            details=details,
        )
    if _os_error(exc, (errno.ENOSPC, errno.EDQUOT)) is not None or _mentions(exc, _DISK_FULL_TEXT):
        return _disk_full(exc, layout, details)
    if (denied := _os_error(exc, (errno.EACCES, errno.EPERM, errno.EROFS))) is not None:
        path = denied.filename or (layout.root if layout is not None else "a file the job uses")
        read_only = " (the disk is mounted read-only)" if denied.errno == errno.EROFS else ""
        return Error(
            error_type="permission",
            message=f"The job may not read or write {path}{read_only}.",
            hint=f"Give your user read and write access to {path} (and the folders above it), then resume the job.",
            details=details,
        )
    if isinstance(exc, Cancelled):
        return Error(error_type="cancelled", message=f"The job was cancelled: {exc}.", hint=None, details=details)
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
    if (kind in get_args(ErrorType) and kind != "internal") or (kind == "internal" and hint):
        return Error(error_type=kind, message=str(exc), hint=hint, details=details)
    if isinstance(exc, UnicodeDecodeError | EOFError) or _mentions(exc, _DAMAGED_TEXT):
        unreadable = next((e for e in _chain(exc) if isinstance(e, OSError) and e.filename), None)
        name = f" ({unreadable.filename})" if unreadable is not None else ""
        return Error(
            error_type="damaged_input",
            message=f"A file the job reads is damaged or unreadable{name}: {type(exc).__name__}: {exc}",
            hint="Replace the file with a whole copy (a failing disk or an interrupted copy cuts files short), "
            "then run the job again.",
            details=details,
        )
    return Error(
        error_type="internal",
        message=f"LoRA Studio hit an unexpected error: {type(exc).__name__}: {exc}",
        hint="This is a bug. The job's worker.log and events.jsonl help us fix it; please attach them to a report.",
        details=details,
    )


def classify_start(exc: OSError, program: str, layout: JobLayout) -> Error:
    """Why a worker could not be started, in the same taxonomy: the program that runs jobs (``program``) is
    missing or may not be run, which a broken install does, or the job folder cannot take the worker's log."""
    details = "".join(traceback.format_exception(exc))
    if exc.filename == program and exc.errno in (errno.ENOENT, errno.ENOEXEC):
        return Error(
            error_type="dependency",
            message=f"The worker could not be started: the program that runs jobs, {program}, is missing "
            "or is not a program this machine can run.",
            hint="Reinstall LoRA Studio (make install), then resume the job.",
            details=details,
        )
    if exc.filename == program and exc.errno in (errno.EACCES, errno.EPERM):
        return Error(
            error_type="permission",
            message=f"The worker could not be started: your user may not run {program}, the program that runs jobs.",
            hint=f"Make it executable (chmod +x {program}) or reinstall LoRA Studio, then resume the job.",
            details=details,
        )
    if exc.filename and Path(str(exc.filename)).parent == layout.root:  # the runner's first write into the folder
        exc = OSError(exc.errno, exc.strerror, str(layout.root))
    error = classify(exc, layout)
    message = error.message[:1].lower() + error.message[1:]
    return error.model_copy(update={"message": f"The worker could not be started: {message}"})
