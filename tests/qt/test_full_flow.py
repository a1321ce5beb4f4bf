"""The whole path in the real window: drop a dataset, fix a field, start the job, watch it train, cancel it.

Everything is real: the window with all its pages, the dataset check, the spec's validation,
the SQLite queue, a background runner process and a worker training the tiny Llama.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from app.main import build_window
from app.session import Session
from backend.core.spec import JobSpec
from backend.jobs.queue import JobQueue
from tests.datasets import write_colour_task
from tests.qt.charts import drawn_x
from widgets.lazy_page import LazyPage


def test_drop_fix_queue_watch_and_cancel(qtbot: QtBot, session: Session, tiny_llama: Path, tmp_path: Path) -> None:
    data_file = write_colour_task(tmp_path / "colours.jsonl", 400, seed=1)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = build_window(settings, session)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    titles = window.page_titles()

    def page(title: str) -> Any:  # each page has its own type
        widget = window.page_widget(titles.index(title))
        return widget.page() if isinstance(widget, LazyPage) else widget

    # 1. Data: open the file as a drop would; the check runs on a pool thread.
    window.show_page(titles.index("Data"))
    with qtbot.waitSignal(session.dataset_changed, timeout=30_000) as chosen:
        page("Data").open(data_file)
    assert chosen.args[0].rows == 400 and chosen.args[0].path == str(data_file)

    # 2. Model & training: the tiny model, a value that fails validation, then fixed.
    window.show_page(titles.index("Model & training"))
    training = page("Model & training")
    assert training.session.dataset is not None
    training.picker.set_ref(str(tiny_llama))
    steps = training.form.fields["training.max_steps"].editor
    steps.selectAll()
    qtbot.keyClicks(steps, "3000")
    alpha = training.form.fields["lora.alpha"].editor
    alpha.clear()
    qtbot.keyClicks(alpha, "-16")
    error = training.form.fields["lora.alpha"].findChild(QLabel, "fieldError")
    qtbot.waitUntil(lambda: error.isVisibleTo(training))
    assert error.text() == "Alpha must be greater than 0; you wrote -16"
    assert not training.start_button.isEnabled()
    alpha.clear()
    qtbot.keyClicks(alpha, "16")
    qtbot.waitUntil(lambda: training.start_button.isEnabled())
    assert not error.isVisibleTo(training) and training.spec.training.max_steps == 3000

    # 3. Start now: queued, a real runner starts, the Jobs page comes up with the job.
    with qtbot.waitSignal(session.job_queued) as queued:
        training.start_button.click()
    job_id = queued.args[0]
    assert window.current_page() == titles.index("Jobs")
    jobs = page("Jobs")
    with JobQueue(session.queue_path, session.jobs_dir) as queue:
        qtbot.waitUntil(lambda: queue.get(job_id).state == "running", timeout=60_000)

    # 4. Monitor: loss points arrive from the worker's events while it trains.
    jobs.select_job(job_id)
    window.show_page(titles.index("Monitor"))
    loss = page("Monitor").charts["loss"]
    qtbot.waitUntil(lambda: len(drawn_x(loss.raw_curve("train"))) >= 5, timeout=120_000)

    # 5. Cancel from the Jobs page: the worker stops at its next step, with a checkpoint.
    window.show_page(titles.index("Jobs"))
    jobs.select_job(job_id)
    result = jobs.cancel_selected()
    assert result is not None and result.ok, result
    with JobQueue(session.queue_path, session.jobs_dir) as queue:
        qtbot.waitUntil(lambda: queue.get(job_id).state == "cancelled", timeout=60_000)
        job = queue.get(job_id)
    assert job.step is not None and 5 <= job.step < 3000
    assert any(job.layout.checkpoints.glob("checkpoint-*")), "a cancelled job keeps a checkpoint to resume from"
    window.close()


def test_edit_a_copy_opens_a_jobs_settings_in_the_form(
    qtbot: QtBot, session: Session, tiny_llama: Path, tmp_path: Path
) -> None:
    data_file = write_colour_task(tmp_path / "colours.jsonl", 40, seed=2)
    spec = JobSpec.from_dict(
        {
            "name": "colours",
            "base_model": str(tiny_llama),
            "lora": {"r": 8},
            "training": {"learning_rate": 3e-4, "max_steps": 7},
            "data": {"path": str(data_file)},
        }
    )
    with JobQueue(session.queue_path, session.jobs_dir) as queue:
        job = queue.add(spec).job
    assert job is not None
    window = build_window(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat), session)
    qtbot.addWidget(window)
    window.show()
    titles = window.page_titles()
    jobs = window.page_widget(titles.index("Jobs"))
    window.show_page(titles.index("Jobs"))
    qtbot.waitUntil(lambda: jobs.select_job(job.id))

    jobs.job_actions.edit_copy.trigger()

    assert window.current_page() == titles.index("Model & training")
    training = window.page_widget(titles.index("Model & training")).page()
    values = training.form.values()
    assert values["lora.r"] == 8 and values["training.learning_rate"] == 3e-4 and values["name"] == "colours-copy"
    assert values["training.max_steps"] == 7
    assert training.picker.ref() == str(tiny_llama)
    assert session.dataset is not None and session.dataset.path == str(data_file)
    qtbot.waitUntil(lambda: training.start_button.isEnabled())
    assert training.job_spec().training.max_steps == 7
    window.close()
