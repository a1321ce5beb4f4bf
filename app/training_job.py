"""The job the Model & training page makes: its spec built from the form, and putting it on the queue.

Validation, the estimate and queueing all need the spec; ``build_spec`` is the one place that
makes it, so the three can never disagree on what the form says.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from app.session import DatasetChoice
from backend.core.presets import nest
from backend.core.spec import DataFormat, JobSpec
from backend.jobs.job import Job
from backend.jobs.queue import JobQueue
from widgets.message_list import Level

PLACEHOLDER_DATA = "(no dataset chosen yet)"
_FORMATS = set(get_args(DataFormat))
_CHECK_ORDER = {"error": 0, "warning": 1, "info": 2}

Message = tuple[Level, str]
"""A (level, text) line for a ``MessageList``."""


def build_spec(
    form_values: dict[str, Any],
    base_model: str,
    dataset: DatasetChoice | None,
    *,
    placeholder_data: bool = False,
    absolute: bool = False,
) -> JobSpec:
    """The spec the form describes; raises ``SpecError`` with every problem.

    ``placeholder_data`` stands in a path while no dataset is chosen (the estimate needs none);
    ``absolute`` resolves every path, for the queue, which runs the job from elsewhere.
    """
    values = nest(form_values)
    values["base_model"] = base_model
    data = values.setdefault("data", {})
    if dataset is not None:
        data["path"] = dataset.path
        if dataset.columns:
            data["format"], data["columns"] = "columns", dict(dataset.columns)
        else:
            data["format"] = dataset.format if dataset.format in _FORMATS else "auto"
        if dataset.sheet is not None:
            data["sheet"] = dataset.sheet
    elif placeholder_data:
        data["path"] = PLACEHOLDER_DATA
    if absolute:
        _make_absolute(values)
    return JobSpec.from_dict(values)


def _make_absolute(values: dict[str, Any]) -> None:
    data = values["data"]
    for key in ("path", "eval_path"):
        if data.get(key):
            data[key] = str(Path(data[key]).expanduser().resolve())
    if values.get("output_dir"):
        values["output_dir"] = str(Path(values["output_dir"]).expanduser().resolve())
    ref = values["base_model"]
    if Path(ref).expanduser().is_dir():
        values["base_model"] = str(Path(ref).expanduser().resolve())


def queue_spec(
    queue: JobQueue,
    spec: JobSpec,
    *,
    start: bool,
    start_runner: Callable[[JobQueue], int | None],
) -> tuple[Job | None, list[Message]]:
    """Add ``spec`` to the queue after its pre-flight checks and make sure a runner works through it.

    A queued job is one that will run: the runner is started whether the job was added or started
    (``start`` only changes what is said), and a paused queue is the one thing that holds it back.
    Returns the job, if queued, and what to tell the user: the outcome first, then the checks,
    errors before warnings before notes.
    """
    added = queue.add(spec)
    if added.job is not None:
        start_runner(queue)
    job = added.job
    messages: list[Message] = []
    if job is None:
        messages.append(("error", "The job was not queued; the problems below block it."))
    else:
        if queue.paused():
            where = "The queue is paused: it starts once you resume the queue on the Jobs page."
        else:
            where = "It starts now." if start else "It runs when its turn comes."
        messages.append(("ok", f"Queued as job {job.id}, “{job.name}”. {where}"))
    checks = sorted(added.checks, key=lambda check: _CHECK_ORDER[check.level])
    messages += [(check.level, check.message) for check in checks]
    return job, messages
