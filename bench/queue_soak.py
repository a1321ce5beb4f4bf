"""Soak test of the job queue: kill -9 of runners and workers at random moments, random cancels and
pauses, scripted crashes, and the faults a user meets (issue 26), each fixed and resumed.

    python bench/queue_soak.py [--jobs 200] [--seed 0] [--out bench/results/queue_soak.md]

Runners are real processes (this script with ``--runner``), one at a time on the CPU, each killed
with SIGKILL after a few seconds and replaced by a new one, which must reattach to the job in
flight; workers are killed with SIGKILL at random moments as well. Most jobs run the stand-in
worker (``backend.jobs.standin``: the job protocol without training, some scripted to fail, crash
or write a corrupt line). The fault jobs run what a user's job runs (``bench/soak_worker.py``
picks the worker): the real training worker on a tiny Llama for a disk that fills after the
first checkpoint (``tests/faults/sitecustomize.py``, the tests' injection at the worker's own
``os.write``), a damaged newest checkpoint and every checkpoint damaged (weights files cut in
half after the worker is killed), and a data file deleted after queueing; the stand-in for a
job folder that may not be written (a read-only bind mount as root, ``chmod`` otherwise) and a
worker that exits without a word. A "user" reads each fault's message, fixes the fault and
resumes (or, with no checkpoint left, retries) the job.

The bar: every job finished, none lost or run twice at once, every non-cancelled job at its full
step count except the scripted failures, every fault typed as expected (never ``internal``), the
SQLite database passes ``integrity_check`` and every line of every event file parses (except the
scripted corrupt lines).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import platform
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.core.events import Done, Error, Started, Warn, parse_event, read_events
from backend.core.spec import JobSpec
from backend.core.tail import EventTail
from backend.jobs.job import FINISHED, REQUEUEABLE, Job
from backend.jobs.process import ProcessId
from backend.jobs.queue import JobQueue
from backend.jobs.runner import Runner, RunnerSettings
from backend.training.checkpoints import check_checkpoint, checkpoint_step, latest_checkpoint
from bench.soak_worker import DISK_FULL, PLAN, REPO, STANDIN_STEP_S

SCRIPT = Path(__file__).resolve()
WORKER = (sys.executable, str(SCRIPT.with_name("soak_worker.py")))
SCRIPTS = [  # (share of jobs, standin.json)
    (0.05, {"fail_at": 2, "error_type": "out_of_memory"}),
    (0.04, {"die_at": 2, "signal": "SIGKILL"}),
    (0.02, {"die_at": 2, "signal": "SIGSEGV"}),
    (0.04, {"garbage_at": 1}),
    (0.02, {"ignore_stop": True}),
]
GARBAGE = b'{"v": 1, "type": "progress", "st\x00\xff garbage'
"""The line the stand-in's ``garbage_at`` writes: the only line of an event file that may not parse."""

REAL_STEPS = 16
FAULTS = {  # kind: (jobs, real worker, what the user must see)
    "disk_full": (3, True, "failed, disk_full"),
    "damaged_newest": (2, True, "succeeded from an older checkpoint, the damaged one kept aside"),
    "all_damaged": (2, True, "failed, data (no checkpoint it can resume from)"),
    "data_deleted": (2, True, "failed, data (does not exist)"),
    "permission": (2, False, "failed, permission (read-only job folder)"),
    "silent_exit": (2, False, "interrupted, exit:7 (or lost when its runner had been killed)"),
}
FAULT_TEXT = {
    "disk_full": "disk full after the first checkpoint (injected at the worker's os.write)",
    "damaged_newest": "newest checkpoint's weights cut in half",
    "all_damaged": "every checkpoint's weights cut in half",
    "data_deleted": "data file deleted after queueing",
    "permission": "job folder read-only (permission denied)",
    "silent_exit": "worker exits (status 7) without a word",
}


@dataclass
class FaultJob:
    """One job that carries a fault, and how far the user got with it."""

    kind: str
    job_id: int
    folder: Path
    data: Path
    steps: int
    phase: str = "armed"
    """armed (the fault is yet to happen), killed, injected (checkpoints damaged), fixed (resumed), done."""
    seen: str = ""
    message: str = ""
    ok: bool = False
    final: str = ""
    resume_from: int | None = None
    events_from: int = 0


