"""The Evaluate page queues a real evaluate job and shows its report: losses and answers side by side."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.evaluate_page import EvaluatePage
from app.session import Session
from backend.evaluation.report import REPORT_HTML
from backend.jobs.queue import JobQueue
from tests.adapters import make_adapter
from tests.datasets import write_colour_task


def test_queues_an_evaluation_and_shows_its_report(
    qtbot: QtBot, session: Session, tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = make_adapter(tiny_llama, tmp_path / "tuned", seed=3)
    other = make_adapter(tiny_llama, tmp_path / "other", seed=4)
    held_out = write_colour_task(tmp_path / "held.jsonl", 4, seed=5)
    page = EvaluatePage(session)
    qtbot.addWidget(page)
    page.show()
    assert page.reports.count() == 0 and page.losses.rowCount() == 0, "an empty state before any evaluation"
    assert not page.has_report(), "File ▸ Save report… has nothing to save yet"

    page.picker.select(str(adapter))
    page.compare.setChecked(True)
    page.compare_picker.select(str(other))
    page.data.setText(str(held_out))
    page.prompts.setPlainText("What colour is the sky?\n\nName a fruit.\n")
    page.max_new_tokens.setValue(8)
    assert page.evaluate_button.isEnabled()
    with qtbot.waitSignal(session.job_queued):
        page.evaluate()

    with JobQueue(session.queue_path, session.jobs_dir) as queue:
        job_id = queue.jobs()[0].id
        qtbot.waitUntil(lambda: queue.get(job_id).state in ("succeeded", "failed"), timeout=180_000)
        job = queue.get(job_id)
    assert job.state == "succeeded", job.message
    qtbot.waitUntil(lambda: page.reports.count() == 1, timeout=10_000)

    assert page.losses.item(0, 0).text().startswith("base")
    assert page.losses.horizontalHeaderItem(1).text() == "Evaluation held-out loss"
    # The loss shown is named, beside the adapter's in-training one (2.75 in its record) and why they differ.
    note = page._data.text()
    assert "This is the evaluation held-out loss" in note and "in-training held-out loss" in note
    assert "was 2.750" in note and f"measured on {held_out}" in note
    assert page.losses.rowCount() == 3 and page.losses.item(1, 3).text().endswith(("better)", "worse)", "same)"))
    assert page.prompt_list.count() == 2 and page.prompt_list.item(0).text() == "What colour is the sky?"
    shown = page.diff.toPlainText()
    assert "What colour is the sky?" in shown and "Prompt" in shown
    assert "words only the base model wrote" in shown

    assert not page.against.isHidden(), "an A/B report can mark the two adapters against each other"
    page.against.setCurrentIndex(1)
    shown = page.diff.toPlainText()
    assert "words only tuned wrote" in shown and "words only other wrote" in shown

    # File ▸ Save report… saves a copy of the report shown, in the format chosen by its name.
    assert page.has_report()
    target = tmp_path / "saved.html"
    monkeypatch.setattr("app.evaluate_page.QFileDialog.getSaveFileName", lambda *a, **k: (str(target), ""))
    page.save_report()
    assert target.read_bytes() == (Path(page.reports.currentData()) / REPORT_HTML).read_bytes()
