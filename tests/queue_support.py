"""Helpers for the queue tests: specs, stand-in runners, real runner processes, and waiting.

No tests here. Run as a module it is a runner process that uses the stand-in
worker, for the tests that kill or race real runner processes:

    python -m tests.queue_support --device cpu [--once] [--step-s 0.05]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from backend.core.spec import JobSpec
from backend.jobs.job import Job
from backend.jobs.queue import JobQueue
from backend.jobs.runner import Runner, RunnerSettings
from tests.datasets import write_colour_task

REPO = Path(__file__).resolve().parent.parent


def standin_command(step_s: float = 0.02) -> tuple[str, ...]:
    return (sys.executable, "-m", "backend.jobs.standin", "--step-s", str(step_s))


def standin_settings(step_s: float = 0.02, **overrides: object) -> RunnerSettings:
    values = {"device": "cpu", "worker_command": standin_command(step_s), "poll_s": 0.05, "heartbeat_s": 0.5}
    return RunnerSettings(**{**values, **overrides})


def spec(tmp_path: Path, name: str = "job", steps: int = 10, save_every: int = 3, model: str = "default") -> JobSpec:
    data = tmp_path / "colours.jsonl"
    if not data.exists():
        write_colour_task(data, 40)
    return JobSpec.from_dict(
        {
            "name": name,
            "base_model": model,
            "data": {"path": str(data)},
            "training": {"max_steps": steps},
            "schedule": {"save_every_steps": save_every},
        }
    )


def add(queue: JobQueue, tmp_path: Path, name: str = "job", script: dict | None = None, **spec_args: object) -> Job:
    """Queue a job; ``script`` becomes its standin.json (a scripted failure)."""
    added = queue.add(spec(tmp_path, name, **spec_args))
    assert added.job is not None, added.checks
    if script is not None:
        (added.job.folder / "standin.json").write_text(json.dumps(script))
    return added.job


def run_once(queue: JobQueue, **settings: object) -> None:
    """An in-process runner until nothing is left to start."""
    Runner(queue, standin_settings(**settings)).run(once=True)


def wait_for(condition: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def job_state(queue: JobQueue, job_id: int) -> str:
    job = queue.get(job_id)
    assert job is not None
    return job.state


class Processes:
    """Runner processes a test starts, and the workers they launch; all are killed at the end."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.started: list[subprocess.Popen[bytes]] = []

    def runner(self, *args: str, standin: bool = True, step_s: float = 0.05) -> subprocess.Popen[bytes]:
        module = ["tests.queue_support", "--step-s", str(step_s)] if standin else ["backend.cli", "queue", "run"]
        env = {**os.environ, "LORA_STUDIO_HOME": str(self.home), "OMP_NUM_THREADS": "1"}
        process = subprocess.Popen(
            [sys.executable, "-m", *module, *args],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(process)
        return process

    def cleanup(self, queue: JobQueue) -> None:
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
        for job in queue.jobs("running"):
            if job.pid:
                try:
                    os.killpg(job.pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--step-s", type=float, default=0.05)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _n, _f: stop.set())
    with JobQueue() as queue:
        Runner(queue, standin_settings(args.step_s, device=args.device)).run(once=args.once, stop=stop)


if __name__ == "__main__":
    main()
