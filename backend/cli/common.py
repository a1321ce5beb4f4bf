"""What every ``lora-studio`` command shares: exit codes, reading specs and paths, running a job in this terminal."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Literal, overload

from backend.cli.console import render
from backend.core import paths
from backend.core.events import Done
from backend.core.layout import JobLayout
from backend.core.progress import ProgressFn, each_stage_once
from backend.core.spec import JobSpec, SpecError
from backend.core.task_specs import AnySpec, EvaluateSpec, load_spec, spec_from_dict
from backend.jobs.launch import start_worker, stream

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 3


def stage_printer(prefix: str = "") -> ProgressFn:
    """Prints each stage of a model import, merge or export once: a line per tensor would flood a terminal."""
    return each_stage_once(lambda stage: print(f"  {prefix}{stage}", flush=True))


@overload
def load_spec_file(path: Path, *, train_only: Literal[True]) -> JobSpec | None: ...


@overload
def load_spec_file(path: Path, *, train_only: bool = False) -> AnySpec | None: ...


def load_spec_file(path: Path, *, train_only: bool = False) -> AnySpec | None:
    """The spec in ``path`` (a training spec only, when asked), or None after listing its problems."""
    try:
        return JobSpec.load(path) if train_only else load_spec(path)
    except SpecError as exc:
        print(f"{path} cannot be used:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return None


_PATH_SETTINGS = {
    "evaluate": ("adapter", "compare_adapter", "data"),
    "merge": ("adapter", "output_dir"),
    "export": ("source", "output_dir", "merged_dir"),
}
"""The folder and file settings of each kind but training; a base model is a store name or a folder, never anchored."""


@overload
def anchor_paths(spec: JobSpec, base: Path) -> JobSpec: ...


@overload
def anchor_paths(spec: AnySpec, base: Path) -> AnySpec: ...


def anchor_paths(spec: AnySpec, base: Path) -> AnySpec:
    """Relative file paths in a spec mean "next to the spec file"; the job folder keeps them absolute."""

    def absolute(value: str | None) -> str | None:
        return str((base / value).resolve()) if value and not Path(value).is_absolute() else value

    if isinstance(spec, JobSpec):
        data = spec.data.model_copy(
            update={"path": absolute(spec.data.path), "eval_path": absolute(spec.data.eval_path)}
        )
        update = {"data": data, "output_dir": absolute(spec.output_dir), "continue_from": absolute(spec.continue_from)}
        return spec.model_copy(update=update)
    update = {name: absolute(getattr(spec, name)) for name in _PATH_SETTINGS[spec.kind]}
    if isinstance(spec, EvaluateSpec) and isinstance(spec.prompts, str):
        update["prompts"] = absolute(spec.prompts)
    return spec.model_copy(update=update)


def spec_from_options(settings: dict[str, object]) -> AnySpec | None:
    """The spec that command-line options make (None = the spec's default), or None after listing its problems."""
    try:
        return spec_from_dict({key: value for key, value in settings.items() if value is not None})
    except SpecError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return None


def absolute_path(path: Path | None) -> str | None:
    """A path from the command line as the worker, started elsewhere, must see it."""
    return str(path.expanduser().resolve()) if path is not None else None


def model_ref(ref: str | None) -> str | None:
    """A model folder from the command line made absolute; a store name or hub id stays as it is."""
    return absolute_path(Path(ref)) if ref is not None and Path(ref).expanduser().is_dir() else ref


# -- running jobs ---------------------------------------------------------------


def run_in_terminal(layout: JobLayout, resume: bool, as_json: bool, verbose: bool = False) -> tuple[int, Done | None]:
    """Run the job's worker, echo its events, and turn Ctrl-C into a graceful cancel."""
    process = start_worker(layout, resume=resume)
    interrupts = 0

    def on_interrupt(_signum: int, _frame: object) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            layout.cancel_request.touch()
            stopping = "stopping after this step (training saves a checkpoint); Ctrl-C again to stop at once"
            print(f"\n{stopping}", file=sys.stderr)
        else:
            os.killpg(process.pid, signal.SIGTERM)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    done: Done | None = None
    try:
        for event in stream(process):
            if isinstance(event, Done):
                done = event
            if as_json:
                print(event if isinstance(event, str) else event.model_dump_json(), flush=True)
            elif (line := render(event, verbose)) is not None:
                print(line, flush=True)
        code = process.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    if done is None and not as_json:
        print(f"the worker ended without finishing (exit {code}); see {layout.log}", file=sys.stderr)
    return code, done


def run_spec(spec: AnySpec, jobs_dir: Path | None, as_json: bool, verbose: bool = False) -> tuple[int, Done | None]:
    """Run a job of any kind in a new job folder, in a worker this terminal follows (as the queue would run it)."""
    layout = JobLayout.new(jobs_dir or paths.jobs_dir(), spec.name)
    spec.save(layout.spec)
    if not as_json:
        print(f"job folder: {layout.root}")
    return run_in_terminal(layout, resume=False, as_json=as_json, verbose=verbose)