# -- the jobs ------------------------------------------------------------------------------------------------


def _spec(name: str, data: Path, steps: int, model: Path | None = None) -> JobSpec:
    values: dict = {
        "name": name,
        "data": {"path": str(data)},
        "training": {"max_steps": steps},
        "schedule": {"save_every_steps": 2, "keep_checkpoints": 2},
    }
    if model is not None:
        values |= {
            "base_model": str(model),
            "lora": {"r": 8},
            "training": {"max_steps": steps, "micro_batch_size": 4, "max_seq_length": 64},
            "schedule": {"save_every_steps": 4, "eval_every_steps": 100, "keep_checkpoints": 3},
        }
    return JobSpec.from_dict(values)


def add_jobs(queue: JobQueue, count: int, data: Path, rng: random.Random) -> tuple[dict[int, int], dict[int, dict]]:
    """The stand-in jobs: their step counts and their scripts."""
    steps, scripts = {}, {}
    for index in range(count):
        max_steps = rng.randint(3, 8)
        added = queue.add(_spec(f"soak-{index}", data, max_steps), checks=[])
        assert added.job is not None
        steps[added.job.id] = max_steps
        roll, threshold = rng.random(), 0.0
        for share, script in SCRIPTS:
            threshold += share
            if roll < threshold:
                (added.job.folder / "standin.json").write_text(json.dumps(script))
                scripts[added.job.id] = script
                break
    return steps, scripts


def add_fault_jobs(queue: JobQueue, home: Path, data: Path, model: Path, rng: random.Random) -> list[FaultJob]:
    """The fault jobs, each moved to a random place in the line, their faults armed."""
    from tests.datasets import write_colour_task

    faults = []
    total = len(queue.jobs())
    for kind, (count, real, _) in FAULTS.items():
        for index in range(count):
            own = write_colour_task(home / f"colours-{kind}-{index}.jsonl", 120) if real else data
            spec = _spec(f"{kind}-{index}", own, REAL_STEPS if real else 6, model if real else None)
            added = queue.add(spec, checks=[])
            assert added.job is not None
            job = added.job
            if real:
                (job.folder / PLAN).write_text(json.dumps({"worker": "real"}))
            if kind == "disk_full":
                (job.folder / DISK_FULL).write_text("300")
            elif kind == "data_deleted":
                own.rename(own.with_suffix(".kept"))
            elif kind == "silent_exit":
                (job.folder / "standin.json").write_text(json.dumps({"exit_at": 2, "code": 7}))
            elif kind == "permission" and not _lock(job.folder):
                queue.delete(job.id)
                continue
            queue.move(job.id, rng.randint(1, total))
            faults.append(FaultJob(kind, job.id, job.folder, own, spec.training.max_steps or 0))
    return faults


