"""The Data page with real files and real child processes.

A dropped dataset is checked off the GUI thread; its tokens are counted, and one example
rendered, by ``lora-studio data`` in a child process with a tiny model from the store; the
GUI process itself never loads the ML stack.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
import threading
from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import QMimeData, QPointF, QProcess, QRunnable, QSettings, Qt, QThreadPool, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QPlainTextEdit,
    QSpinBox,
    QTableView,
    QTableWidget,
    QTextBrowser,
)

from app.cli_job import CliOutcome
from app.data_page import DataPage
from app.dataset_landing import SAMPLE
from app.recent import KEY as RECENT_KEY
from app.recent import RecentDatasets
from app.session import DatasetChoice, Session
from backend.models.store import import_folder
from tests.document_files import truncate_sheets, write_workbook
from tests.import_check import run_fresh
from widgets.issue_list import WHERE

SUBPROCESS_S = 120_000  # a child process loads transformers and a tokenizer: seconds on a busy 2-core machine


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def tiny_in_store(session: Session, tiny_llama: Path, tmp_path: Path) -> str:
    """The tiny Llama registered in the session's (empty, temporary) model store; its store name."""
    folder = tmp_path / "tiny-llama"
    shutil.copytree(tiny_llama, folder)
    return import_folder(folder, name="Tiny Llama").slug


def page_for(qtbot, session: Session, settings: QSettings, model: str | None = None) -> DataPage:
    if model is not None:
        settings.setValue("data/model", model)
    page = DataPage(session, settings=settings)
    qtbot.addWidget(page)
    return page


def choices(session: Session) -> list[DatasetChoice]:
    seen: list[DatasetChoice] = []
    session.dataset_changed.connect(seen.append)
    return seen


