"""Desktop habits in the window: File ▸ Open dataset… and its standard key, Open recent, Save report…,
menu texts whose mnemonics render, and a Job menu with every job action and its shortcut."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect, QSettings, Qt
from PySide6.QtGui import QAction, QImage, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit, QMenu

from app.data_page import DataPage
from app.dataset_landing import SAMPLE
from app.main import PAGES, build_window
from app.main_window import MainWindow, with_mnemonic
from app.recent import RecentDataset, RecentDatasets
from app.screenshots import SIZE, WALKS
from app.session import DatasetChoice, Session
from app.spec_fields import LABELS, in_words, spec_field
from app.training_page import TrainingPage
from tests.qt.conftest import QT_LOG_IGNORE

DATA = [title for title, _, _ in PAGES].index("Data")


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings: QSettings, session: Session) -> MainWindow:
    window = build_window(settings, session)
    qtbot.addWidget(window)
    with qtbot.waitActive(window):
        window.show()
        window.activateWindow()
    window.show_page([title for title, _, _ in PAGES].index("Jobs"))
    return window


def asked_for_a_file(monkeypatch: pytest.MonkeyPatch, answer: Path) -> list[str]:
    """Answer the platform file dialog the drop zone's Browse button opens with ``answer``; the titles asked."""
    titles: list[str] = []

    def choose(_parent: object, title: str, *_args: object) -> tuple[str, str]:
        titles.append(title)
        return str(answer), ""

    monkeypatch.setattr("widgets.drop_zone.QFileDialog.getOpenFileName", choose)
    return titles


def data_page(window: MainWindow) -> DataPage:
    page = window.page_widget(DATA).page()  # type: ignore[attr-defined]
    assert isinstance(page, DataPage)
    return page


def test_ctrl_o_opens_the_data_pages_dataset_dialog_and_the_file_chosen(
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    titles = asked_for_a_file(monkeypatch, SAMPLE)
    assert window.open_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Open)
    QTest.keySequence(window, QKeySequence(QKeySequence.StandardKey.Open))
    assert titles == ["Open a dataset file"], "the same dialog as the Data page's Browse button"
    assert window.current_page() == DATA
    page = data_page(window)
    qtbot.waitUntil(lambda: page.report is not None and not page.is_checking(), timeout=30_000)
    assert page.title.text() == SAMPLE.name and page.report is not None and page.report.accepted == 360