def _lock(folder: Path) -> bool:
    """Make ``folder`` read-only for the runner and its workers: a read-only bind mount (root ignores modes)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return True
    if subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode:
        return False
    if subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True).returncode:
        _unlock(folder)
        return False
    return True


def _unlock(folder: Path) -> None:
    if os.geteuid() != 0:
        folder.chmod(0o755)
    else:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


# -- the user's faults ---------------------------------------------------------------------------------------


def _valid_checkpoints(job: Job) -> list[Path]:
    if not job.layout.checkpoints.is_dir():
        return []
    found = [p for p in job.layout.checkpoints.iterdir() if checkpoint_step(p) and check_checkpoint(p) is None]
    return sorted(found, key=lambda p: checkpoint_step(p) or 0)


def _cut_weights(checkpoint: Path) -> None:
    weights = checkpoint / "adapter_model.safetensors"
    with weights.open("r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)


def _kill(job: Job) -> bool:
    if job.pid is None or job.pid_created is None or not ProcessId(job.pid, job.pid_created).alive():
        return False
    try:
        os.kill(job.pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


EXPECTED = {  # kind: (error_type, words of the message)
    "disk_full": ("disk_full", "ran out of space"),
    "all_damaged": ("data", "no checkpoint it can resume from"),
    "data_deleted": ("data", "does not exist"),
    "permission": ("permission", "read-only"),
}


def _expected(fault: FaultJob, job: Job) -> bool:
    """Whether the job ended as its fault should end it."""
    if fault.kind == "silent_exit":
        return job.state == "interrupted" and job.cause in ("exit:7", "lost")
    if fault.kind not in EXPECTED:
        return False
    error_type, words = EXPECTED[fault.kind]
    return (
        job.state == "failed"
        and job.error_type == error_type
        and words in (job.message or "")
        and "This is a bug" not in (job.hint or "")
    )


def _fix(queue: JobQueue, fault: FaultJob) -> bool:
    """What the user does after reading the message; True when the job is queued again."""
    if fault.kind == "disk_full":
        (fault.folder / DISK_FULL).unlink()
    elif fault.kind == "data_deleted":
        fault.data.with_suffix(".kept").rename(fault.data)
    elif fault.kind == "permission":
        _unlock(fault.folder)
    if fault.kind == "all_damaged":
        return queue.retry(fault.job_id).ok
    return queue.resume(fault.job_id).ok


def advance(queue: JobQueue, fault: FaultJob, kills: Counter) -> None:
    """One look at a fault job: arm, inject, read the outcome, fix and resume, as its phase says."""
    job = queue.get(fault.job_id)
    assert job is not None
    if fault.phase == "armed" and fault.kind in ("damaged_newest", "all_damaged"):
        need = 2 if fault.kind == "damaged_newest" else 1
        if job.state == "running" and len(_valid_checkpoints(job)) >= need and _kill(job):
            kills["worker"] += 1
            fault.phase = "killed"
        elif job.state == "succeeded":
            fault.phase, fault.seen = "done", "not injected: the job ended before its checkpoints"
        elif job.state in REQUEUEABLE:
            queue.resume(job.id)  # a kill of its runner before it started
        return
    if fault.phase == "killed":
        valid = _valid_checkpoints(job)
        if job.state == "succeeded" or (job.state in REQUEUEABLE and len(valid) < (fault.kind == "damaged_newest") + 1):
            fault.phase, fault.seen = "done", f"not injected: {job.state} with {len(valid)} valid checkpoints"
        elif job.state in REQUEUEABLE:
            damaged = valid[-1:] if fault.kind == "damaged_newest" else valid
            for checkpoint in damaged:
                _cut_weights(checkpoint)
            fault.resume_from = checkpoint_step(valid[-2]) if fault.kind == "damaged_newest" else None
            fault.events_from = job.layout.events.stat().st_size
            queue.resume(job.id)
            fault.phase = "injected"
        return
    if fault.phase in ("armed", "injected") and job.state in REQUEUEABLE:
        if job.state == "interrupted" and not _expected(fault, job):
            # a kill of its runner came first: go on (the stand-in's script runs on a fresh start only,
            # so a silent exit is retried from the start)
            (queue.retry if fault.kind == "silent_exit" else queue.resume)(job.id)
            return
        if fault.kind == "damaged_newest":  # it should have recovered by itself
            fault.seen, fault.message, fault.phase = f"{job.state}, {job.error_type}", job.message or "", "done"
            return
        fault.seen = f"{job.state}, {job.cause if job.state == 'interrupted' else job.error_type}"
        fault.message, fault.ok = job.message or "", _expected(fault, job)
        fault.phase = "fixed" if _fix(queue, fault) else "done"
        return
    if fault.phase == "injected" and job.state == "succeeded":  # the damaged newest checkpoint
        after = EventTail(job.layout.events, fault.events_from).read()
        start = next((e for e in after if isinstance(e, Started)), None)
        warned = [e for e in after if isinstance(e, Warn) and e.code == "damaged_checkpoint"]
        kept = sorted(p.name for p in job.layout.checkpoints.glob("damaged-*"))
        fault.seen = f"succeeded, resumed from step {start.resumed_from_step if start else None}"
        fault.message = warned[0].message if warned else ""
        fault.ok = start is not None and start.resumed_from_step == fault.resume_from and bool(warned and kept)
        fault.phase = "fixed"
    if fault.phase == "fixed" and job.state in FINISHED:
        if job.state == "interrupted":  # a kill after the fix: resume again
            queue.resume(job.id)
            return
        fault.final = f"{job.state}, step {job.step}/{fault.steps}"
        fault.phase = "done"


def fault_user(faults: list[FaultJob], done: threading.Event, kills: Counter, errors: list[str]) -> None:
    with JobQueue() as queue:
        while not done.is_set() and any(fault.phase != "done" for fault in faults):
            for fault in faults:
                if fault.phase != "done":
                    try:
                        advance(queue, fault, kills)
                    except Exception as exc:  # noqa: BLE001 - reported, not fatal to the soak
                        errors.append(f"fault {fault.kind} job {fault.job_id}: {type(exc).__name__}: {exc}")
                        fault.phase = "done"
            time.sleep(0.2)


# -- runners, kills and the user ------------------------------------------------------------------------------


def run_runner() -> None:
    """``--runner``: one runner process on the CPU until SIGTERM (or SIGKILL, which is the point)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _n, _f: stop.set())
    settings = RunnerSettings(
        device="cpu", worker_command=WORKER, poll_s=0.05, heartbeat_s=0.5, term_after_s=3.0, kill_after_s=6.0
    )
    with JobQueue() as queue:
        Runner(queue, settings).run(stop=stop, wait=True)


