"""How long a job's event takes to show on the Jobs and Monitor pages, over a real training run.

    python bench/ui_latency.py [--steps 200] [--out bench/results/ui_latency.md]

End to end, as the studio runs: a throwaway data folder and queue, a tiny Llama (built in a
child process, like the tests', so this GUI process never loads torch) on the tests' colour task,
a real runner (``lora-studio queue run``, started as the window starts it) and the real worker
training it. In this process the Jobs and Monitor pages share one session, both shown (offscreen).
Two jobs run: the first to its end, the second cancelled from the Jobs page after a few steps;
then a few short jobs, each one more start and end.

A timer looks at the pages' widgets every 2 ms and notes when each thing first shows:

- progress: the Jobs table's progress text and the Monitor's progress bar reach step k, against
  the worker's ``progress`` event for step k (its ``time``);
- state: "running" against the runner's claim in the queue (``started_at``); "succeeded" and
  "cancelled" against the worker's ``done`` event; the Jobs page's actions included (Delete enabled
  and Cancel not, once the job has ended).

The queue's own record of each end (``ended_at``, written after the worker has exited and the
runner noticed) is reported beside it: what a page that waited for the record would lag.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.core.events import Done, Progress, read_events  # noqa: E402
from backend.core.spec import JobSpec  # noqa: E402
from backend.core.tail import EventTail  # noqa: E402
from backend.jobs.queue import JobQueue  # noqa: E402

SAMPLE_MS = 2
CANCEL_AT = 20
SHORT_STEPS = 10


def build_model(folder: Path) -> Path:
    """The tests' tiny Llama, built in a child process: torch stays out of this (GUI) process."""
    code = (
        "import sys; from pathlib import Path; from tests.tiny_models import build_tiny_model; "
        "print(build_tiny_model('llama', Path(sys.argv[1])))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(folder)], cwd=ROOT, check=True, capture_output=True)
    return Path(out.stdout.decode().strip().splitlines()[-1])


def new_spec(model: Path, data: Path, name: str, steps: int) -> JobSpec:
    return JobSpec.from_dict(
        {
            "name": name,
            "base_model": str(model),
            "quantization": {"mode": "none"},
            "training": {"max_steps": steps, "micro_batch_size": 4, "max_seq_length": 64},
            "data": {"path": str(data), "eval_split": 0.0},
            "schedule": {"save_every_steps": 10_000},
        }
    )


def spin(seconds: float, until: Callable[[], bool]) -> bool:
    """Run the event loop until ``until()`` or ``seconds`` pass; whether ``until`` came true."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    deadline = time.monotonic() + seconds
    done = [False]
    check = QTimer(interval=20)

    def look() -> None:
        if until():
            done[0] = True
            loop.quit()
        elif time.monotonic() > deadline:
            loop.quit()

    check.timeout.connect(look)
    check.start()
    loop.exec()
    check.stop()
    return done[0]


class Watcher:
    """Notes, every ``SAMPLE_MS``, the first time each step and state shows on each page (``time.time``)."""

    def __init__(self, jobs_page: object, monitor: object) -> None:
        from PySide6.QtCore import QTimer

        self.jobs_page, self.monitor = jobs_page, monitor
        self.job_id: int | None = None
        self.steps: dict[str, dict[int, float]] = {"Jobs": {}, "Monitor": {}}
        self.states: dict[tuple[str, str], float] = {}
        self.timer = QTimer(interval=SAMPLE_MS)
        self.timer.timeout.connect(self.look)

    def follow(self, job_id: int) -> None:
        self.job_id = job_id
        self.steps = {"Jobs": {}, "Monitor": {}}
        self.states = {}

    def look(self) -> None:
        from app.job_model import PROGRESS, STATE

        if self.job_id is None:
            return
        now = time.time()
        page = self.jobs_page
        row = page.model.row_of(self.job_id)
        if row is None:
            return
        progress = page.model.index(row, PROGRESS).data() or ""
        jobs_step = int(progress.split("/")[0].replace(",", "")) if "/" in progress else 0
        monitor_step = self.monitor.progress.value() if self.monitor.job_id() == self.job_id else 0
        for name, step in (("Jobs", jobs_step), ("Monitor", monitor_step)):
            seen = self.steps[name]
            for k in range(1, step + 1):
                seen.setdefault(k, now)
        actions = page.job_actions
        ended = actions.delete.isEnabled() and not actions.cancel.isEnabled()
        for state in ("running", "succeeded", "cancelled"):
            shown_jobs = page.model.index(row, STATE).data() == state and (state == "running" or ended)
            if shown_jobs:
                self.states.setdefault(("Jobs", state), now)
            if self.monitor.job_id() == self.job_id and self.monitor.state.text() == state:
                self.states.setdefault(("Monitor", state), now)


def machine() -> list[str]:
    import PySide6

    info = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "unknown CPU")
    return [
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"Machine: {platform.platform()}, {cpu}, {os.cpu_count()} CPUs; Qt platform `{os.environ['QT_QPA_PLATFORM']}`",
        f"Python {platform.python_version()}, PySide6 {PySide6.__version__}",
    ]


def summary(latencies: list[float]) -> str:
    ms = [x * 1000 for x in latencies]
    return f"{len(ms)} | {statistics.median(ms):.0f} | {max(ms):.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="steps of the job that runs to its end")
    parser.add_argument("--short", type=int, default=4, help=f"{SHORT_STEPS}-step jobs after those, for more ends")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ui_latency.md")
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    work = Path(tempfile.mkdtemp(prefix="lora-studio-latency-"))
    try:
        model = build_model(work / "tiny-llama")
        app = QApplication(sys.argv[:1])
        assert "torch" not in sys.modules, "the GUI process must not load torch"
        loads = [os.getloadavg()]
        runs = {}
        for mode in ("watch", "poll"):
            home = work / mode
            os.environ["LORA_STUDIO_HOME"] = str(home)  # the runner the window starts inherits it
            try:
                runs[mode] = measure(args, app, home, model, poll_only=mode == "poll")
            finally:
                stop_processes(home)
            loads.append(os.getloadavg())
        write_report(args, runs, loads)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def stop_processes(home: Path) -> None:
    with JobQueue(home / "queue.sqlite3", home / "jobs") as queue:
        runners = [runner.pid for runner in queue.runners() if runner.alive]
        workers = [job.pid for job in queue.jobs("running") if job.pid]
    for pid in runners:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def measure(args: argparse.Namespace, app: object, home: Path, model: Path, *, poll_only: bool) -> dict:
    """One run of two jobs; ``poll_only`` silences the state's file watcher, leaving the pages' timers alone."""
    from app.jobs_page import JobsPage
    from app.monitor_page import MonitorPage
    from app.session import Session
    from app.training_job import queue_spec
    from backend.jobs.runner import ensure_runner
    from tests.datasets import write_colour_task

    home.mkdir(parents=True)
    data = write_colour_task(home / "colours.jsonl", 400, seed=1)
    session = Session(home)
    if poll_only:
        session.queue_state()._watcher.blockSignals(True)  # the comparison this bench makes: the timers alone
    jobs_page, monitor = JobsPage(session), MonitorPage(session)
    for page in (jobs_page, monitor):
        page.resize(1280, 800)
        page.show()
    watcher = Watcher(jobs_page, monitor)
    watcher.timer.start()
    cpu_before = time.process_time()
    wall_before = time.monotonic()

    queue = session.queue_state().queue()
    rows: dict[str, dict[str, list[float]]] = {"Jobs": {}, "Monitor": {}}
    records: list[float] = []
    plan = [("finishes", args.steps, False), ("cancelled", 10_000, True)]
    plan += [(f"short-{n}", SHORT_STEPS, False) for n in range(1, args.short + 1)]
    for name, steps, cancel in plan:
        job, _ = queue_spec(queue, new_spec(model, data, name, steps), start=False, start_runner=ensure_runner)
        assert job is not None
        session.job_selected.emit(job.id)
        watcher.follow(job.id)
        if cancel:
            spin(600, lambda: watcher.steps["Jobs"].get(CANCEL_AT) is not None)
            jobs_page.cancel_selected()
        end = "cancelled" if cancel else "succeeded"
        ended = spin(
            900,
            lambda end=end, job_id=job.id: (
                (("Monitor", end) in watcher.states and ("Jobs", end) in watcher.states)
                or getattr(queue.get(job_id), "state", "") in ("failed", "interrupted")
            ),
        )
        record = queue.get(job.id)
        if not ended or record is None or record.state in ("failed", "interrupted"):
            raise RuntimeError(f"job {job.id} did not end {end}: {record and record.label} {record and record.message}")
        spin(30, lambda job_id=job.id: getattr(queue.get(job_id), "ended_at", None) is not None)
        record = queue.get(job.id)
        assert record is not None and record.started_at is not None and record.ended_at is not None
        events = list(read_events(job.layout.events))
        progress = {e.step: e.time for e in events if isinstance(e, Progress)}
        done = next(e for e in events if isinstance(e, Done))
        records.append(record.ended_at - done.time)
        for page_name in ("Jobs", "Monitor"):
            seen = watcher.steps[page_name]
            rows[page_name].setdefault("progress", []).extend(seen[k] - t for k, t in progress.items() if k in seen)
            rows[page_name].setdefault("running (from the runner's claim)", []).append(
                watcher.states[(page_name, "running")] - record.started_at
            )
            rows[page_name].setdefault("ended (from the done event)", []).append(
                watcher.states[(page_name, end)] - done.time
            )
        print(name, flush=True)
    cpu_share = (time.process_time() - cpu_before) / (time.monotonic() - wall_before)
    watcher.timer.stop()
    costs = look_costs(queue, home)
    for page in (jobs_page, monitor):
        page.close()
    return {"rows": rows, "records": records, "cpu": cpu_share, "costs": costs}


def look_costs(queue: JobQueue, home: Path) -> tuple[float, float]:
    """Microseconds of the two reads a look makes when nothing changed: the change counter, a running job's file."""
    events = next((home / "jobs").glob("*/events.jsonl"))
    tail = EventTail(events, events.stat().st_size)
    counts = 2000
    started = time.perf_counter()
    for _ in range(counts):
        queue.changes()
    counter = (time.perf_counter() - started) / counts * 1e6
    started = time.perf_counter()
    for _ in range(counts):
        tail.read()
    return counter, (time.perf_counter() - started) / counts * 1e6


def write_report(args: argparse.Namespace, runs: dict[str, dict], loads: list[tuple[float, ...]]) -> None:
    from app.queue_state import TICK_MS

    watch = runs["watch"]
    records = [seconds for run in runs.values() for seconds in run["records"]]
    lines = [
        "# From a job's event to the Jobs and Monitor pages",
        "",
        f"`python bench/ui_latency.py --steps {args.steps} --short {args.short}`; its docstring describes the run.",
        "",
        *(f"- {line}" for line in machine()),
        "- Load average (1, 5, 15 min) before, between and after the runs: "
        + "; ".join(" ".join(f"{v:.2f}" for v in load) for load in loads),
        f"- watch: as shipped, a file-system watcher on the queue's database and the running job's events file "
        f"makes a look at once, and the pages' timers look every {TICK_MS} ms; poll: the same with the watcher "
        f"silenced, the timers alone. Widgets sampled every {SAMPLE_MS} ms",
        f"- This GUI process used {watch['cpu']:.0%} (watch) and {runs['poll']['cpu']:.0%} (poll) of one core, "
        "the 2 ms sampler included",
        f"- One look with nothing new: the queue's change counter {watch['costs'][0]:.0f} µs, a running job's "
        f"events file {watch['costs'][1]:.0f} µs",
        "- The queue recorded each end "
        + ", ".join(f"{seconds:.1f} s" for seconds in records)
        + " after the worker's done event (the worker exits, then the runner notices); the pages do not wait for it",
        "",
        "Times in ms from the event to the widget showing it.",
        "",
        "| run | page | what | events | median | max |",
        "|---|---|---|---|---|---|",
    ]
    for mode, run in runs.items():
        for page, kinds in run["rows"].items():
            for kind, latencies in kinds.items():
                lines.append(f"| {mode} | {page} | {kind} | {summary(latencies)} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