def drag(page: DataPage, paths: list[Path]) -> QMimeData:
    """Drag ``paths`` over the middle of the page (not over its drop zone), as a file manager would."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(
        page.rect().center(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(page, enter)
    return mime


def drop(page: DataPage, mime: QMimeData) -> None:
    event = QDropEvent(
        QPointF(page.rect().center()),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(page, event)


# -- the check, in this process ------------------------------------------------------------------


def test_the_sample_fills_summary_and_preview_and_a_model_not_imported_is_explained(
    qtbot, session: Session, settings: QSettings
) -> None:
    page = page_for(qtbot, session, settings)
    seen = choices(session)
    with qtbot.waitSignal(page.checked, timeout=30_000) as finished:
        assert page.landing.drop_zone.open_paths([SAMPLE])
    assert finished.args[0].accepted == 360
    assert "360 of 360 rows usable" in page.summary.text()
    assert page.preview.current_example() == 0, "the first example is shown at once"
    assert seen == [DatasetChoice(str(SAMPLE), "messages", None, 360)]
    # The default model is not in this empty store: nothing is downloaded, and the page says how to import it.
    assert not page.is_measuring()
    status = page.tokens.status_text()
    assert "has not been imported yet" in status and "lora-studio models import default" in status
    page.preview.show_rendered_view()
    assert not page.is_checking()


def test_bad_rows_are_listed_with_their_line_and_a_kept_row_jumps_to_its_example(
    qtbot, session: Session, settings: QSettings, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    good = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    path.write_text(json.dumps(good) + "\n{broken\n" + json.dumps(good) + "\n")
    page = page_for(qtbot, session, settings)
    with qtbot.waitSignal(page.checked, timeout=30_000):
        page.open(path)
    errors = [i for i in page.issues.issues() if i.severity == "error"]
    assert any(i.line == 2 and "JSON" in i.message for i in errors)
    duplicates = [i for i in page.issues.issues() if i.severity == "warning" and i.example is not None]
    assert duplicates and duplicates[0].line == 3


def test_a_file_with_nothing_usable_says_why_and_is_not_offered_for_training(
    qtbot, session: Session, settings: QSettings, tmp_path: Path
) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "no reply"}]}\n')
    page = page_for(qtbot, session, settings)
    seen = choices(session)
    with qtbot.waitSignal(page.checked, timeout=30_000):
        page.open(path)
    assert "0 of 1 rows usable" in page.summary.text()
    [error] = [i for i in page.issues.issues() if i.severity == "error"]
    assert error.line == 1 and "no reply" in error.message and error.hint
    assert seen == [] and "Nothing to measure" in page.tokens.status_text()


def test_the_report_is_saved_where_the_user_chooses(
    qtbot, session: Session, settings: QSettings, tmp_path: Path, monkeypatch
) -> None:
    target = tmp_path / "report.json"
    monkeypatch.setattr(
        "app.data_page.QFileDialog.getSaveFileName", lambda *args, **kwargs: (str(target), "JSON (*.json)")
    )
    page = page_for(qtbot, session, settings)
    with qtbot.waitSignal(page.checked, timeout=30_000):
        page.open(SAMPLE)
    page.issues.saveReportRequested.emit()
    assert json.loads(target.read_text())["accepted"] == 360


def test_an_unknown_table_opens_the_column_mapping_and_the_mapping_is_remembered(
    qtbot, session: Session, settings: QSettings, tmp_path: Path
) -> None:
    path = tmp_path / "tickets.csv"
    path.write_text("ticket,reply,agent\nPrinter jams,Open tray B,Ana\nNo wifi,Restart the router,Bo\n")
    page = page_for(qtbot, session, settings)
    seen = choices(session)
    with qtbot.waitSignal(page.checked, timeout=30_000):
        page.open(path)
    assert page.report is not None and page.report.accepted == 0
    assert page.sheet_picker.isHidden(), "not a workbook"
    first = page.mapping_dialog
    assert first is not None and first.isVisible(), "nothing recognised: the mapping is asked for at once"
    with qtbot.waitSignal(first.destroyed, timeout=5000):  # the first one's end must not forget the second
        dialog = page.ask_mapping()  # "Map columns…" again: the new dialog replaces the first
    assert page.mapping_dialog is dialog and dialog.isVisible()
    for column, role in (("ticket", "instruction"), ("reply", "response")):
        combo = dialog.findChild(QComboBox, f"role:{column}")
        combo.setCurrentIndex(combo.findData(role))
    with qtbot.waitSignal(page.checked, timeout=30_000) as rechecked:
        dialog.accept()
    assert rechecked.args[0].accepted == 2
    mapping = {"instruction": "ticket", "response": "reply"}
    assert seen == [DatasetChoice(str(path), "columns", mapping, 2)]
    assert page.mapping_dialog is None and page.detect_button.isVisibleTo(page)
    assert RecentDatasets(settings).get(path).columns == mapping

    # Opened again (here on a new page), the file is read with the mapping, without asking.
    again = page_for(qtbot, session, settings)
    with qtbot.waitSignal(again.checked, timeout=30_000) as reopened:
        again.open(path)
    assert reopened.args[0].accepted == 2 and again.mapping_dialog is None


def test_a_dropped_workbook_shows_its_examples_and_its_bad_rows_by_sheet_and_row(
    qtbot, session: Session, settings: QSettings, tmp_path: Path
) -> None:
    rows = [["instruction", "output"], ["Printer jams", "Open tray B"], ["No wifi", None], ["Screen black", "Check"]]
    path = write_workbook(tmp_path / "tickets.xlsx", {"Tickets": rows})
    page = page_for(qtbot, session, settings)
    page.resize(900, 600)
    page.show()
    seen = choices(session)
    mime = drag(page, [path])
    assert page.overlay.verdict().ok
    with qtbot.waitSignal(page.checked, timeout=30_000):
        drop(page, mime)
    assert "Alpaca instructions" in page.summary.text() and "2 of 3 rows usable" in page.summary.text()
    assert "Printer jams" in page.preview.findChild(QTextBrowser).toPlainText(), "the first example is shown"
    assert seen == [DatasetChoice(str(path), "alpaca", None, 2)]
    assert page.sheet_picker.isHidden(), "one sheet: nothing to choose"
    [error] = [i for i in page.issues.issues() if i.severity == "error"]
    assert (error.file, error.line, error.field) == ("tickets.xlsx", 3, "output")
    table = page.issues.findChild(QTableView)
    assert table.model().index(0, WHERE).data() == "Tickets row 3"
    page.close()


def sheet_combo(page: DataPage) -> QComboBox:
    return page.sheet_picker.findChild(QComboBox, "sheet")


def test_a_workbook_with_rows_in_several_sheets_reads_the_sheet_chosen_and_reopens_it(
    qtbot, session: Session, settings: QSettings, tmp_path: Path
) -> None:
    tickets = [["instruction", "output"], ["Printer jams", "Open tray B"], ["No wifi", None], ["Screen black", "Check"]]
    archive = [["instruction", "output"], ["Fax is broken", "Buy a new one"]]
    sheets = {"Cover": [], "Tickets": tickets, "Archive": archive, "Drafts": [["instruction"], ["draft"]]}
    path = write_workbook(tmp_path / "book.xlsx", sheets, hidden=["Drafts"])
    page = page_for(qtbot, session, settings)
    page.resize(900, 600)
    page.show()
    seen = choices(session)
    with qtbot.waitSignal(page.checked, timeout=30_000) as checked:
        page.open(path)
    combo = sheet_combo(page)
    assert page.sheet_picker.isVisible()
    assert [combo.itemText(i) for i in range(combo.count())] == ["Tickets", "Archive", "Drafts (hidden)"]
    assert combo.currentText() == "Tickets", "the sheet read without one named"
    assert checked.args[0].notes == [], "the picker, not a note, tells of the other sheets"
    assert page.preview.findChild(QTableView).model().rowCount() == 2
    assert [i.unit for i in page.issues.issues() if i.severity == "error"] == ["Tickets row"]
    assert seen[-1] == DatasetChoice(str(path), "alpaca", None, 2, sheet="Tickets")

    with qtbot.waitSignal(page.checked, timeout=30_000):
        combo.setCurrentIndex(combo.findData("Archive"))
    assert "1 of 1 rows usable" in page.summary.text()
    assert page.preview.findChild(QTableView).model().rowCount() == 1
    assert "Fax is broken" in page.preview.findChild(QTextBrowser).toPlainText()
    assert not [i for i in page.issues.issues() if i.severity == "error"]
    assert seen[-1] == DatasetChoice(str(path), "alpaca", None, 1, sheet="Archive")
    assert page.sheet_picker.isVisible() and combo.currentText() == "Archive"
    remembered = RecentDatasets(settings).get(path)
    assert remembered.sheet == "Archive" and "sheet Archive" in remembered.detail()

    # Reopened from the recent list (here on a new page), the same sheet is read.
    later = page_for(qtbot, session, settings)
    with qtbot.waitSignal(later.checked, timeout=30_000) as reopened:
        later.landing.recent_list.openRequested.emit(str(path))
    assert reopened.args[0].accepted == 1 and sheet_combo(later).currentText() == "Archive"
    assert seen[-1].sheet == "Archive"

    # The sheet renamed since: the check says so, and the one sheet with rows is offered instead.
    write_workbook(path, {"Cover": [], "Archive 2024": archive})
    with qtbot.waitSignal(later.checked, timeout=30_000):
        later.open(path)
    [error] = [i for i in later.issues.issues() if i.severity == "error"]
    assert "has no sheet named 'Archive'" in error.message
    assert not later.sheet_picker.isHidden() and sheet_combo(later).currentIndex() == -1
    with qtbot.waitSignal(later.checked, timeout=30_000):
        sheet_combo(later).setCurrentIndex(0)
    assert seen[-1] == DatasetChoice(str(path), "alpaca", None, 1, sheet="Archive 2024")
    page.close()


def test_a_sheet_chosen_that_needs_its_columns_mapped_is_previewed_and_mapped_from_that_sheet(
    qtbot, session: Session, settings: QSettings, tmp_path: Path
) -> None:
    tickets = [["instruction", "output"], ["Printer jams", "Open tray B"]]
    export = [["ticket", None, "reply"], ["Printer jams", 12, "Open tray B"], ["No wifi", None, "Restart the router"]]
    path = write_workbook(tmp_path / "export.xlsx", {"Tickets": tickets, "Export": export})
    page = page_for(qtbot, session, settings)
    seen = choices(session)
    with qtbot.waitSignal(page.checked, timeout=30_000):
        page.open(path)
    assert page.mapping_dialog is None, "the sheet read is in a known format"
    combo = sheet_combo(page)
    with qtbot.waitSignal(page.checked, timeout=30_000):
        combo.setCurrentIndex(combo.findData("Export"))
    dialog = page.mapping_dialog
    assert dialog is not None and dialog.isVisible() and "sheet Export" in dialog.windowTitle()
    combos = [c.objectName() for c in dialog.findChildren(QComboBox) if c.objectName().startswith("role:")]
    assert combos == ["role:ticket", "role:column B", "role:reply"], "the columns in the sheet's order"
    for column, role in (("ticket", "instruction"), ("reply", "response")):
        combo = dialog.findChild(QComboBox, f"role:{column}")
        combo.setCurrentIndex(combo.findData(role))
    preview = dialog.findChild(QTableWidget, "preview")
    assert preview.rowCount() == 2 and preview.item(1, 1).text() == "Restart the router"
    with qtbot.waitSignal(page.checked, timeout=30_000) as rechecked:
        dialog.accept()
    assert rechecked.args[0].accepted == 2
    mapping = {"instruction": "ticket", "response": "reply"}
    assert seen[-1] == DatasetChoice(str(path), "columns", mapping, 2, sheet="Export")
    assert sheet_combo(page).currentText() == "Export"


def test_a_damaged_workbook_is_explained_and_never_leaves_the_page_checking(
    qtbot, session: Session, settings: QSettings, tmp_path: Path
) -> None:
    rows = [["instruction", "output"], *([f"Question {i}", f"Answer {i}"] for i in range(200))]
    path = write_workbook(tmp_path / "tickets.xlsx", {"Tickets": rows})
    truncate_sheets(path, 300)  # inside the header row: listing the sheets fails as well as the check
    page = page_for(qtbot, session, settings)
    with qtbot.waitSignal(page.checked, timeout=30_000):
        page.open(path)
    assert not page.is_checking() and page.cancel_button.isHidden() and not page.open_button.isHidden()
    [error] = [i for i in page.issues.issues() if i.severity == "error"]
    assert error.message.startswith("tickets.xlsx is not a readable Excel workbook (ParseError: ")
    assert error.message.endswith("open it in Excel and save it again as .xlsx")
    assert page.sheet_picker.isHidden()


def test_an_error_no_one_foresaw_is_shown_and_the_page_is_not_left_checking(
    qtbot, session: Session, settings: QSettings, monkeypatch
) -> None:
    """The last resort: an exception that is not a DataError still ends the check, with its type and message."""

    def failing_check(*_args: object, **_kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("app.dataset_check.check_dataset", failing_check)
    page = page_for(qtbot, session, settings)
    page.open(SAMPLE)
    qtbot.waitUntil(lambda: not page.is_checking(), timeout=30_000)
    said = "train.jsonl could not be checked: an unexpected error (RecursionError: maximum recursion depth exceeded)."
    assert page.summary.text().startswith(said) and "save it again" in page.summary.text()
    assert [i.severity for i in page.issues.issues()] == ["error"]
    assert page.cancel_button.isHidden() and not page.open_button.isHidden()


def test_a_check_cancelled_before_it_starts_opens_nothing(
    qtbot, session: Session, settings: QSettings, tmp_path: Path
) -> None:
    """Cancelled while it waits for a thread, a workbook's check does not list its sheets first."""
    archive = [["instruction", "output"], ["Fax is broken", "Buy a new one"]]
    path = write_workbook(tmp_path / "book.xlsx", {"Tickets": archive, "Archive": archive})
    pool = QThreadPool()
    pool.setMaxThreadCount(1)
    free = threading.Event()
    pool.start(QRunnable.create(lambda: free.wait(30)))  # the one thread is busy
    page = DataPage(session, settings=settings, pool=pool)
    qtbot.addWidget(page)
    page.open(path)
    page.cancel()
    free.set()
    qtbot.waitUntil(lambda: not page.is_checking(), timeout=30_000)
    assert page.summary.text() == "Check cancelled."
    assert page.sheet_picker.isHidden(), "the sheets were not listed"
    assert pool.waitForDone(10_000)


