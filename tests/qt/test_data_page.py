"""The Data page with real files: a dropped dataset is checked off the GUI thread and shown."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QThreadPool

from app.data_page import DataPage
from backend.paths import assets_dir

SAMPLE = assets_dir() / "datasets" / "support_triage" / "train.jsonl"


def page_for(qtbot) -> DataPage:
    page = DataPage(QThreadPool())
    qtbot.addWidget(page)
    return page


def test_the_sample_dataset_fills_preview_summary_and_advice(qtbot) -> None:
    page = page_for(qtbot)
    with qtbot.waitSignal(page.checked, timeout=30_000) as finished:
        assert page.drop_zone.open_paths([SAMPLE])
    report = finished.args[0]
    assert report.accepted == 360
    assert "360 of 360 rows usable" in page.summary.text()
    page.preview.select_example(0)
    assert page.preview.current_example() == 0
    assert not page.is_checking()


def test_bad_rows_are_listed_with_their_line_and_a_kept_row_jumps_to_its_example(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    good = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    path.write_text(json.dumps(good) + "\n{broken\n" + json.dumps(good) + "\n")
    page = page_for(qtbot)
    with qtbot.waitSignal(page.checked, timeout=30_000):
        page.open(path)
    issues = page.issues.selected_issues() or page.issues._model._rows
    errors = [i for i in issues if i.severity == "error"]
    assert any(i.line == 2 and "JSON" in i.message for i in errors)
    duplicates = [i for i in issues if i.severity == "warning" and i.example is not None]
    assert duplicates and duplicates[0].line == 3


def test_a_file_with_nothing_usable_says_why(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "no reply"}]}\n')
    page = page_for(qtbot)
    with qtbot.waitSignal(page.checked, timeout=30_000):
        page.open(path)
    assert "0 of 1 rows usable" in page.summary.text()
    [error] = [i for i in page.issues.issues() if i.severity == "error"]
    assert error.line == 1 and "no reply" in error.message and error.hint


def test_the_report_is_saved_where_the_user_chooses(qtbot, tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "report.json"
    monkeypatch.setattr(
        "app.data_page.QFileDialog.getSaveFileName", lambda *args, **kwargs: (str(target), "JSON (*.json)")
    )
    page = page_for(qtbot)
    with qtbot.waitSignal(page.checked, timeout=30_000):
        page.open(SAMPLE)
    page.issues.saveReportRequested.emit()
    assert json.loads(target.read_text())["accepted"] == 360
