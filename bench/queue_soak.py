"""Soak test of the job queue: many short jobs, random cancels and pauses, crashes, runner restarts.

    python bench/queue_soak.py [--jobs 200] [--seed 0] [--out bench/results/queue_soak.md]

Jobs run through real runners and real worker subprocesses (the stand-in worker,
``backend.jobs.standin``, which speaks the job protocol without training), in a
throwaway data folder. While they run, a "user" cancels and pauses jobs at
random and resumes the paused ones; some jobs are scripted to fail, crash
(SIGKILL, SIGSEGV) or write a corrupt event line; the runner is stopped and a
new one started every few seconds, which must reattach to the job in flight.

At the end every job must be in a finished state, with files that agree with
it: one ``started`` event per attempt, the last attempt's ``done`` matching the
state, an adapter for every success, a checkpoint at the step where a cancel
stopped, no leftover cancel request and no live worker. The bar is zero lost
or stuck jobs.
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
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.core.events import Done, Error, Started, read_events
from backend.core.spec import JobSpec
from backend.core.tail import EventTail
from backend.jobs.job import FINISHED, Job
from backend.jobs.process import ProcessId
from backend.jobs.queue import JobQueue
from backend.jobs.runner import Runner, RunnerSettings
from backend.training.checkpoints import checkpoint_step, latest_checkpoint

STANDIN = (sys.executable, "-m", "backend.jobs.standin")
SCRIPTS = [  # (share of jobs, standin.json)
    (0.05, {"fail_at": 2, "error_type": "out_of_memory"}),
    (0.04, {"die_at": 2, "signal": "SIGKILL"}),
    (0.02, {"die_at": 2, "signal": "SIGSEGV"}),
    (0.04, {"garbage_at": 1}),
    (0.02, {"ignore_stop": True}),
]


def add_jobs(queue: JobQueue, count: int, data: Path, rng: random.Random) -> None:
    for index in range(count):
        spec = JobSpec.from_dict(
            {
                "name": f"soak-{index}",
                "data": {"path": str(data)},
                "training": {"max_steps": rng.randint(3, 8)},
                "schedule": {"save_every_steps": 2, "keep_checkpoints": 2},
            }
        )
        added = queue.add(spec, checks=[])
        assert added.job is not None
        roll, threshold = rng.random(), 0.0
        for share, script in SCRIPTS:
            threshold += share
            if roll < threshold:
                (added.job.folder / "standin.json").write_text(json.dumps(script))
                break


class _Reattaches(logging.Handler):
    """Counts the runner's "reattached" log lines: a restart that found a job in flight."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += "reattached" in record.getMessage()


def runner_shifts(settings: RunnerSettings, done: threading.Event, shift_s: float, restarts: list[float]) -> None:
    """Runners one after another on the same device, each stopped after ``shift_s`` while a job may run."""
    while not done.is_set():
        stop = threading.Event()
        timer = threading.Timer(shift_s, stop.set)
        timer.start()
        with JobQueue() as queue:
            Runner(queue, settings).run(stop=stop, wait=True)
        timer.cancel()
        restarts.append(time.time())
        if done.is_set():
            return


def user(rng: random.Random, done: threading.Event, actions: Counter) -> None:
    """Cancels and pauses at random; resumes what it paused, at the latest when told to stop."""
    paused: list[tuple[float, int]] = []
    with JobQueue() as queue:
        while not done.is_set() or paused:
            if done.is_set():
                paused = [(0.0, job_id) for _, job_id in paused]
            time.sleep(rng.uniform(0.05, 0.4))
            jobs = {job.id: job for job in queue.jobs("queued", "running")}
            for when, job_id in list(paused):
                job = jobs.get(job_id) or queue.get(job_id)
                if job is None or job.state in ("succeeded", "failed"):
                    paused.remove((when, job_id))
                elif time.time() >= when and (job.paused or job.state in ("cancelled", "interrupted")):
                    paused.remove((when, job_id))
                    actions["resume" if queue.resume(job_id).ok else "resume refused"] += 1
            running = [job for job in jobs.values() if job.state == "running" and not job.request]
            if not jobs or done.is_set():
                continue
            pick = rng.random()
            if pick < 0.08:
                job = rng.choice(list(jobs.values()))
                actions["cancel" if queue.cancel(job.id).ok else "cancel refused"] += 1
            elif pick < 0.16 and running:
                job = rng.choice(running)
                if queue.pause(job.id).ok:
                    actions["pause"] += 1
                    paused.append((time.time() + rng.uniform(0.5, 3.0), job.id))
            elif pick < 0.20 and len(jobs) > 2:
                queued = [job for job in jobs.values() if job.state == "queued"]
                if queued:
                    actions["move" if queue.move(rng.choice(queued).id, 1).ok else "move refused"] += 1