def test_recent_datasets_are_remembered_reopened_and_forgotten(
    qtbot, session: Session, settings: QSettings, tmp_path: Path
) -> None:
    page = page_for(qtbot, session, settings)
    with qtbot.waitSignal(page.checked, timeout=30_000):
        page.open(SAMPLE)
    gone = tmp_path / "gone.jsonl"
    gone.write_text('{"text": "soon deleted"}\n')
    with qtbot.waitSignal(page.checked, timeout=30_000):
        page.open(gone)
    gone.unlink()

    later = page_for(qtbot, session, settings)
    assert later.landing.recent_list.keys() == [str(gone), str(SAMPLE)], "newest first"
    assert "360 of 360 rows usable" in RecentDatasets(settings).get(SAMPLE).detail()
    with qtbot.waitSignal(later.checked, timeout=30_000) as reopened:
        later.landing.recent_list.openRequested.emit(str(SAMPLE))
    assert reopened.args[0].accepted == 360
    later.landing.recent_list.forgetRequested.emit(str(gone))
    assert later.landing.recent_list.keys() == [str(SAMPLE)]

    settings.setValue(RECENT_KEY, "{not json")  # hand-edited: ignored, not a crash
    assert page_for(qtbot, session, settings).landing.recent_list.keys() == []


def test_a_drop_anywhere_on_the_page_is_judged_and_a_refusal_says_why(
    qtbot, session: Session, settings: QSettings, tmp_path: Path
) -> None:
    picture = tmp_path / "cat.png"
    picture.write_bytes(b"\x89PNG")
    page = page_for(qtbot, session, settings)
    page.resize(900, 600)
    page.show()
    mime = drag(page, [picture])
    assert page.overlay.isVisible() and not page.overlay.verdict().ok
    drop(page, mime)
    assert not page.overlay.isVisible()
    assert "“cat.png” is a .png file, not a dataset" in page.notice.text()
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")
    drop(page, drag(page, [old]))
    assert "“old.xls” is an Excel 97-2003 workbook" in page.notice.text()
    assert "save it as an Excel Workbook (.xlsx) or as CSV UTF-8" in page.notice.text()

    mime = drag(page, [SAMPLE])
    assert page.overlay.verdict().ok
    with qtbot.waitSignal(page.checked, timeout=30_000):
        drop(page, mime)
    assert page.notice.isHidden()
    page.close()


