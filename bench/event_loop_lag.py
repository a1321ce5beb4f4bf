"""How late the GUI's event loop answers while a real job streams metrics at 20 Hz into the Jobs and Monitor pages.

    python bench/event_loop_lag.py [--seconds 30] [--out bench/results/event_loop_lag.md]

End to end, as the studio runs: a throwaway data folder and queue, a runner in its own
process driving the stand-in worker (``backend.jobs.standin``: a step, a ``progress`` and a
``metric`` event every 50 ms), and in this process a main window holding the real Jobs and
Monitor pages, which poll the queue and follow ``events.jsonl`` exactly as in the app. A
probe timer asks to fire every 10 ms; how late each tick comes is how long the loop was
busy elsewhere (or the OS ran something else). Runs, under the offscreen platform:

- idle: the window with both pages and a finished job selected, nothing streaming;
- monitor: the Monitor page shown, following a job that streams at 20 Hz, with a second
  process appending GPU telemetry every 2 s as the real worker does;
- jobs: the same, with the Jobs page shown (table, progress, its log following the job);
- rebuild: selecting a finished job whose file holds 100,000 steps (plus 50,000 telemetry
  samples): the whole file is read and charted, and the probe runs meanwhile.

Also run as ``--runner HOME`` and ``--telemetry EVENTS`` for its helper processes.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.core.events import DeviceInfo, Done, EventSink, GpuSample, Metric, Progress, Started, Telemetry  # noqa: E402
from backend.core.spec import JobSpec  # noqa: E402
from backend.jobs.outcome import Outcome  # noqa: E402
from backend.jobs.queue import JobQueue  # noqa: E402
from backend.jobs.runner import Runner, RunnerSettings  # noqa: E402
from bench.lag_probe import PROBE_MS, LagProbe  # noqa: E402

STEP_S = 0.05  # 20 Hz
HISTORY_STEPS = 100_000
GIB = 1024**3


# -- helper processes ---------------------------------------------------------------------------


def run_runner(home: Path) -> None:
    """A runner whose worker is the stand-in, until SIGTERM."""
    os.environ["LORA_STUDIO_HOME"] = str(home)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _n, _f: stop.set())
    command = (sys.executable, "-m", "backend.jobs.standin", "--step-s", str(STEP_S))
    with JobQueue() as queue:
        Runner(queue, RunnerSettings(device="cpu", worker_command=command, poll_s=0.05)).run(stop=stop)


def gpu_sample(t: float) -> GpuSample:
    return GpuSample(
        index=0,
        name="Bench GPU",
        utilization_percent=90 + 5 * math.sin(t / 7),
        memory_used_bytes=int((17.5 + 0.3 * math.sin(t / 50)) * GIB),
        memory_total_bytes=24 * GIB,
        temperature_c=70 + math.sin(t / 30),
        power_w=380 + 20 * math.sin(t / 3),
    )


def telemetry(t: float) -> Telemetry:
    return Telemetry(
        time=t,
        cpu_percent=35 + 10 * math.sin(t / 11),
        ram_used_bytes=12 * GIB,
        ram_total_bytes=32 * GIB,
        process_rss_bytes=6 * GIB,
        gpus=[gpu_sample(t)],
    )


def run_telemetry(events: Path) -> None:
    """Append a telemetry event with one GPU every 2 s, as the real worker's sampler does, until SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _n, _f: stop.set())
    sink = EventSink(events, None)
    while not stop.wait(2.0):
        sink.emit(telemetry(time.time()))
    sink.close()


# -- the data folder ----------------------------------------------------------------------------


def new_spec(data: Path, name: str, steps: int) -> JobSpec:
    return JobSpec.from_dict(
        {
            "name": name,
            "base_model": "default",
            "data": {"path": str(data)},
            "training": {"max_steps": steps},
            "schedule": {"save_every_steps": 100_000},
        }
    )


def write_history(events: Path, steps: int) -> int:
    """A finished run of ``steps`` steps of 1 s, with telemetry every 2 s; returns the train metric events."""
    sink = EventSink(events, None)
    t0 = time.time() - steps - 60
    sink.emit(Started(time=t0, job_kind="train", pid=1, versions={}, device=DeviceInfo(kind="cuda", name="Bench GPU")))
    for step in range(1, steps + 1):
        t = t0 + step
        sink.emit(
            Progress(time=t, step=step, total_steps=steps, epoch=step / steps, elapsed_s=step, eta_s=steps - step)
        )
        loss = 0.8 + 2 * math.exp(-step / 20_000) + 0.05 * math.sin(step * 12.9898)
        sink.emit(
            Metric(time=t, step=step, split="train", values={"loss": loss, "learning_rate": 2e-4, "grad_norm": 1.0})
        )
        if step % 2 == 0:
            sink.emit(telemetry(t))
    sink.emit(Done(time=t0 + steps + 1, status="succeeded", step=steps, duration_s=steps))
    sink.close()
    return steps


