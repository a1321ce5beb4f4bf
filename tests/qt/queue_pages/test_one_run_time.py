"""One duration: the Monitor, the Jobs page (table and summary), the notification and ``lora-studio queue show`` say the same labelled run
time of a job that a real (stand-in) worker ran, taken from its events by ``backend.core.run_time``."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.event_feed import EventFeed
from app.job_details import summary_html
from app.job_model import ENDED, JobTableModel
from app.monitor_page import MonitorPage
from app.notifications import ended_text
from app.session import Session
from backend.cli.main import main
from backend.core.events import DeviceInfo, Done, Progress, Started
from backend.core.run_time import read_run_time, run_time
from backend.jobs.queue import JobQueue
from tests.queue_support import add, run_once


def test_every_page_and_the_terminal_say_the_same_run_time(
    qtbot: QtBot, session: Session, queue: JobQueue, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = add(queue, tmp_path, "timed", steps=12, save_every=100)
    run_once(queue, step_s=0.1)
    finished = queue.get(job.id)
    ran = finished.run_time()
    assert finished.state == "succeeded" and ran is not None and ran.attempts == 1 and ran.job_s >= 1.2
    words = ran.words()
    assert words.startswith("ran ")

    monitor = MonitorPage(session, follow_ms=50)
    qtbot.addWidget(monitor)
    monitor.show()
    session.job_selected.emit(job.id)
    qtbot.waitUntil(lambda: words in monitor.facts.text().lower(), timeout=10_000)  # "Ran 1 s · cpu"

    model = JobTableModel()
    model.set_jobs([finished])
    assert words in model.data(model.index(0, ENDED), Qt.ItemDataRole.ToolTipRole)

    assert words in ended_text(finished)[1]
    assert words in summary_html(finished)

    assert main(["queue", "show", str(job.id)]) == 0
    assert f"run time    {words}" in capsys.readouterr().out


def test_the_monitor_s_feed_keeps_what_the_run_time_needs(tmp_path: Path) -> None:
    """Attempts paused, killed without a done event and running: the feed's events give the file's run time."""
    device = DeviceInfo(kind="cpu", name="test")
    started = [Started(time=at, job_kind="train", pid=1, device=device, versions={}) for at in (0.0, 100.0, 500.0)]
    events = [
        started[0], Progress(time=20.0, step=2, total_steps=9, elapsed_s=20.0),
        Done(time=30.0, status="paused", step=2, duration_s=30.0),
        started[1], Progress(time=140.0, step=4, total_steps=9, elapsed_s=40.0),  # then killed
        started[2], Progress(time=520.0, step=5, total_steps=9, elapsed_s=20.0),
    ]  # fmt: skip
    path = tmp_path / "events.jsonl"
    path.write_text("".join(event.model_dump_json() + "\n" for event in events))
    feed = EventFeed(path, lines=False)
    feed.read()
    ran = run_time(feed.boundaries, 560.0, running=True)
    assert ran == read_run_time(path, 560.0, running=True)
    assert ran is not None and (ran.job_s, ran.attempt_s, ran.attempts) == (30.0 + 40.0 + 60.0, 60.0, 3)