def test_the_mapping_dialog_starts_from_the_mapping_the_check_tried_and_offered(
    qtbot, session: Session, settings: QSettings, tmp_path: Path
) -> None:
    path = tmp_path / "chat.csv"
    path.write_text("query,reply,agent\nPrinter jams,Open tray B,Ana\nNo wifi,,Bo\n")
    page = page_for(qtbot, session, settings)
    with qtbot.waitSignal(page.checked, timeout=30_000):
        page.open(path)
    [error] = [i for i in page.issues.issues() if i.severity == "error"]
    assert "map the columns instruction = query, response = reply" in error.message
    assert "which imports 1 of 2 rows" in error.message
    dialog = page.mapping_dialog
    assert dialog is not None and dialog.isVisible()
    for column, role in (("query", "instruction"), ("reply", "response")):
        assert dialog.findChild(QComboBox, f"role:{column}").currentData() == role
    with qtbot.waitSignal(page.checked, timeout=30_000) as rechecked:
        dialog.accept()
    assert rechecked.args[0].accepted == 1, "the import promised"


@pytest.mark.parametrize("whole", [True, False], ids=["wholly refused", "partly refused"])
def test_the_issues_and_the_summary_count_the_excluded_rows_alike(
    qtbot, session: Session, settings: QSettings, tmp_path: Path, whole: bool
) -> None:
    """The same files as the CLI's and JSON's count test (tests/test_data_fields.py), on the page."""
    from tests.test_data_fields import write_refused

    page = page_for(qtbot, session, settings)
    with qtbot.waitSignal(page.checked, timeout=30_000) as finished:
        page.open(write_refused(tmp_path, whole))
    report = finished.args[0]
    assert report.excluded == (5 if whole else 2)
    assert f"{report.excluded:,} excluded" in page.summary.text()
    errors = [i for i in page.issues.issues() if i.severity == "error"]
    covered = [re.search(r"\((?:its (1) row|all ([\d,]+) rows) excluded\)$", i.message) for i in errors]
    rows = [int((m.group(1) or m.group(2)).replace(",", "")) if m else 1 for m in covered]
    assert sum(rows) == report.excluded
    assert rows == ([5] if whole else [1, 1])
    if not whole:  # the field that refuses a row is also in the report of fields not used
        assert any(i.field == "labels" and "could change what is learned" in i.message for i in page.issues.issues())


