"""The Monitor page: charts rebuilt from a job's events file, then followed while a real stand-in worker writes it."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtWidgets import QLabel, QPushButton
from pytestqt.qtbot import QtBot

from app.jobs_page import JobsPage
from app.monitor_page import NOTHING_RECORDED, MonitorPage
from app.session import Session
from backend.core.events import EventSink, GpuSample, Metric, Telemetry
from backend.jobs.queue import JobQueue
from tests.qt.charts import drawn_x
from tests.qt.queue_pages.conftest import train_metrics
from tests.queue_support import Processes, add, run_once
from widgets.units import GIB

LAG_BOUND_S = 0.5
"""Generous: the machine that runs the tests is shared. bench/event_loop_lag.py measures it properly."""


def make_monitor(qtbot: QtBot, session: Session) -> MonitorPage:
    page = MonitorPage(session, follow_ms=50)
    qtbot.addWidget(page)
    page.resize(1280, 800)
    page.show()
    qtbot.waitExposed(page)
    return page


def test_says_what_to_do_until_a_job_is_selected(qtbot: QtBot, session: Session) -> None:
    page = make_monitor(qtbot, session)
    assert "No job selected" in page.empty_text.text() and page.empty_text.isVisible()
    with qtbot.waitSignal(session.show_page, timeout=1000) as asked:
        qtbot.mouseClick(page.findChild(QPushButton), Qt.MouseButton.LeftButton)
    assert asked.args == ["Jobs"]


def test_charts_are_rebuilt_from_the_whole_events_file_of_a_finished_job(
    qtbot: QtBot, session: Session, queue: JobQueue, tmp_path: Path
) -> None:
    job = add(queue, tmp_path, "finished", steps=40, save_every=100)
    run_once(queue, step_s=0.005)
    # What a real worker adds and the stand-in does not: evaluations and telemetry with a GPU.
    sink = EventSink(job.layout.events, None)
    for step in (20, 40):
        sink.emit(Metric(step=step, split="eval", values={"eval_loss": 1.0 / step}))
    start = time.time()
    for sample in range(5):
        gpu = GpuSample(
            index=0, name="Test GPU", utilization_percent=90, memory_used_bytes=(10 + sample) * GIB,
            memory_total_bytes=24 * GIB, temperature_c=60, power_w=300,
        )  # fmt: skip
        sink.emit(
            Telemetry(
                time=start + 2 * sample, cpu_percent=50, ram_used_bytes=8 * GIB, ram_total_bytes=32 * GIB,
                process_rss_bytes=2 * GIB, gpus=[gpu],
            )
        )  # fmt: skip
    sink.close()
    metrics = train_metrics(job.layout.events)
    assert len(metrics) == 40

    page = make_monitor(qtbot, session)
    session.job_selected.emit(job.id)
    loss = page.charts["loss"]
    qtbot.waitUntil(lambda: len(drawn_x(loss.raw_curve("train"))) == len(metrics), timeout=10_000)
    np.testing.assert_array_equal(drawn_x(loss.raw_curve("train")), [m.step for m in metrics])
    np.testing.assert_array_equal(drawn_x(loss.raw_curve("eval")), [20, 40])
    page.charts["lr"].flush()
    assert len(drawn_x(page.charts["lr"].raw_curve("lr"))) == 40
    assert page.progress.format() == "step 40 of 40" and page.state.text() == "succeeded"

    assert not page.gpu_grid.isHidden() and page.no_gpu.isHidden()
    memory = page.charts["gpu_mem"]
    memory.flush()
    _x, used = memory.raw_curve("gpu0").getOriginalDataset()
    np.testing.assert_allclose(used, [10, 11, 12, 13, 14])  # plotted in GiB
    assert len(drawn_x(memory.raw_curve("gpu0_total"))) == 5
    assert "GPU 0 (Test GPU)" in page.system.text() and page.system.text().startswith("Last measured")
    tokens = page.charts["tokens"]  # the stand-in reports no speed: the chart says so
    assert tokens.plot_widget().isHidden() and any(
        label.text() == NOTHING_RECORDED for label in tokens.findChildren(QLabel)
    )

    # A GUI opened later (or restarted) shows the same charts from the file alone.
    page.close()
    again = make_monitor(qtbot, session)
    assert again.job_id() == job.id
    qtbot.waitUntil(lambda: len(drawn_x(again.charts["loss"].raw_curve("train"))) == len(metrics), timeout=10_000)


def test_new_points_arrive_live_while_a_standin_worker_streams(
    qtbot: QtBot, session: Session, queue: JobQueue, processes: Processes, tmp_path: Path
) -> None:
    job = add(queue, tmp_path, "live", steps=100, save_every=1000)
    page = make_monitor(qtbot, session)
    session.job_selected.emit(job.id)
    assert page.progress.format() == "not started"
    processes.runner("--device", "cpu", step_s=0.05)
    curve = page.charts["loss"].raw_curve("train")
    counts: list[int] = []

    def ended() -> bool:
        counts.append(len(drawn_x(curve)))
        return page.job is not None and page.job.state == "succeeded"

    qtbot.waitUntil(ended, timeout=60_000)
    growing = sorted({count for count in counts if 0 < count < 100})
    assert len(growing) >= 5, counts  # drawn again and again while the job ran, not once at its end
    qtbot.waitUntil(lambda: len(drawn_x(curve)) == 100, timeout=5000)
    assert len(drawn_x(curve)) == len(train_metrics(job.layout.events))
    assert page.progress.format() == "step 100 of 100"


def test_the_event_loop_stays_responsive_while_a_job_streams_metrics_at_20_hz(
    qtbot: QtBot, session: Session, queue: JobQueue, processes: Processes, tmp_path: Path
) -> None:
    job = add(queue, tmp_path, "streaming", steps=100, save_every=1000)
    jobs = JobsPage(session)
    monitor = MonitorPage(session)
    for page in (jobs, monitor):
        qtbot.addWidget(page)
        page.resize(1280, 800)
        page.show()
    jobs.select_job(job.id)
    processes.runner("--device", "cpu", step_s=0.05)  # a step, a progress and a metric event every 50 ms
    qtbot.waitUntil(lambda: monitor.job is not None and (monitor.job.step or 0) >= 5, timeout=30_000)

    lags: list[float] = []
    clock = QElapsedTimer()
    probe = QTimer(interval=10, timerType=Qt.TimerType.PreciseTimer)
    last = [0]

    def tick() -> None:
        now = clock.nsecsElapsed()
        lags.append(max(0.0, (now - last[0]) / 1e9 - 0.010))
        last[0] = now

    probe.timeout.connect(tick)
    clock.start()
    probe.start()
    try:
        qtbot.waitUntil(lambda: len(lags) >= 200 or monitor.job.state != "running", timeout=30_000)
    finally:
        probe.stop()
    lags = lags[1:]
    assert len(lags) >= 50
    print(f"lag over {len(lags)} ticks: p50 {statistics.median(lags) * 1e3:.1f} ms, max {max(lags) * 1e3:.1f} ms")
    assert max(lags) < LAG_BOUND_S