# -- measuring ----------------------------------------------------------------------------------


def spin(seconds: float, until: Callable[[], bool] | None = None) -> bool:
    """Run the event loop for ``seconds`` or until ``until()``; whether ``until`` came true."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    deadline = time.perf_counter() + seconds
    check = QTimer(interval=20)
    done = [False]

    def look() -> None:
        if until is not None and until():
            done[0] = True
            loop.quit()
        elif time.perf_counter() > deadline:
            loop.quit()

    check.timeout.connect(look)
    check.start()
    loop.exec()
    check.stop()
    return done[0]


def machine() -> list[str]:
    import numpy as np
    import pyqtgraph
    import PySide6

    info = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "unknown CPU")
    return [
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"Machine: {platform.platform()}, {cpu}, {os.cpu_count()} CPUs; Qt platform `{os.environ['QT_QPA_PLATFORM']}`",
        f"Python {platform.python_version()}, PySide6 {PySide6.__version__}, pyqtgraph {pyqtgraph.__version__}, "
        f"numpy {np.__version__}",
    ]


def write_report(path: Path, results: dict[str, dict], loads: list[tuple[float, ...]], notes: list[str]) -> None:
    before, after = (" ".join(f"{v:.2f}" for v in load) for load in (loads[0], loads[-1]))
    lines = [
        "# GUI event-loop lag while a job streams metrics at 20 Hz",
        "",
        "`python bench/event_loop_lag.py`; its docstring describes the runs.",
        "",
        *(f"- {line}" for line in machine()),
        f"- Load average (1, 5, 15 min) before: {before}; after: {after}",
        *(f"- {note}" for note in notes),
        "",
        f"Lag: how late a timer asking to fire every {PROBE_MS} ms fires (wall clock, so it includes time the OS",
        "gave to other processes). Busy: the CPU time this process used between two probe ticks, the lag an",
        "otherwise idle machine would show. CPU: this (GUI) process only, of one core. Times in ms.",
        "",
        "| run | seconds | job steps/s | points charted | CPU | lag p50 | lag p99 | lag max | busy p99 | busy max |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        rate = f"{r['rate']:.1f}" if "rate" in r else "—"
        lines.append(
            f"| {name} | {r['seconds']:.1f} | {rate} | {r.get('points', 0):,} | {r['cpu']:.0%} | "
            f"{r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | {r['busy_p99']:.1f} | {r['busy_max']:.1f} |"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


# -- the runs -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the 20 Hz monitor run lasts")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "event_loop_lag.md")
    parser.add_argument("--runner", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--telemetry", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.runner:
        run_runner(args.runner)
        return
    if args.telemetry:
        run_telemetry(args.telemetry)
        return

    home = Path(tempfile.mkdtemp(prefix="lora-studio-lag-"))
    os.environ["LORA_STUDIO_HOME"] = str(home)
    helpers: list[subprocess.Popen[bytes]] = []
    try:
        measure(args, home, helpers)
    finally:
        for process in helpers:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        with JobQueue(home / "queue.sqlite3", home / "jobs") as queue:
            for job in queue.jobs("running"):
                if job.pid:
                    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                        os.killpg(job.pid, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)


def measure(args: argparse.Namespace, home: Path, helpers: list[subprocess.Popen[bytes]]) -> None:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication, QStyle

    from app.jobs_page import JobsPage
    from app.main_window import MainWindow
    from app.monitor_page import MonitorPage
    from app.notifications import hook_up
    from app.session import Session

    data = home / "data.jsonl"
    messages = [{"role": "user", "content": "Colour of the sky?"}, {"role": "assistant", "content": "Blue."}]
    data.write_text("\n".join(json.dumps({"messages": messages}) for _ in range(20)) + "\n")
    queue = JobQueue(home / "queue.sqlite3", home / "jobs")
    history = queue.add(new_spec(data, "history-100k", HISTORY_STEPS)).job
    claimed = queue.claim("cpu")
    assert history is not None and claimed is not None and claimed.id == history.id
    started = time.perf_counter()
    history_metrics = write_history(history.layout.events, HISTORY_STEPS)
    queue.finish(claimed, Outcome("succeeded", step=HISTORY_STEPS, exit_code=0))
    size = history.layout.events.stat().st_size
    print(f"wrote a {size / 2**20:.0f} MiB history in {time.perf_counter() - started:.1f} s")
    steps = round((args.seconds + 30) / STEP_S)
    streaming = queue.add(new_spec(data, "streaming", steps)).job
    assert streaming is not None

    app = QApplication(sys.argv[:1])
    session = Session(home)
    window = MainWindow(QSettings(str(home / "settings.ini"), QSettings.Format.IniFormat))
    jobs_page, monitor = JobsPage(session, start_runner=lambda _q: None), MonitorPage(session)
    window.add_page("Jobs", jobs_page, window.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogDetailedView))
    window.add_page("Monitor", monitor, window.style().standardIcon(QStyle.StandardPixmap.SP_DesktopIcon))
    hook_up(window, jobs_page)
    window.resize(1280, 800)
    window.show()
    results: dict[str, dict] = {}
    loads = [os.getloadavg()]
    notes = [f"History file: {size / 2**20:.0f} MiB, {HISTORY_STEPS:,} steps"]

    # idle: a short finished job is selected (the 100k one is for the rebuild run)
    small = queue.add(new_spec(data, "small", 10)).job
    queue.cancel(small.id)
    session.job_selected.emit(small.id)
    window.show_page(1)
    spin(2)
    probe = LagProbe()
    probe.start()
    spin(10)
    results["idle"] = probe.stop()
    print("idle", results["idle"])

    # streaming: a runner process, and a telemetry writer once the worker has started
    helpers.append(
        subprocess.Popen([sys.executable, __file__, "--runner", str(home)], cwd=ROOT, stdin=subprocess.DEVNULL)
    )
    session.job_selected.emit(streaming.id)
    if not spin(60, lambda: monitor.job is not None and (monitor.job.step or 0) >= 20):
        sys.exit("the stand-in job did not start within 60 s")
    helpers.append(subprocess.Popen([sys.executable, __file__, "--telemetry", str(streaming.layout.events)], cwd=ROOT))
    for name, page, seconds in (("monitor", 1, args.seconds), ("jobs", 0, args.seconds / 2)):
        window.show_page(page)
        spin(1)
        loads.append(os.getloadavg())
        first = (monitor.follower.feed.events if monitor.follower.feed else 0, queue.get(streaming.id).step or 0)
        probe = LagProbe()
        probe.start()
        spin(seconds)
        result = probe.stop()
        window.show_page(1)
        spin(1)  # the monitor catches up with what it skipped while hidden
        step = queue.get(streaming.id).step or 0
        result["rate"] = (step - first[1]) / result["seconds"]  # steps (progress + metric events) per second
        result["points"] = len(monitor.charts["loss"].raw_curve("train").getOriginalDataset()[0])  # the loss points
        results[name] = result
        print(name, result)
    loads.append(os.getloadavg())
    queue.cancel(streaming.id)
    for process in helpers[1:]:
        process.terminate()

    # rebuild: select the 100k-step job and probe until every point is charted
    window.show_page(1)
    curve = monitor.charts["loss"].raw_curve("train")
    probe = LagProbe()
    probe.start()
    selected = time.perf_counter()
    session.job_selected.emit(history.id)

    def charted() -> bool:
        x = curve.getOriginalDataset()[0]
        return x is not None and len(x) == history_metrics

    if not spin(120, charted):
        sys.exit("the 100k-step history was not charted within 120 s")
    took = time.perf_counter() - selected
    result = probe.stop()
    result["points"] = history_metrics
    results["rebuild"] = result
    notes.append(f"Rebuild: {history_metrics:,} steps charted {took:.1f} s after the job was selected")
    print("rebuild", result, f"{took:.1f} s")
    loads.append(os.getloadavg())

    window.close()
    jobs_page.close()
    monitor.close()
    queue.close()
    del app
    notes.append(
        f"Stand-in job: one step of {STEP_S * 1000:.0f} ms sleep each (a progress and a metric event per step), "
        "job steps/s is the steps per second the queue recorded during the run (each step is two events)"
    )
    notes.append("Load averages during the runs: " + "; ".join(" ".join(f"{v:.2f}" for v in load) for load in loads))
    write_report(args.out, results, loads, notes)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