def test_a_failed_command_is_explained_by_its_own_error_line_or_its_last_words() -> None:
    said = CliOutcome(("data",), 1, "", "  model: loading\nerror: the model folder is gone\n")
    assert said.error_text() == "The model folder is gone"
    traceback = CliOutcome(("data",), 1, "", "Traceback (most recent call last):\n  ...\nOSError: no tokenizer.json\n")
    assert traceback.error_text() == "OSError: no tokenizer.json"
    assert CliOutcome(("data",), None, "", "").error_text("Counting") == "It crashed"
    assert (
        CliOutcome(("data",), None, "", "", start_error="No such file")
        .error_text("Counting")
        .startswith("Counting could not start")
    )


# -- tokens and rendering, in a child process ----------------------------------------------------


def test_a_dropped_file_is_measured_and_rendered_by_the_model_in_a_child_process(
    qtbot, session: Session, settings: QSettings, tiny_in_store: str
) -> None:
    page = page_for(qtbot, session, settings, model=tiny_in_store)
    assert page.tokens.current_model() == tiny_in_store
    seen = choices(session)
    page.resize(1280, 800)
    page.show()
    page.preview.show_rendered_view()  # the first example is rendered beside the count, once the check is done
    with qtbot.waitSignal(page.measured, timeout=SUBPROCESS_S) as measured:
        drop(page, drag(page, [SAMPLE]))
        qtbot.waitUntil(page.is_measuring, timeout=30_000)
        assert page.tokens.is_busy() and "Counting tokens with Tiny Llama" in page.tokens.status_text()
    summary = measured.args[0]
    assert summary.examples == 360 and summary.lengths.total == 360
    assert summary.max_length == 1024 and summary.truncated == 0
    assert 0 < summary.tokens_per_epoch <= summary.total and 0 < summary.loss_share < 1
    assert page.tokens.histogram().max_length() == 1024 and not page.tokens.is_busy()
    p99 = round(summary.lengths.p99)
    assert seen == [
        DatasetChoice(str(SAMPLE), "messages", None, 360),
        DatasetChoice(str(SAMPLE), "messages", None, 360, p99_tokens=p99),
    ]
    assert RecentDatasets(settings).get(SAMPLE).p99_tokens == p99

    # "As the model sees it": the template's text, with the reply it learns marked.
    qtbot.waitUntil(lambda: page.preview.rendered() is not None, timeout=SUBPROCESS_S)
    rendered = page.preview.rendered()
    [(start, end)] = rendered.loss_spans
    assert rendered.text[start:end].startswith("category: technical | priority: high")
    assert "<|im_start|>user" in rendered.text[:start] and rendered.cut_at is None

    # A shorter maximum is measured and rendered again: what it cuts becomes issues, and is struck out.
    with qtbot.waitSignal(page.measured, timeout=SUBPROCESS_S) as remeasured:
        page.tokens.findChild(QSpinBox, "maxLength").setValue(256)
    cut = remeasured.args[0]
    assert cut.max_length == 256 and cut.truncated == 360 and cut.tokens_per_epoch < summary.tokens_per_epoch
    assert sum(i.message.endswith("will be cut") for i in page.issues.issues()) == 360
    assert page.report is not None and page.report.tokens.max_length == 256
    qtbot.waitUntil(lambda: page.preview.rendered() is not None, timeout=SUBPROCESS_S)
    assert 0 < page.preview.rendered().cut_at < len(rendered.text)
    page.close()


