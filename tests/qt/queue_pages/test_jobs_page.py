"""The Jobs page on a real SQLite queue, with real runner processes driving the stand-in worker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QModelIndex, QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox, QStackedWidget, QToolButton, QWidget
from pytestqt.qtbot import QtBot

from app.event_feed import EventFeed, event_line
from app.icons import studio_icon
from app.job_model import MESSAGE, NAME, PROGRESS, STATE, JobTableModel, ordinal
from app.jobs_page import JobsPage
from app.main_window import MainWindow
from app.notifications import JobNotifier, hook_up, queue_summary
from app.session import Session
from backend.core.events import Done, Error, EventSink, Metric, Progress
from backend.core.progress import duration_words, eta_seconds
from backend.jobs.queue import JobQueue
from tests.queue_support import Processes, add, run_once
from widgets.window_timer import WindowTimer

RUNNER_STEP_S = 0.05


def make_page(qtbot: QtBot, session: Session, **kwargs: object) -> JobsPage:
    page = JobsPage(session, poll_ms=100, **kwargs)
    qtbot.addWidget(page)
    page.resize(1280, 800)
    page.show()
    qtbot.waitExposed(page)
    return page


def column(page: JobsPage, col: int) -> list[str]:
    model = page.model
    return [model.index(row, col).data() for row in range(model.rowCount())]


def click_row(qtbot: QtBot, page: JobsPage, row: int) -> None:
    rect = page.table.visualRect(page.model.index(row, NAME))
    qtbot.mouseClick(page.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def button_for(page: JobsPage, action) -> QToolButton:
    return next(b for b in page.findChildren(QToolButton) if b.defaultAction() is action)


def status_labels(window: MainWindow) -> list[str]:
    return [label.text() for label in window.statusBar().findChildren(QLabel)]


def start_standin_runner(processes: Processes, step_s: float = RUNNER_STEP_S):
    return lambda _queue: processes.runner("--device", "cpu", step_s=step_s).pid


def test_lists_queued_jobs_and_follows_them_through_a_real_runner(
    qtbot: QtBot, session: Session, queue: JobQueue, processes: Processes, tmp_path: Path
) -> None:
    first, second = add(queue, tmp_path, "first", steps=8), add(queue, tmp_path, "second", steps=8)
    page = make_page(qtbot, session, start_runner=start_standin_runner(processes))
    assert [job.id for job in page.model.jobs()] == [first.id, second.id]
    assert column(page, STATE) == ["queued, runs next", "queued, 2nd"]
    assert page.runner_banner.isVisible() and "2 jobs are waiting" in page.runner_banner.text.text()

    with qtbot.waitSignal(session.job_selected, timeout=2000) as selected:
        click_row(qtbot, page, 1)
    assert selected.args == [second.id] and page.selected_job().id == second.id

    seen: set[tuple[int, str]] = set()
    page.jobs_changed.connect(lambda jobs: seen.update((job.id, job.state) for job in jobs))
    qtbot.mouseClick(page.runner_banner.button, Qt.MouseButton.LeftButton)
    assert not page.runner_banner.isVisible()
    assert "Started a runner" in page.message.text()
    qtbot.waitUntil(lambda: [job.state for job in page.model.jobs()] == ["succeeded"] * 2, timeout=60_000)
    assert {(first.id, "running"), (second.id, "running")} <= seen
    assert column(page, PROGRESS) == ["8 / 8", "8 / 8"]
    assert all(text.startswith("Adapter saved in") for text in column(page, MESSAGE))
    assert page.selected_job().id == second.id  # the selection survived every re-read
    qtbot.waitUntil(lambda: "Ended: succeeded at step 8" in page.events_log.toPlainText(), timeout=5000)
    assert not page.runner_banner.isVisible() and page.runner_alive()


def test_dragging_a_queued_job_changes_the_queue_order(
    qtbot: QtBot, session: Session, queue: JobQueue, tmp_path: Path
) -> None:
    first, second, third = (add(queue, tmp_path, name) for name in ("first", "second", "third"))
    done = add(queue, tmp_path, "done")
    queue.cancel(done.id)
    page = make_page(qtbot, session)
    model = page.model
    assert [job.id for job in model.jobs()] == [first.id, second.id, third.id, done.id]

    # A real drop on the view: the third job dragged above the first.
    data = model.mimeData([model.index(2, NAME)])
    target = page.table.visualRect(model.index(0, NAME))
    drop_at = QPoint(target.center().x(), target.top() + 1)
    viewport = page.table.viewport()
    actions, buttons, keys = Qt.DropAction.MoveAction, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QApplication.sendEvent(viewport, QDragEnterEvent(drop_at, actions, data, buttons, keys))
    QApplication.sendEvent(viewport, QDragMoveEvent(drop_at, actions, data, buttons, keys))
    QApplication.sendEvent(viewport, QDropEvent(QPointF(drop_at), actions, data, buttons, keys))
    assert [job.id for job in queue.jobs("queued")] == [third.id, first.id, second.id]
    assert [job.id for job in model.jobs()][:3] == [third.id, first.id, second.id]
    assert "number 1 in the queue" in page.message.text()

    # Dropped on a job: it takes that job's place.
    model.dropMimeData(model.mimeData([model.index(0, NAME)]), actions, -1, -1, model.index(2, NAME))
    assert [job.id for job in queue.jobs("queued")] == [first.id, second.id, third.id]
    # Not among the finished jobs, and a finished job cannot be dragged.
    assert not model.canDropMimeData(model.mimeData([model.index(0, NAME)]), actions, 4, 0, QModelIndex())
    assert not model.flags(model.index(3, NAME)) & Qt.ItemFlag.ItemIsDragEnabled
    assert not model.canDropMimeData(model.mimeData([model.index(3, NAME)]), actions, 0, 0, QModelIndex())
    assert not model.canDropMimeData(QMimeData(), actions, 0, 0, QModelIndex())

    # And from the keyboard.
    page.select_job(third.id)
    page.job_actions.move_up.trigger()
    assert [job.id for job in queue.jobs("queued")] == [first.id, third.id, second.id]


def test_cancel_from_the_page_stops_a_running_standin_job(
    qtbot: QtBot, session: Session, queue: JobQueue, processes: Processes, tmp_path: Path
) -> None:
    job = add(queue, tmp_path, "long", steps=400, save_every=1000)
    processes.runner("--device", "cpu", step_s=RUNNER_STEP_S)
    page = make_page(qtbot, session)
    qtbot.waitUntil(lambda: (j := page.model.jobs()[0]).state == "running" and (j.step or 0) >= 3, timeout=30_000)
    click_row(qtbot, page, 0)
    assert page.job_actions.cancel.isEnabled() and not page.job_actions.delete.isEnabled()
    with qtbot.waitSignal(page.status_message, timeout=2000) as said:
        qtbot.mouseClick(button_for(page, page.job_actions.cancel), Qt.MouseButton.LeftButton)
    assert said.args == [f"Job {job.id} will stop after its current step and save a checkpoint."]
    assert page.model.jobs()[0].label == "cancelling" and not page.job_actions.cancel.isEnabled()
    qtbot.waitUntil(lambda: page.model.jobs()[0].state == "cancelled", timeout=30_000)
    stopped = page.model.jobs()[0]
    assert 3 <= stopped.step < 400 and column(page, MESSAGE)[0].startswith(f"Cancelled at step {stopped.step}")
    assert (
        page.job_actions.resume.isEnabled()
        and page.job_actions.retry.isEnabled()
        and page.job_actions.delete.isEnabled()
    )


def test_delete_asks_first_and_says_what_goes(qtbot: QtBot, session: Session, queue: JobQueue, tmp_path: Path) -> None:
    job = add(queue, tmp_path, "finished", steps=4, save_every=2)
    run_once(queue, step_s=0.01)
    assert queue.get(job.id).state == "succeeded" and job.folder.is_dir()
    page = make_page(qtbot, session)
    page.select_job(job.id)

    box = page.delete_selected()
    assert box is not None and box.isVisible() and page.confirmation is box
    assert f"Delete job {job.id} “finished”" in box.text()
    info = box.informativeText()
    assert str(job.folder) in info and "checkpoint" in info and "trained adapter" in info and "cannot be undone" in info
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert job.folder.is_dir() and queue.get(job.id) is not None

    box = page.delete_selected()
    with qtbot.waitSignal(page.status_message, timeout=2000) as said:
        next(button for button in box.buttons() if button.text() == "Delete").click()
    assert said.args == [f"Job {job.id} and its folder were deleted."]
    assert not job.folder.exists() and queue.get(job.id) is None
    assert page.model.rowCount() == 0 and not page.details.isVisible()


def test_actions_follow_the_state_and_refusals_are_shown(
    qtbot: QtBot, session: Session, queue: JobQueue, tmp_path: Path
) -> None:
    job = add(queue, tmp_path, "waiting")
    opened: list[Path] = []
    page = make_page(qtbot, session, open_folder=opened.append, start_runner=lambda _queue: None)
    page.select_job(job.id)
    enabled = {a.iconText() for a in page.actions() if a.isEnabled()}  # the text without its & and …
    assert {"Cancel", "Pause", "Duplicate", "Delete", "Open folder"} <= enabled
    assert not {"Resume", "Retry"} & enabled

    page.job_actions.pause.trigger()
    assert page.model.jobs()[0].label == "paused" and page.job_actions.resume.isEnabled()
    page.job_actions.open_folder.trigger()
    assert opened == [job.folder]
    page.job_actions.duplicate.trigger()
    assert "is queued: a copy of job" in page.message.text()
    assert len(page.model.jobs()) == 2 and page.selected_job().id != job.id  # the copy is selected

    page.select_job(job.id)
    page.cancel_selected()
    assert page.message.text() == f"Job {job.id} is cancelled."

    # A refusal is a sentence on the page, not an exception.
    running = queue.claim("cpu")  # the copy, with no worker behind it
    assert running is not None
    page.select_job(running.id)
    assert page.delete_selected() is None
    assert page.message.text() == f"Job {running.id} is running; cancel it before deleting it."


def test_status_bar_and_notification_when_a_job_ends(
    qtbot: QtBot, session: Session, queue: JobQueue, tmp_path: Path
) -> None:
    job = add(queue, tmp_path, "quick", steps=3)
    queue.pause(add(queue, tmp_path, "later").id)
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    page = JobsPage(session, poll_ms=100, start_runner=lambda _queue: None)
    window.add_page("Jobs", page, studio_icon("jobs"))
    notifier = hook_up(window, page)
    window.show()
    qtbot.waitUntil(lambda: "1 queued · 1 paused" in status_labels(window), timeout=5000)

    run_once(queue, step_s=0.01)  # the paused job stays
    with qtbot.waitSignal(notifier.notified, timeout=5000) as told:
        pass
    title, text = told.args
    ran = queue.get(job.id).run_time()  # the one run time (backend.core.run_time), as the Monitor and CLI say it
    assert title == "“quick” succeeded" and f"Job {job.id} finished at step 3, {ran.words()}." in text
    # No system tray under the offscreen platform: the status bar says it.
    assert "“quick” succeeded" in window.statusBar().currentMessage()
    assert "1 paused" in status_labels(window)
    page.select_job(job.id)
    page.job_actions.duplicate.trigger()
    assert f"is queued: a copy of job {job.id}." in window.statusBar().currentMessage()


def test_a_notifier_says_nothing_of_jobs_that_ended_before_it_looked(queue: JobQueue, tmp_path: Path) -> None:
    job = add(queue, tmp_path, "old")
    queue.cancel(job.id)
    told: list[tuple[str, str]] = []
    notifier = JobNotifier()
    notifier.notified.connect(lambda title, text: told.append((title, text)))
    notifier.update(queue.jobs())
    assert told == []
    fresh = add(queue, tmp_path, "fresh")
    notifier.update(queue.jobs())
    queue.cancel(fresh.id)
    notifier.update(queue.jobs())
    assert told == [("“fresh” cancelled", f"Job {fresh.id} cancelled. Cancelled before it ran.")]
    assert queue_summary(queue.jobs()) == "Queue empty"


def test_the_poll_timer_runs_while_the_window_is_open_whichever_page_shows(qtbot: QtBot) -> None:
    ticks: list[int] = []
    page = QWidget()
    timer = WindowTimer(page, 20, lambda: ticks.append(1))
    assert not timer.is_active()
    window = QStackedWidget()
    qtbot.addWidget(window)
    window.addWidget(QWidget())
    window.addWidget(page)  # not the current page: hidden
    window.show()
    assert timer.is_active() and not page.isVisible()
    qtbot.waitUntil(lambda: len(ticks) >= 3, timeout=2000)
    window.close()
    assert not timer.is_active()


def test_eta_lines_and_words() -> None:
    def progress(step: int, elapsed: float, eta: float | None = None) -> Progress:
        return Progress(step=step, total_steps=100, epoch=0, elapsed_s=elapsed, eta_s=eta, time=1000 + elapsed)

    assert eta_seconds([progress(10, 20), progress(20, 40)], now=1040) == pytest.approx(160)
    assert eta_seconds([progress(20, 40)], now=1050) == pytest.approx(150)  # 10 s since the last step
    assert eta_seconds([progress(20, 40, eta=300)], now=1040) == 300  # the worker's own estimate wins
    assert eta_seconds([progress(100, 200)]) == 0 and eta_seconds([]) is None
    assert [duration_words(s) for s in (5, 89, 3599, 3600 * 5 + 60 * 7, 86400 * 2 + 3600)] == [
        "5 s",
        "1 min",
        "1 h 00 min",
        "5 h 07 min",
        "2 d 1 h",
    ]
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 21, 112)] == [
        "1st",
        "2nd",
        "3rd",
        "4th",
        "11th",
        "12th",
        "21st",
        "112th",
    ]
    line = event_line(Error(error_type="out_of_memory", message="CUDA out of memory.", hint="Smaller batch."))
    assert line.endswith("Error (out_of_memory): CUDA out of memory. What to do: Smaller batch.")
    assert event_line(progress(1, 1)) is None
    assert "Ended: cancelled at step 7; this attempt ran 2 min." in event_line(
        Done(status="cancelled", step=7, duration_s=120)
    )
    assert "Ended: paused at step 6;" in event_line(Done(status="paused", step=6, duration_s=20), "train")
    merged = event_line(Done(status="succeeded", step=2, duration_s=13), "merge")
    assert merged.endswith("Ended: succeeded; this attempt ran 13 s."), "a merge has stages, not steps"


def test_a_feed_starts_again_when_a_retry_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = EventSink(path, None)
    for step in (1, 2, 3):
        sink.emit(Progress(step=step, total_steps=10, epoch=0, elapsed_s=step))
    sink.close()
    feed = EventFeed(path)
    assert feed.read().reset and not feed.has_news()
    path.rename(tmp_path / "old.jsonl")  # what retry() does with attempts/N/
    sink = EventSink(path, None)
    for step in range(1, 6):  # longer than the old file by now
        sink.emit(Progress(step=step, total_steps=10, epoch=0, elapsed_s=step))
    sink.close()
    assert feed.has_news()
    batch = feed.read()
    assert batch.reset and batch.events == 5 and [p.step for p in batch.recent] == [1, 2, 3, 4, 5]


def test_the_model_keeps_rows_when_only_their_contents_change(queue: JobQueue, tmp_path: Path) -> None:
    jobs = [add(queue, tmp_path, name) for name in ("a", "b")]
    model = JobTableModel()
    resets: list[int] = []
    changed: list[int] = []
    model.modelReset.connect(lambda: resets.append(1))
    model.dataChanged.connect(lambda top, _bottom: changed.append(top.row()))
    model.set_jobs(queue.jobs())
    queue.pause(jobs[1].id)
    model.set_jobs(queue.jobs())
    assert len(resets) == 1 and changed == [1]
    assert model.index(1, STATE).data() == "paused"


def test_a_feed_read_in_slices_gets_every_event_once(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = EventSink(path, None)
    for step in range(1, 5001):
        sink.emit(Progress(step=step, total_steps=5000, epoch=0, elapsed_s=step))
        sink.emit(Metric(step=step, split="train", values={"loss": 1.0 / step}))
    sink.close()
    with path.open("ab") as handle:
        handle.write(b'{"v": 1, "type": "progress", "st\x00\xff garbage\n{"v": 1, "type": "metric", "step": ')
    feed = EventFeed(path)
    slices = [feed.read(budget_s=0.002)]
    while slices[-1].more:
        slices.append(feed.read(budget_s=0.002))
    assert len(slices) > 2 and slices[0].reset and not any(batch.reset for batch in slices[1:])
    steps = np.concatenate([batch.points["loss"]["train"][0] for batch in slices if "loss" in batch.points])
    np.testing.assert_array_equal(steps, np.arange(1, 5001))
    assert slices[-1].skipped == 1 and feed.events == 10_000  # the garbled line counted, the torn one left
    with path.open("ab") as handle:
        handle.write(b'"split": "train", "values": {"loss": 0.5}}\n')
    assert feed.has_news() and feed.read().metric_events == 0  # the torn line, now whole, is not an event
    lines_only = EventFeed(path, points=False)
    batch = lines_only.read()
    assert batch.events == 0 and batch.points == {}  # progress and metrics skipped without parsing


def test_the_worker_log_shows_its_last_lines(qtbot: QtBot, session: Session, queue: JobQueue, tmp_path: Path) -> None:
    job = add(queue, tmp_path, "logged")
    job.layout.log.write_text("".join(f"warning {n}\n" for n in range(20_000)))
    page = make_page(qtbot, session)
    page.select_job(job.id)
    text = page.worker_log.toPlainText()
    assert text.startswith("… (the last 64 KiB of 263 KiB") and text.rstrip().endswith("warning 19999")
    assert "warning 0\n" not in text
