"""The Jobs page's words for the queue: the status bar says when the whole queue is paused, a running merge's
Progress column names its stage instead of counting steps, and every job action has a mnemonic of its own."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QToolButton
from pytestqt.qtbot import QtBot

from app.icons import studio_icon
from app.job_model import PROGRESS, PROGRESS_ROLE, STATE
from app.jobs_page import JobsPage
from app.main_window import MainWindow
from app.notifications import hook_up
from app.session import Session
from backend.core.events import Done, EventSink, Progress
from backend.core.task_specs import MergeSpec
from backend.jobs.queue import JobQueue
from tests.qt.queue_pages.test_jobs_page import column, make_page, status_labels
from tests.queue_support import add


def test_the_status_bar_says_the_queue_is_paused_until_it_is_resumed(
    qtbot: QtBot, session: Session, queue: JobQueue, tmp_path: Path
) -> None:
    add(queue, tmp_path, "waiting")
    started: list[JobQueue] = []
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    page = JobsPage(session, poll_ms=100, start_runner=started.append)
    window.add_page("Jobs", page, studio_icon("jobs"))
    hook_up(window, page)
    window.show()
    qtbot.waitUntil(lambda: "1 queued" in status_labels(window), timeout=5000)
    assert not any("paused" in text for text in status_labels(window))

    page.pause_queue.setChecked(True)  # the Jobs page's Pause queue control
    qtbot.waitUntil(lambda: "Queue paused · 1 queued" in status_labels(window), timeout=2000)
    assert queue.paused() and not started, "pausing starts nothing"

    queue.set_paused(False)  # from another process (lora-studio queue resume): the state still reaches the bar
    qtbot.waitUntil(lambda: "1 queued" in status_labels(window), timeout=2000)
    assert not any("paused" in text for text in status_labels(window))


def test_a_running_merge_shows_its_stage_not_a_step_count(
    qtbot: QtBot, session: Session, queue: JobQueue, tmp_path: Path
) -> None:
    added = queue.add(MergeSpec(name="merged", adapter=str(tmp_path / "adapter")), checks=[])
    assert added.job is not None
    train = add(queue, tmp_path, "training", steps=30)
    merge = queue.claim("cpu")  # the merge, first in line, with no worker behind it: its events are written here
    assert merge is not None and merge.id == added.job.id
    page = make_page(qtbot, session, start_runner=lambda _queue: None)
    sink = EventSink(merge.layout.events, None)
    sink.emit(Progress(step=3, total_steps=10, elapsed_s=1.0, stage="merging"))
    row = page.model.row_of(merge.id)
    assert row is not None
    qtbot.waitUntil(lambda: column(page, PROGRESS)[row] == "Merging", timeout=2000)
    assert page.model.index(row, PROGRESS).data(PROGRESS_ROLE) == 0.3, "the bar shows the stage's share"

    sink.emit(Progress(step=1, total_steps=40, elapsed_s=2.0, stage="writing"))  # a new stage counts from 1 again
    qtbot.waitUntil(lambda: column(page, PROGRESS)[row] == "Writing", timeout=2000)
    assert column(page, PROGRESS)[page.model.row_of(train.id)] == "", "a queued training has no step yet"

    sink.emit(Done(status="succeeded", step=1, duration_s=2.0))
    sink.close()
    qtbot.waitUntil(lambda: column(page, STATE)[row] == "succeeded", timeout=2000)
    assert column(page, PROGRESS)[row] == "" and page.model.index(row, PROGRESS).data(PROGRESS_ROLE) is None, (
        "an ended merge's last stage count says nothing"
    )


def test_each_job_action_has_its_own_mnemonic_and_the_buttons_show_none(qtbot: QtBot, session: Session) -> None:
    page = make_page(qtbot, session, start_runner=lambda _queue: None)
    actions = page.job_actions
    texts = [action.text() for action in actions.context_menu(page).actions() if not action.isSeparator()]
    keys = []
    for text in texts:
        marks = re.findall(r"&(\w)", text.replace("&&", ""))
        assert len(marks) == 1, text
        keys.append(marks[0].lower())
    assert len(set(keys)) == len(keys), f"a letter used twice: {texts}"
    assert actions.cancel.text() == "&Cancel" and actions.delete.text() == "De&lete…"
    buttons = {button.text() for button in page.findChildren(QToolButton) if button.defaultAction() is not None}
    assert {"Cancel", "Pause", "Show charts", "Open folder"} <= buttons, "a button's text has no & in it"