def test_the_sheet_chosen_is_the_one_measured_and_rendered_in_the_child_processes(
    qtbot, session: Session, settings: QSettings, tiny_in_store: str, tmp_path: Path
) -> None:
    tickets = [["instruction", "output"], ["Printer jams", "Open tray B"], ["No wifi", "Restart the router"]]
    archive = [["instruction", "output"], ["Fax is broken", "Buy a new one"]]
    path = write_workbook(tmp_path / "book.xlsx", {"Tickets": tickets, "Archive": archive})
    page = page_for(qtbot, session, settings, model=tiny_in_store)
    page.resize(1280, 800)
    page.show()
    page.preview.show_rendered_view()
    with qtbot.waitSignal(page.checked, timeout=30_000):
        page.open(path)
    combo = sheet_combo(page)
    with qtbot.waitSignal(page.measured, timeout=SUBPROCESS_S) as measured:
        combo.setCurrentIndex(combo.findData("Archive"))  # the count of Tickets under way is stopped
    assert measured.args[0].examples == 1
    qtbot.waitUntil(lambda: page.preview.rendered() is not None, timeout=SUBPROCESS_S)
    assert "Fax is broken" in page.preview.rendered().text
    page.close()


def test_a_new_max_length_drops_the_renderings_at_once_and_the_count_waits_for_it_to_settle(
    qtbot, session: Session, settings: QSettings, tiny_in_store: str
) -> None:
    page = page_for(qtbot, session, settings, model=tiny_in_store)
    page.preview.show_rendered_view()
    with qtbot.waitSignal(page.measured, timeout=SUBPROCESS_S):
        page.open(SAMPLE)
    for row in (1, 0):
        page.preview.select_example(row)
        qtbot.waitUntil(lambda: page.preview.rendered() is not None, timeout=SUBPROCESS_S)
        assert page.preview.rendered().cut_at is None, "it fits in 1,024 tokens"
    [rendering_at_1024] = _serving_children()

    with qtbot.waitSignal(page.measured, timeout=SUBPROCESS_S) as measured:
        spin = page.tokens.findChild(QSpinBox, "maxLength")
        for tokens in (512, 300, 256):  # an arrow key held down
            spin.setValue(tokens)
        assert page.preview.rendered() is None, "the rendering at 1,024 tokens is gone at once"
        page.preview.select_example(1)  # rendered before, at the old length: asked for again too
        assert page.preview.rendered() is None
        assert "once the maximum length is set" in page.preview.findChild(QPlainTextEdit).placeholderText()
        qtbot.waitUntil(lambda: len(_serving_children()) == 1, timeout=30_000)  # once it has started
        [child] = _serving_children()
        assert child.pid != rendering_at_1024.pid, "a child rendering at 256 tokens"
    assert measured.args[0].max_length == 256
    qtbot.waitUntil(lambda: page.preview.rendered() is not None, timeout=SUBPROCESS_S)
    assert page.preview.rendered().cut_at is not None, "cut at 256 tokens"
    assert _serving_children() == [child], "the count, started later, left the rendering child alone"
    page.close()