def runner_shifts(
    log: Path, rng: random.Random, quiet: threading.Event, done: threading.Event, kills: Counter, errors: list[str]
) -> None:
    """Runner processes one after another: each is killed with SIGKILL after 3-10 s (until ``quiet``)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    while not done.is_set():
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, str(SCRIPT), "--runner"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        until = time.monotonic() + rng.uniform(3.0, 10.0)
        while not done.is_set() and (quiet.is_set() or time.monotonic() < until) and process.poll() is None:
            time.sleep(0.05)
        if process.poll() is not None:
            errors.append(f"a runner exited by itself with status {process.returncode}")
        elif done.is_set():
            process.terminate()
        else:
            process.kill()
            kills["runner"] += 1
        process.wait()


def chaos(
    rng: random.Random, quiet: threading.Event, faults: dict[int, FaultJob], kills: Counter, real_killed: set[int]
) -> None:
    """Kills a running worker with SIGKILL every 1-3 s; a fault job only once, after its fault was fixed."""
    with JobQueue() as queue:
        while not quiet.wait(rng.uniform(1.0, 3.0)):
            candidates = [
                job
                for job in queue.jobs("running")
                if job.id not in faults or (faults[job.id].phase == "fixed" and job.id not in real_killed)
            ]
            if candidates and _kill(job := rng.choice(candidates)):
                kills["worker"] += 1
                if job.id in faults:
                    real_killed.add(job.id)


def user(rng: random.Random, quiet: threading.Event, done: threading.Event, skip: set[int], actions: Counter) -> None:
    """Cancels and pauses at random (until ``quiet``); resumes what it paused and what a kill interrupted."""
    held: dict[int, float] = {}
    with JobQueue() as queue:
        while not done.is_set():
            time.sleep(rng.uniform(0.05, 0.4))
            jobs = {job.id: job for job in queue.jobs() if job.id not in skip}
            for job in jobs.values():
                waiting = job.state == "interrupted" or (job.state == "queued" and job.paused)
                if waiting and job.id not in held:
                    held[job.id] = time.time() + (0.0 if quiet.is_set() else rng.uniform(0.2, 3.0))
            for job_id, when in list(held.items()):
                job = jobs[job_id]
                if job.state in ("succeeded", "failed", "cancelled"):
                    del held[job_id]
                elif time.time() >= when and (job.paused or job.state == "interrupted"):
                    del held[job_id]
                    actions["resume" if queue.resume(job_id).ok else "resume refused"] += 1
            if quiet.is_set():
                continue
            active = [job for job in jobs.values() if job.state in ("queued", "running")]
            running = [job for job in active if job.state == "running" and not job.request]
            pick = rng.random()  # a look every 0.2 s: about 4 cancels, 8 pauses and 4 moves a minute
            if pick < 0.015 and active:
                actions["cancel" if queue.cancel(rng.choice(active).id).ok else "cancel refused"] += 1
            elif pick < 0.045 and running:
                actions["pause" if queue.pause(rng.choice(running).id).ok else "pause refused"] += 1
            elif pick < 0.06:
                queued = [job for job in active if job.state == "queued"]
                if queued:
                    actions["move" if queue.move(rng.choice(queued).id, 1).ok else "move refused"] += 1


# -- the checks ------------------------------------------------------------------------------------------------


def check(job: Job, steps: int, script: dict | None) -> list[str]:
    """Every way this job's row and folder could disagree, or fall short of its full step count."""
    if job.state not in FINISHED or job.state == "interrupted":
        return [f"job {job.id} is stuck: {job.label}"]
    problems = []
    events = list(read_events(job.layout.events))
    starts = sum(isinstance(event, Started) for event in events)
    if starts > job.attempt:  # fewer is a kill before the worker's first word
        problems.append(f"job {job.id}: {starts} started events for {job.attempt} attempts (a duplicated start)")
    if sum(isinstance(e, Done) and e.status == "succeeded" for e in events) > (job.state == "succeeded"):
        problems.append(f"job {job.id}: succeeded more than once")
    last = EventTail(job.layout.events, job.events_offset).read() if job.attempt else []
    done = next((event for event in reversed(last) if isinstance(event, Done)), None)
    if job.state == "succeeded":
        if not (done and done.status == "succeeded" and (job.layout.adapter / "adapter_config.json").is_file()):
            problems.append(f"job {job.id}: succeeded without a done event and an adapter")
        if job.step != steps:
            problems.append(f"job {job.id}: succeeded at step {job.step}, not its full {steps}")
    elif job.state == "failed":
        errors = [event for event in last if isinstance(event, Error)]
        if not (done and done.status == "failed" and errors and errors[-1].error_type == job.error_type):
            problems.append(f"job {job.id}: failed, but the events say otherwise")
        if not (script and "fail_at" in script and job.error_type == script["error_type"]):
            problems.append(f"job {job.id}: failed ({job.error_type}) without a scripted failure: {job.message}")
    elif job.state == "cancelled" and job.attempt and done is not None and done.step:
        checkpoint = latest_checkpoint(job.layout.checkpoints)
        if checkpoint is None or checkpoint_step(checkpoint) != done.step:
            problems.append(f"job {job.id}: cancelled at step {done.step} without a checkpoint of it")
    if job.error_type == "internal":
        problems.append(f"job {job.id}: internal: {job.message}")
    if job.layout.cancel_request.exists():
        problems.append(f"job {job.id}: a cancel request was left behind")
    if job.pid and job.pid_created and ProcessId(job.pid, job.pid_created).alive():
        problems.append(f"job {job.id}: its worker still runs")
    return problems