def test_file_open_from_the_menu_and_save_report_only_where_a_report_is_shown(
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    file_menu = menus_of(window)[0]
    assert file_menu.title() == "&File"
    texts = [a.text() for a in file_menu.actions() if not a.isSeparator()]
    assert texts == ["&Open dataset…", "Open &recent", "&Save report…", "&Quit"]
    assert not window.save_report_action.isEnabled(), "no report is shown on the Jobs page"
    titles = asked_for_a_file(monkeypatch, SAMPLE)
    window.open_action.trigger()  # what choosing File ▸ Open dataset… does
    assert titles == ["Open a dataset file"]
    page = data_page(window)
    qtbot.waitUntil(window.save_report_action.isEnabled, timeout=30_000)
    target = tmp_path / "report.json"
    monkeypatch.setattr("app.data_page.QFileDialog.getSaveFileName", lambda *a, **k: (str(target), ""))
    QTest.keySequence(window, QKeySequence(QKeySequence.StandardKey.Save))
    assert json.loads(target.read_text())["accepted"] == 360
    window.show_page(DATA + 1)
    assert not window.save_report_action.isEnabled(), "another page shows no report"
    assert page.report is not None


def test_open_recent_lists_the_datasets_opened_before_and_opens_one(
    qtbot, window: MainWindow, settings: QSettings, tmp_path: Path
) -> None:
    window.recent_menu.aboutToShow.emit()
    [empty] = window.recent_menu.actions()
    assert empty.text() == "No datasets opened yet" and not empty.isEnabled()
    gone = tmp_path / "moved.jsonl"
    store = RecentDatasets(settings)
    store.remember(RecentDataset(str(SAMPLE), rows=360, accepted=360))
    store.remember(RecentDataset(str(gone), rows=3, accepted=3))
    window.recent_menu.aboutToShow.emit()
    entries = window.recent_menu.actions()
    assert [(a.text(), a.isEnabled()) for a in entries] == [(gone.name, False), (SAMPLE.name, True)]
    twin = tmp_path / SAMPLE.name  # another train.jsonl: the two are told apart by their folders
    store.remember(RecentDataset(str(twin), rows=1, accepted=1))
    window.recent_menu.aboutToShow.emit()
    assert [a.text() for a in window.recent_menu.actions()] == [
        f"{SAMPLE.name} — {tmp_path.name}",
        gone.name,
        f"{SAMPLE.name} — {SAMPLE.parent.name}",
    ]
    entries = window.recent_menu.actions()[1:]
    entries[1].trigger()
    assert window.current_page() == DATA
    page = data_page(window)
    qtbot.waitUntil(lambda: page.report is not None and not page.is_checking(), timeout=30_000)
    assert page.title.text() == SAMPLE.name


def menus_of(window: MainWindow) -> list[QMenu]:
    menus = [action.menu() for action in window.menuBar().actions()]
    assert all(isinstance(menu, QMenu) for menu in menus)
    return [menu for menu in menus if isinstance(menu, QMenu)]


def menu_texts(menu: QMenu) -> list[str]:
    texts = []
    for action in menu.actions():
        if action.isSeparator():
            continue
        texts.append(action.text())
        if isinstance(submenu := action.menu(), QMenu):
            texts += menu_texts(submenu)
    return texts


def test_every_menu_text_has_a_mnemonic_that_renders_and_no_literal_underscore(window: MainWindow) -> None:
    menus = menus_of(window)
    assert [m.title() for m in menus] == ["&File", "&View", "&Go", "&Job", "&Help"]
    go = [action.text() for action in menus[2].actions()]
    assert go[:4] == ["&Data", "&Model && training", "&Jobs", "M&onitor"]
    shown = [text.replace("&&", "\0").replace("&", "").replace("\0", "&") for text in go]
    assert shown == [title for title, _, _ in PAGES], "each page's title, as written"
    keys = [text.replace("&&", "")[text.replace("&&", "").index("&") + 1].lower() for text in go]
    assert len(set(keys)) == len(keys), "each page its own mnemonic"
    for menu in menus:
        for text in menu_texts(menu):
            single = text.replace("&&", "")
            # A lone "&" before a space or at the end is what rendered "Model _training".
            assert not re.search(r"&(\s|$)", single), text
            assert single.count("&") <= 1, text


def test_with_mnemonic_escapes_ampersands_and_skips_letters_taken() -> None:
    taken: set[str] = set()
    assert with_mnemonic("Model & training", taken) == "&Model && training"
    assert with_mnemonic("Monitor", taken) == "M&onitor"
    assert with_mnemonic("& &", taken) == "&& &&"


def test_every_job_action_is_in_the_job_menu_with_its_shortcut(window: MainWindow) -> None:
    job_menu = menus_of(window)[3]
    in_menu = {a for a in job_menu.actions() if not a.isSeparator()}
    jobs = window.page_widget([title for title, _, _ in PAGES].index("Jobs"))
    page_actions = {a for a in jobs.actions() if isinstance(a, QAction)}
    assert page_actions and page_actions <= in_menu
    shortcuts = {a.iconText(): a.shortcut().toString() for a in in_menu}
    assert shortcuts["Cancel"] == "Ctrl+." and shortcuts["Open folder"] == "Ctrl+Shift+O"


@pytest.fixture
def training(qtbot, session: Session, settings: QSettings, tmp_path: Path) -> TrainingPage:
    path = tmp_path / "support.jsonl"
    row = {"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    session.dataset_changed.emit(DatasetChoice(str(path), "messages", None, 1))
    page = TrainingPage(session, settings=settings, read_gpus=list)
    qtbot.addWidget(page)
    page.resize(1280, 800)
    with qtbot.waitActive(page):
        page.show()
        page.activateWindow()
    return page


def layout_of(qtbot, page: TrainingPage) -> dict[str, tuple[int, int, int, int]]:
    """Where every field of the form and its help line are, in the form's coordinates, once laid out."""
    for _ in range(3):  # wrapped labels take a second pass of the layouts
        qtbot.wait(1)
    places = {}
    for path, field in page.form.fields.items():
        if field.isVisibleTo(page.form):
            top = field.mapTo(page.form, field.rect().topLeft())
            places[path] = (top.y(), field.height(), field.help.y(), field.help.height())
            assert field.help.height() >= field.help.heightForWidth(field.help.width()), f"{path}'s help is clipped"
    return places


def test_an_error_appearing_or_clearing_moves_nothing_in_the_form(qtbot, training: TrainingPage) -> None:
    rate = training.form.fields["training.learning_rate"]
    editor = rate.editor
    assert isinstance(editor, QLineEdit)
    training.form_scroll.ensureWidgetVisible(editor)
    before = layout_of(qtbot, training)
    editor.setFocus()
    editor.selectAll()
    QTest.keyClicks(editor, "abc")
    qtbot.waitUntil(lambda: bool(rate.error()))
    assert rate.error() == "Learning rate must be a number; you wrote 'abc'", "the label shown, not the spec key"
    assert layout_of(qtbot, training) == before, "the error took space the form did not keep for it"
    editor.selectAll()
    QTest.keyClicks(editor, "2e-4")
    qtbot.waitUntil(lambda: not rate.error())
    assert layout_of(qtbot, training) == before, "the form moved when the error cleared"


def test_a_click_between_fields_keeps_the_focus_and_tab_goes_on_to_the_next(qtbot, training: TrainingPage) -> None:
    rate = training.form.fields["training.learning_rate"]
    after = training.form.fields["training.micro_batch_size"]
    training.form_scroll.ensureWidgetVisible(after.editor)
    rate.editor.setFocus()
    scrolled = training.form_scroll.verticalScrollBar().value()
    content = training.form_scroll.widget()
    assert content is not None
    gap = after.mapTo(content, after.rect().topLeft()) - QPoint(0, 2)
    QTest.mouseClick(content, Qt.MouseButton.LeftButton, pos=QPoint(2, gap.y()))
    assert QApplication.focusWidget() is rate.editor
    QTest.keyClick(rate.editor, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is after.editor
    assert training.form_scroll.verticalScrollBar().value() == scrolled, "Tab scrolled the form back to the top"


def test_messages_name_the_settings_by_the_labels_the_form_shows() -> None:
    assert in_words("training.learning_rate must be a number; you wrote 'abc'") == (
        "Learning rate must be a number; you wrote 'abc'"
    )
    advice = "aim for at least 50 (raise data.eval_split, or give a separate eval file)."
    assert in_words(advice) == "aim for at least 50 (raise “Held-out share”, or give a separate eval file)."
    # Longer keys win over their prefixes; keys the form does not show, and words that merely contain one, stay.
    assert in_words("data.eval_path and data.columns.instruction") == "Evaluation data and data.columns.instruction"
    assert in_words("metadata.eval_split_x") == "metadata.eval_split_x"
    for path in LABELS:
        spec_field(path)  # every key labelled is a setting of the spec (a KeyError says which is not)


# Popup menus and modal dialogs on the offscreen platform, which has no window manager to ask.
@pytest.mark.qt_log_ignore(*QT_LOG_IGNORE, r"This plugin does not support (raise\(\)|grabbing the keyboard)")
def test_the_file_open_walk_through_records_each_step(window: MainWindow, tmp_path: Path) -> None:
    """``python -m app.screenshots --walk file-open``: the menu and the dialog are in the pictures, and the
    dataset chosen in the dialog is opened."""
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    window.resize(*SIZE)
    plain = window.grab().toImage()
    saved = WALKS["file-open"](app, window, tmp_path)
    assert [path.name for path in saved] == [
        "walk-file-open-1-menu.png",
        "walk-file-open-2-recent.png",
        "walk-file-open-3-dialog.png",
        "walk-file-open-4-opened.png",
    ]
    menu = QImage(str(saved[0]))
    assert (menu.width(), menu.height()) == SIZE
    corner = QRect(0, window.menuBar().height(), 200, 60)  # where the File menu drops down
    assert menu.copy(corner) != plain.copy(corner), "the open menu is drawn over the window"
    page = data_page(window)
    assert page.report is not None and page.title.text() == SAMPLE.name