def _serving_children() -> list[psutil.Process]:
    """This process's ``data preview --serve`` children that are still running."""
    return [c for c in psutil.Process().children() if c.is_running() and "--serve" in c.cmdline()]


def test_examples_clicked_one_after_another_are_rendered_by_one_child_process(
    qtbot, session: Session, settings: QSettings, tiny_in_store: str, tmp_path: Path, monkeypatch
) -> None:
    """The child reads the dataset and loads the tokenizer once; each example clicked is one request to it."""
    started: list[list[str]] = []
    qprocess_start = QProcess.start

    def counting_start(process: QProcess, *args: object) -> None:
        started.append(list(args[1]) if len(args) > 1 else [])
        qprocess_start(process, *args)

    monkeypatch.setattr(QProcess, "start", counting_start)
    path = tmp_path / "three.jsonl"
    rows = [
        [{"role": "user", "content": f"Question {i}"}, {"role": "assistant", "content": f"Reply {i}"}] for i in range(3)
    ]
    path.write_text("".join(json.dumps({"messages": m}) + "\n" for m in rows))
    page = page_for(qtbot, session, settings, model=tiny_in_store)
    page.preview.show_rendered_view()
    with qtbot.waitSignal(page.checked, timeout=30_000):
        page.open(path)

    def rendered_reply() -> str:
        rendered = page.preview.rendered()
        [(start, end)] = rendered.loss_spans
        return rendered.text[start:end]

    qtbot.waitUntil(lambda: page.preview.rendered() is not None, timeout=SUBPROCESS_S)
    assert rendered_reply().startswith("Reply 0") and "Question 0" in page.preview.rendered().text
    page.preview.select_example(2)
    qtbot.waitUntil(lambda: page.preview.rendered() is not None, timeout=SUBPROCESS_S)
    assert rendered_reply().startswith("Reply 2") and "Question 2" in page.preview.rendered().text
    page.preview.select_example(0)  # rendered before: shown again without asking
    assert rendered_reply().startswith("Reply 0")
    previews = [args for args in started if "preview" in args]
    assert len(previews) == 1 and "--serve" in previews[0]
    [child] = _serving_children()

    child.kill()  # a child that dies is started again for the next example
    qtbot.waitUntil(lambda: not child.is_running(), timeout=10_000)
    page.preview.select_example(1)
    qtbot.waitUntil(lambda: page.preview.rendered() is not None, timeout=SUBPROCESS_S)
    assert rendered_reply().startswith("Reply 1")
    assert sum("preview" in args for args in started) == 2
    [child] = _serving_children()

    page.close()  # nothing outlives the page
    child.wait(timeout=10)
    assert not _serving_children()