def check(job: Job) -> list[str]:
    """Every way this job's row and folder could disagree."""
    problems = []
    if job.state not in FINISHED:
        return [f"job {job.id} is stuck: {job.label}"]
    events = list(read_events(job.layout.events))
    starts = sum(isinstance(event, Started) for event in events)
    if starts != job.attempt:
        problems.append(f"job {job.id}: {starts} started events for {job.attempt} attempts")
    last = EventTail(job.layout.events, job.events_offset).read() if job.attempt else []
    done = next((event for event in reversed(last) if isinstance(event, Done)), None)
    if job.state == "succeeded":
        if not (done and done.status == "succeeded" and (job.layout.adapter / "adapter_config.json").is_file()):
            problems.append(f"job {job.id}: succeeded without a done event and an adapter")
    elif job.state == "failed":
        errors = [event for event in last if isinstance(event, Error)]
        if not (done and done.status == "failed" and errors and errors[-1].error_type == job.error_type):
            problems.append(f"job {job.id}: failed, but the events say otherwise")
    elif job.state == "interrupted":
        if done is not None or not job.cause:
            problems.append(f"job {job.id}: interrupted with a done event or no cause")
    elif job.state == "cancelled" and job.attempt and done is not None and done.step:
        checkpoint = latest_checkpoint(job.layout.checkpoints)
        if checkpoint is None or checkpoint_step(checkpoint) != done.step:
            problems.append(f"job {job.id}: cancelled at step {done.step} without a checkpoint of it")
    if job.layout.cancel_request.exists():
        problems.append(f"job {job.id}: a cancel request was left behind")
    if job.pid and job.pid_created and ProcessId(job.pid, job.pid_created).alive():
        problems.append(f"job {job.id}: its worker still runs")
    return problems