def event_lines(jobs: list[Job]) -> tuple[int, int, list[str]]:
    """Lines in every event file (archived attempts too), the scripted corrupt ones, and any other that fails."""
    total, garbage, bad = 0, 0, []
    for job in jobs:
        for path in [job.layout.events, *job.layout.root.glob("attempts/*/events.jsonl")]:
            if not path.exists():
                continue
            for line in path.read_bytes().splitlines():
                total += 1
                if line == GARBAGE:
                    garbage += 1
                    continue
                try:
                    event = parse_event(line)
                except ValueError:
                    bad.append(f"{path}: a line that does not parse: {line[:80]!r}")
                    continue
                if isinstance(event, Error) and event.error_type == "internal":
                    bad.append(f"{path}: an internal error event: {event.message}")
    return total, garbage, bad


def _overlaps(jobs: list[Job]) -> int:
    """Attempts that began before the previous one's last event: two workers at once on one device."""
    attempts = _attempts(jobs)
    return sum(later[0] < earlier[1] for earlier, later in itertools.pairwise(attempts))


def _attempts(jobs: list[Job]) -> list[list[float]]:
    attempts = []  # (first event time, last event time) of every attempt
    for job in jobs:
        for event in read_events(job.layout.events):
            if isinstance(event, Started):
                attempts.append([event.time, event.time])
            elif attempts:
                attempts[-1][1] = event.time
    return sorted(attempts)


