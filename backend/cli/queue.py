"""``lora-studio queue``: the job queue from a terminal, each action a thin layer over JobQueue.

The queue's commands, their output and their ``--json`` forms; ``build_parser`` in
``backend/cli/main.py`` adds them with ``add_queue_parser``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from backend.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, anchor_paths, load_spec_file
from backend.core.progress import STEP_KINDS
from backend.core.task_specs import AnySpec
from backend.jobs.job import Job
from backend.jobs.queue import Added, JobQueue


def add_queue_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    queue = sub.add_parser(
        "queue", help="queue jobs and run them one at a time per device, in the background"
    ).add_subparsers(dest="queue_command", metavar="ACTION", required=True)

    def action(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        parser = queue.add_parser(name, help=help_text)
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.set_defaults(func=func)
        return parser

    action("add", _add, "check a spec of any kind (train, measure, evaluate, merge, export) and queue it").add_argument(
        "spec", type=Path
    )
    action("list", _list, "list jobs: running, queued in order, then finished")
    action("show", _show, "a job's state, how it ended and its log").add_argument("id", type=int)
    for name, help_text in (
        ("cancel", "stop a job after its current step (training saves a checkpoint); a queued job never starts"),
        ("pause", "stop a job after its current step and hold it first in line until resumed"),
        (
            "resume",
            "continue a paused, cancelled, failed or interrupted job: training from its newest checkpoint, "
            "other kinds from the start",
        ),
    ):
        action(name, _act, help_text).add_argument("id", type=int)
    retry = action("retry", _act, "queue a failed, cancelled or interrupted job again, from the start")
    retry.add_argument("id", type=int)
    retry.add_argument(
        "--from-checkpoint", action="store_true", help="continue from its newest checkpoint (training jobs)"
    )
    dup = action("dup", _dup, "queue a copy of a job")
    dup.add_argument("id", type=int)
    dup.add_argument("--spec", type=Path, help="an edited spec to use instead of the job's own")
    rm = action("rm", _act, "delete a job that is not running, with its folder")
    rm.add_argument("id", type=int)
    rm.add_argument("--yes", action="store_true", help="do not ask")
    move = action("move", _act, "change a queued job's place in line")
    move.add_argument("id", type=int)
    move.add_argument("--to", type=int, required=True, metavar="N", help="its new place; 1 runs next")
    action("pause-all", _pause_all, "pause the whole queue: no job starts until resume-all (a running job goes on)")
    action("resume-all", _pause_all, "resume the queue after pause-all: queued jobs start in their turn")
    run = queue.add_parser("run", help="run queued jobs on one device; reattaches to a job left running")
    run.add_argument("--once", action="store_true", help="exit when no job is left to start, instead of waiting")
    run.add_argument("--detach", action="store_true", help="run in the background; it keeps going after you log out")
    run.add_argument("--device", help="cpu or cuda:N (default: cuda:0 when there is a GPU, else cpu)")
    run.add_argument("--wait", action="store_true", help="if another runner drives the device, wait for it to end")
    run.set_defaults(func=_run)


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2))


def _load(path: Path) -> AnySpec | None:
    """The spec with relative paths made absolute (they mean "next to the spec file"), or None after saying why."""
    spec = load_spec_file(path)
    return anchor_paths(spec, path.resolve().parent) if spec is not None else None


# -- reading --------------------------------------------------------------------


def _line(job: Job, place: int | None) -> str:
    steps = f"{job.step or 0}/{job.total_steps}" if job.total_steps and job.kind in STEP_KINDS else ""
    if job.state == "running":
        note = f"{job.device}, pid {job.pid}" if job.pid else f"{job.device}, starting"
    elif place is not None:
        note = f"#{place} in line" + (", continues from its checkpoint" if job.resume and job.kind == "train" else "")
    elif job.state in ("failed", "interrupted") and job.message:
        note = f"{job.error_type or job.cause}: {job.message}"
    else:
        note = job.message or ""
    return f"{job.id:>4}  {job.label:<11} {steps:>9}  {job.name[:28]:<28}  {note[:90]}"


def _list(args: argparse.Namespace) -> int:
    from backend.jobs.settle import settle_orphans

    with JobQueue() as queue:
        settle_orphans(queue)
        jobs, runners, paused = queue.jobs(), queue.runners(), queue.paused()
    if args.json:
        _print_json(
            {"jobs": [job.to_dict() for job in jobs], "runners": [vars(runner) for runner in runners], "paused": paused}
        )
        return EXIT_OK
    if not jobs:
        print("the queue is empty; add a job with: lora-studio queue add SPEC")
    else:
        print(f"{'ID':>4}  {'STATE':<11} {'STEP':>9}  {'NAME':<28}  NOTE")
    queued = [job.id for job in jobs if job.state == "queued"]
    for job in jobs:
        print(_line(job, queued.index(job.id) + 1 if job.id in queued else None))
    alive = [runner for runner in runners if runner.alive]
    for runner in alive:
        print(f"runner on {runner.device}: pid {runner.pid}")
    if paused:
        print("the queue is paused: no job starts; resume it with: lora-studio queue resume-all")
    elif not alive and any(job.state == "queued" and not job.held for job in jobs):
        print("no runner is running; start one with: lora-studio queue run --detach")
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from backend.jobs.settle import log_tail, settle_orphans
    from backend.training.checkpoints import checkpoint_step, latest_checkpoint

    with JobQueue() as queue:
        settle_orphans(queue)
        job = queue.get(args.id)
    if job is None:
        print(f"there is no job {args.id}", file=sys.stderr)
        return EXIT_FAILED
    checkpoint = latest_checkpoint(job.layout.checkpoints)
    ran = job.run_time()
    details = {
        "folder_exists": job.folder.is_dir(),
        "checkpoint_step": checkpoint_step(checkpoint) if checkpoint else None,
        "log_tail": log_tail(job.layout.log) if job.state == "running" else job.log_tail,
        "run_time": {"attempt_s": ran.attempt_s, "job_s": ran.job_s, "attempts": ran.attempts} if ran else None,
    }
    if args.json:
        _print_json({**job.to_dict(), **details})
        return EXIT_OK
    print(f"job {job.id}: {job.name} ({job.kind}), {job.label}")
    print(f"  folder      {job.folder}{'' if details['folder_exists'] else '  (missing)'}")
    if job.total_steps and job.kind in STEP_KINDS:  # a merge's or an export's counts are per stage
        print(f"  step        {job.step or 0}/{job.total_steps}")
    if ran is not None:
        print(f"  run time    {ran.words()}")
    if job.kind == "train":
        print(f"  checkpoint  {details['checkpoint_step'] or 'none'}")
    if job.attempt:
        print(f"  attempts    {job.attempt} (the last on {job.device}, pid {job.pid})")
    produced = "adapter" if job.kind == "train" else "output"
    for label, value in ((produced, job.adapter_path), ("cause", job.cause), ("error", job.error_type)):
        if value:
            print(f"  {label:<11} {value}")
    if job.message:
        print(f"  {job.message}")
    if job.hint:
        print(f"  what to do: {job.hint}")
    if details["log_tail"]:
        print("  last lines of worker.log:")
        for line in str(details["log_tail"]).splitlines():
            print(f"  | {line}")
    return EXIT_OK


# -- changing -------------------------------------------------------------------


def queue_spec(spec: AnySpec, as_json: bool) -> int:
    """Check and queue ``spec`` (its paths absolute) and say what happened; what ``--queue`` of any command does."""
    with JobQueue() as queue:
        return _print_added(queue.add(spec), as_json)


def _print_added(added: Added, as_json: bool) -> int:
    if as_json:
        _print_json(added.to_dict())
    else:
        for check in added.checks:
            print(f"  {check.level}: {check.message}", file=sys.stderr if check.level == "error" else sys.stdout)
        if added.job is not None:
            print(f"queued job {added.job.id}: {added.job.name} ({added.job.folder})")
    return EXIT_OK if added.job is not None else EXIT_FAILED


def _add(args: argparse.Namespace) -> int:
    spec = _load(args.spec)
    if spec is None:
        return EXIT_USAGE
    return queue_spec(spec, args.json)


def _dup(args: argparse.Namespace) -> int:
    spec = _load(args.spec) if args.spec is not None else None
    if args.spec is not None and spec is None:
        return EXIT_USAGE
    with JobQueue() as queue:
        return _print_added(queue.duplicate(args.id, spec), args.json)


def _confirmed(queue: JobQueue, job_id: int) -> bool:
    job = queue.get(job_id)
    if job is None or not sys.stdin.isatty():
        return job is None  # an unknown id gets its message from delete()
    return input(f"delete job {job_id} and its folder {job.folder}? [y/N] ").strip().lower() in ("y", "yes")


def _act(args: argparse.Namespace) -> int:
    with JobQueue() as queue:
        if args.queue_command == "rm" and not args.yes and not _confirmed(queue, args.id):
            print("not deleted; add --yes to delete without asking", file=sys.stderr)
            return EXIT_FAILED
        actions = {
            "cancel": lambda: queue.cancel(args.id),
            "pause": lambda: queue.pause(args.id),
            "resume": lambda: queue.resume(args.id),
            "retry": lambda: queue.retry(args.id, from_checkpoint=args.from_checkpoint),
            "rm": lambda: queue.delete(args.id),
            "move": lambda: queue.move(args.id, args.to),
        }
        result = actions[args.queue_command]()
    if args.json:
        _print_json(result.to_dict())
    else:
        print(result.message, file=sys.stdout if result.ok else sys.stderr)
    return EXIT_OK if result.ok else EXIT_FAILED


def _pause_all(args: argparse.Namespace) -> int:
    with JobQueue() as queue:
        result = queue.set_paused(args.queue_command == "pause-all")
    if args.json:
        _print_json(result.to_dict())
    else:
        print(result.message)
    return EXIT_OK


# -- running --------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    from backend.jobs.runner import DEVICE, default_device

    device = args.device or default_device()
    if not DEVICE.match(device):
        print(f"--device must be cpu or cuda:N, not {device!r}", file=sys.stderr)
        return EXIT_USAGE
    return _detach(device, args.once) if args.detach else _run_here(device, args.once, args.wait)


def _run_here(device: str, once: bool, wait: bool) -> int:
    import logging
    import threading

    from backend.estimator.oom_advice import advise_out_of_memory
    from backend.jobs.runner import DeviceBusy, Runner, RunnerSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%Y-%m-%d %H:%M:%S")
    stop = threading.Event()
    # Ctrl-C or SIGTERM stops the runner only: the job's worker runs in its own session and carries on.
    previous = {signum: signal.signal(signum, lambda _n, _f: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with JobQueue() as queue:
            settings = RunnerSettings(device=device, oom_advice=advise_out_of_memory)
            Runner(queue, settings).run(once=once, stop=stop, wait=wait)
    except DeviceBusy as exc:
        print(f"{exc} Stop it first, or pass --wait to take over when it ends.", file=sys.stderr)
        return EXIT_FAILED
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return EXIT_OK


def _detach(device: str, once: bool) -> int:
    import time

    from backend.jobs.runner import spawn_runner

    process, log = spawn_runner(device, once=once)
    with JobQueue() as queue:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and process.poll() is None:
            if any(runner.pid == process.pid for runner in queue.runners()):
                print(f"runner started on {device} (pid {process.pid}); its log: {log}")
                return EXIT_OK
            time.sleep(0.2)
    if process.poll() is None:
        print(f"runner starting on {device} (pid {process.pid}); its log: {log}")
        return EXIT_OK
    if process.returncode == EXIT_OK:
        print(f"the runner found nothing to run and ended; its log: {log}")
        return EXIT_OK
    print(f"the runner stopped at once (status {process.returncode}); its log: {log}", file=sys.stderr)
    return EXIT_FAILED