def soak(count: int, seed: int, shift_s: float) -> dict:
    rng = random.Random(seed)
    home = Path(tempfile.mkdtemp(prefix="queue-soak-"))
    os.environ["LORA_STUDIO_HOME"] = str(home)
    data = home / "data.jsonl"
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    data.write_text(json.dumps({"messages": messages}) + "\n")
    settings = RunnerSettings(
        device="cpu", worker_command=(*STANDIN, "--step-s", "0.02"), poll_s=0.05, term_after_s=3.0, kill_after_s=6.0
    )
    load_before = os.getloadavg()
    reattaches = _Reattaches()
    runner_log = logging.getLogger("backend.jobs.runner")
    runner_log.addHandler(reattaches)
    runner_log.setLevel(logging.INFO)
    with JobQueue() as queue:
        add_jobs(queue, count, data, rng)
        quiet, done, actions, restarts = threading.Event(), threading.Event(), Counter(), []
        began = time.time()
        runners = threading.Thread(target=runner_shifts, args=(settings, done, shift_s, restarts), name="runners")
        person = threading.Thread(target=user, args=(random.Random(seed + 1), quiet, actions), name="user")
        runners.start()
        person.start()
        _wait_until_finished(queue, began)
        quiet.set()  # the user resumes what it still holds paused, then leaves
        person.join()
        _wait_until_finished(queue, began)
        elapsed = time.time() - began
        done.set()
        runners.join(60)
        jobs = queue.jobs()
        problems = [problem for job in jobs for problem in check(job)]
        states = Counter(job.state for job in jobs)
        attempts = sum(job.attempt for job in jobs)
        causes = Counter(job.cause or job.error_type for job in jobs if job.state in ("failed", "interrupted"))
        gaps = _handoffs(jobs)
    if problems:
        print(f"kept the data folder for inspection: {home}")
    else:
        shutil.rmtree(home)
    return {
        "jobs": count,
        "seed": seed,
        "seconds": elapsed,
        "states": dict(states),
        "attempts": attempts,
        "actions": dict(actions),
        "runner_restarts": len(restarts),
        "reattaches": reattaches.count,
        "causes": dict(causes),
        "handoff_median_s": statistics.median(gaps),
        "handoff_p95_s": statistics.quantiles(gaps, n=20)[-1],
        "problems": problems,
        "lost": count - len(jobs),
        "stuck": sum(job.state not in FINISHED for job in jobs),
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def _wait_until_finished(queue: JobQueue, began: float, limit_s: float = 1800) -> None:
    while time.time() - began < limit_s and not all(job.state in FINISHED for job in queue.jobs()):
        time.sleep(0.5)


def _handoffs(jobs: list[Job]) -> list[float]:
    """Seconds from the last event of one attempt to the first event of the next one on the device:
    the runner noticing the exit, recording it, claiming the next job, and that worker's Python start-up."""
    attempts = []  # (first event time, last event time) of every attempt
    for job in jobs:
        for event in read_events(job.layout.events):
            if isinstance(event, Started):
                attempts.append([event.time, event.time])
            elif attempts:
                attempts[-1][1] = event.time
    attempts.sort()
    return [later[0] - earlier[1] for earlier, later in itertools.pairwise(attempts) if later[0] > earlier[1]]


def report(result: dict) -> str:
    rate = result["jobs"] / result["seconds"] * 60
    lines = [
        "# Queue soak",
        "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "- Load average (1, 5, 15 min) before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(
            *result["load_before"], *result["load_after"]
        ),
        f"- Command: `python bench/queue_soak.py --jobs {result['jobs']} --seed {result['seed']}`",
        "- Worker: the stand-in (`backend.jobs.standin`, 3-8 steps of 20 ms); one device (cpu); "
        "the runner stopped and a new one started every few seconds",
        "",
        "| measure | value |",
        "|---|---|",
        f"| jobs | {result['jobs']} |",
        f"| wall time | {result['seconds']:.1f} s |",
        f"| throughput | {rate:.1f} jobs/min |",
        f"| worker starts (attempts) | {result['attempts']} |",
        f"| hand-off, one attempt's last event to the next one's first, median / p95 | "
        f"{result['handoff_median_s']:.2f} s / {result['handoff_p95_s']:.2f} s |",
        f"| runner restarts / reattached to a running job | {result['runner_restarts']} / {result['reattaches']} |",
        f"| user actions | {', '.join(f'{k} {v}' for k, v in sorted(result['actions'].items()))} |",
        f"| final states | {', '.join(f'{k} {v}' for k, v in sorted(result['states'].items()))} |",
        f"| failure causes | {', '.join(f'{k} {v}' for k, v in sorted(result['causes'].items()))} |",
        f"| lost jobs | {result['lost']} |",
        f"| stuck jobs | {result['stuck']} |",
        f"| inconsistent jobs | {len(result['problems'])} |",
        "",
    ]
    lines += [
        "Cancelled jobs include those cancelled while queued (no worker started). A `lost` cause, when it "
        "appears, is an interrupted job whose worker died while the runner watching it had reattached after a "
        "restart, so no runner was its parent and the exit status is unknown; `signal:*` are the scripted "
        "crashes seen by the parent runner.",
        "",
    ]
    lines += [f"- {problem}" for problem in result["problems"][:50]]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shift", type=float, default=8.0, help="seconds each runner runs before the next takes over")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = soak(args.jobs, args.seed, args.shift)
    text = report(result)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    ok = not result["problems"] and not result["lost"] and not result["stuck"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