def test_counting_can_be_cancelled_and_a_model_that_fails_to_load_is_explained(
    qtbot, session: Session, settings: QSettings, tiny_in_store: str, tmp_path: Path
) -> None:
    page = page_for(qtbot, session, settings, model=tiny_in_store)
    with qtbot.waitSignal(page.checked, timeout=30_000):
        page.open(SAMPLE)
    assert page.is_measuring()
    page.tokens.cancelRequested.emit()
    assert not page.is_measuring() and "Counting cancelled." in page.tokens.status_text()

    shutil.rmtree(tmp_path / "tiny-llama")  # the registered folder is gone: only the child process finds out
    page.tokens.retryRequested.emit()
    assert page.is_measuring()
    qtbot.waitUntil(lambda: not page.is_measuring(), timeout=SUBPROCESS_S)
    status = page.tokens.status_text()
    assert "which no longer exists" in status and "Traceback" not in status
    assert page.tokens.summary() is None


def test_the_gui_process_never_imports_the_ml_stack_while_measuring(session: Session, tiny_in_store: str) -> None:
    """The page, driven to a measured dataset in a fresh process, leaves torch, transformers and tokenizers out."""
    code = textwrap.dedent(
        f"""
        import os, time
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from pathlib import Path
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from app.data_page import DataPage
        from app.dataset_landing import SAMPLE
        from app.session import Session
        settings = QSettings({str(session.home / "gui.ini")!r}, QSettings.Format.IniFormat)
        settings.setValue("data/model", {tiny_in_store!r})
        page = DataPage(Session(Path({str(session.home)!r})), settings=settings)
        done = []
        page.measured.connect(done.append)
        page.open(SAMPLE)
        deadline = time.monotonic() + 100
        while not done and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.02)
        page.shutdown()
        assert done and done[0].examples == 360, page.tokens.status_text()
        """
    )
    assert run_fresh(code).loaded == []