def _handoffs(jobs: list[Job]) -> list[float]:
    """Seconds from the last event of one attempt to the first event of the next one on the device:
    the runner noticing the exit, recording it, claiming the next job, and that worker's Python start-up."""
    attempts = _attempts(jobs)
    return [later[0] - earlier[1] for earlier, later in itertools.pairwise(attempts) if later[0] > earlier[1]]


# -- the soak ------------------------------------------------------------------------------------------------


def soak(count: int, seed: int) -> dict:
    rng = random.Random(seed)
    home = Path(tempfile.mkdtemp(prefix="queue-soak-"))
    os.environ["LORA_STUDIO_HOME"] = str(home)
    data = home / "data.jsonl"
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    data.write_text(json.dumps({"messages": messages}) + "\n")
    from tests.tiny_models import build_tiny_model

    model = build_tiny_model("llama", home / "tiny-llama")
    load_before = os.getloadavg()
    faults: list[FaultJob] = []
    try:
        with JobQueue() as queue:
            steps, scripts = add_jobs(queue, count, data, rng)
            faults = add_fault_jobs(queue, home, data, model, rng)
            by_id = {fault.job_id: fault for fault in faults}
            steps |= {fault.job_id: fault.steps for fault in faults}
            quiet, done, actions, kills, errors = threading.Event(), threading.Event(), Counter(), Counter(), []
            threads = [
                threading.Thread(
                    target=runner_shifts,
                    args=(home / "runners.log", random.Random(seed + 1), quiet, done, kills, errors),
                ),
                threading.Thread(target=chaos, args=(random.Random(seed + 2), quiet, by_id, kills, set())),
                threading.Thread(target=user, args=(random.Random(seed + 3), quiet, done, set(by_id), actions)),
                threading.Thread(target=fault_user, args=(faults, done, kills, errors)),
            ]
            began = time.time()
            for thread in threads:
                thread.start()
            _wait_until_settled(queue, faults, began)
            quiet.set()  # no more kills or random actions; the user resumes what it still holds
            _wait_until_settled(queue, faults, began)
            elapsed = time.time() - began
            done.set()
            for thread in threads:
                thread.join(60)
            jobs = queue.jobs()
            problems = errors + [p for job in jobs for p in check(job, steps[job.id], scripts.get(job.id))]
            lines, garbage, bad_lines = event_lines(jobs)
            problems += bad_lines
            with sqlite3.connect(queue.path) as db:
                integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
            overlaps = _overlaps(jobs)
            problems += [f"fault {f.kind} (job {f.job_id}): saw {f.seen!r}: {f.message}" for f in faults if not f.ok]
            states = Counter(job.state for job in jobs)
            attempts = sum(job.attempt for job in jobs)
            causes = Counter(job.cause or job.error_type for job in jobs if job.state in ("failed", "interrupted"))
            gaps = _handoffs(jobs)
            reattaches = (home / "runners.log").read_text(errors="replace").count("reattached")
    finally:
        for fault in faults:
            if fault.kind == "permission":
                _unlock(fault.folder)
    if problems or integrity != "ok" or overlaps:
        print(f"kept the data folder for inspection: {home}")
    else:
        shutil.rmtree(home)
    return {
        "jobs": count + len(faults),
        "standin_jobs": count,
        "seed": seed,
        "seconds": elapsed,
        "states": dict(states),
        "attempts": attempts,
        "actions": dict(actions),
        "kills": dict(kills),
        "reattaches": reattaches,
        "causes": dict(causes),
        "handoff_median_s": statistics.median(gaps),
        "handoff_p95_s": statistics.quantiles(gaps, n=20)[-1],
        "problems": problems,
        "lost": count + len(faults) - len(jobs),
        "stuck": sum(job.state not in FINISHED or job.state == "interrupted" for job in jobs),
        "overlaps": overlaps,
        "integrity": integrity,
        "lines": lines,
        "garbage_lines": garbage,
        "faults": faults,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def _wait_until_settled(queue: JobQueue, faults: list[FaultJob], began: float, limit_s: float = 1800) -> None:
    """Until nothing is queued, running or interrupted and every fault is through, twice a second apart."""
    calm = 0
    while time.time() - began < limit_s and calm < 2:
        busy = any(job.state not in FINISHED or job.state == "interrupted" for job in queue.jobs())
        calm = 0 if busy or any(fault.phase != "done" for fault in faults) else calm + 1
        time.sleep(1.0)


def report(result: dict) -> str:
    rate = result["jobs"] / result["seconds"] * 60
    kills = result["kills"]
    lines = [
        "# Queue soak",
        "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "- Load average (1, 5, 15 min) before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(
            *result["load_before"], *result["load_after"]
        ),
        f"- Command: `python bench/queue_soak.py --jobs {result['standin_jobs']} --seed {result['seed']}`",
        f"- Workers: the stand-in (`backend.jobs.standin`, 3-8 steps of {STANDIN_STEP_S} s) for "
        f"{result['standin_jobs']} jobs; the real training worker (tiny Llama, {REAL_STEPS} steps, a checkpoint "
        "every 4) for the disk, checkpoint and data faults. One device (cpu); runner processes killed with "
        "SIGKILL after 3-10 s each and replaced, workers killed with SIGKILL every 1-3 s",
        "",
        "| measure | value |",
        "|---|---|",
        f"| jobs | {result['jobs']} ({len(result['faults'])} with a fault) |",
        f"| wall time | {result['seconds']:.1f} s |",
        f"| throughput | {rate:.1f} jobs/min |",
        f"| worker starts (attempts) | {result['attempts']} |",
        f"| hand-off, one attempt's last event to the next one's first, median / p95 | "
        f"{result['handoff_median_s']:.2f} s / {result['handoff_p95_s']:.2f} s |",
        f"| kill -9: runners / workers | {kills.get('runner', 0)} / {kills.get('worker', 0)} |",
        f"| runners reattached to a running job | {result['reattaches']} |",
        f"| user actions | {', '.join(f'{k} {v}' for k, v in sorted(result['actions'].items()))} |",
        f"| final states | {', '.join(f'{k} {v}' for k, v in sorted(result['states'].items()))} |",
        f"| failure causes (final) | {', '.join(f'{k} {v}' for k, v in sorted(result['causes'].items()))} |",
        f"| lost jobs | {result['lost']} |",
        f"| stuck jobs | {result['stuck']} |",
        f"| attempts that overlapped another (a job run twice at once) | {result['overlaps']} |",
        f"| SQLite `integrity_check` | {result['integrity']} |",
        f"| event lines / lines that do not parse (each the stand-in's scripted corrupt line) | {result['lines']} / "
        f"{result['garbage_lines']} |",
        f"| inconsistent jobs or faults | {len(result['problems'])} |",
        "",
        "## Faults",
        "",
        "| fault | job | what the user must see | seen | as expected | after the fix |",
        "|---|---|---|---|---|---|",
    ]
    for fault in result["faults"]:
        lines.append(
            f"| {FAULT_TEXT[fault.kind]} | {fault.job_id} | {FAULTS[fault.kind][2]} | {fault.seen} | "
            f"{'yes' if fault.ok else 'NO'} | {fault.final or 'not fixed'} |"
        )
    lines += ["", "Messages the user read, one per fault kind:", ""]
    shown: set[str] = set()
    for fault in result["faults"]:
        if fault.kind not in shown and fault.message:
            shown.add(fault.kind)
            lines.append(f"- {fault.kind}: {fault.message[:400]}")
    lines += [
        "",
        "A job's final state is the last of its attempts: a killed worker's job is `interrupted` until the user "
        "resumes it, so almost every job ends `succeeded` at its full step count; `failed` ones are the stand-in's "
        "scripted out-of-memory failures, `cancelled` ones the user's cancels (some while queued, no worker started). "
        "A runner killed between claiming a job and starting its worker, or a worker killed before its first "
        "event, leaves an attempt without a `started` event.",
        "",
    ]
    lines += [f"- {problem}" for problem in result["problems"][:50]]
    return "\n".join(lines) + "\n"


def main() -> int:
    if sys.argv[1:] == ["--runner"]:
        run_runner()
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="stand-in jobs; the fault jobs come on top")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = soak(args.jobs, args.seed)
    text = report(result)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    ok = not (result["problems"] or result["lost"] or result["stuck"] or result["overlaps"])
    return 0 if ok and result["integrity"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
