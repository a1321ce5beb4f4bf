"""The studio window's shell: pages and shortcuts, saved state, errors that never vanish."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QIcon, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox

from app.errors import ErrorReporter, offer_previous_crash
from app.main import PAGES, build_window
from tests.import_check import run_fresh


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def close_dialogs() -> list[QMessageBox]:
    boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
    for box in boxes:
        box.close()
    return boxes


def test_every_page_is_reachable_by_list_and_shortcut(qtbot, settings: QSettings) -> None:
    window = build_window(settings)
    qtbot.addWidget(window)
    with qtbot.waitActive(window):
        window.show()
        window.activateWindow()
    assert window.page_titles() == [title for title, _, _ in PAGES]
    for index in reversed(range(len(PAGES))):
        QTest.keySequence(window, QKeySequence(f"Ctrl+{index + 1}"))
        assert window.current_page() == index


def test_window_geometry_and_page_are_restored(qtbot, settings: QSettings) -> None:
    first = build_window(settings)
    qtbot.addWidget(first)
    first.show()
    first.show_page(2)
    first.resize(1000, 700)
    first.close()
    assert settings.value("window/page") == "Jobs"  # by title: a page added before it does not move it
    second = build_window(settings)
    qtbot.addWidget(second)
    assert second.current_page() == 2
    assert (second.width(), second.height()) == (1000, 700)


def test_status_bar_says_when_there_is_no_gpu(qtbot, settings: QSettings) -> None:
    window = build_window(settings)
    qtbot.addWidget(window)
    labels = [label.text() for label in window.statusBar().findChildren(QLabel)]
    assert "No NVIDIA GPU found: jobs run on the CPU" in labels


def test_an_error_on_a_worker_thread_reaches_a_dialog_and_the_log(qtbot, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "session.log"
    reporter = ErrorReporter(log)
    reporter.install()
    try:

        def fail() -> None:
            raise RuntimeError("disk on fire")

        thread = threading.Thread(target=fail, name="loader")
        thread.start()
        thread.join()
        qtbot.waitUntil(lambda: bool(reporter.shown))
        assert reporter.shown == ["RuntimeError in loader: disk on fire"]
        assert "disk on fire" in log.read_text()
        (box,) = close_dialogs()
        assert "Traceback" in box.detailedText()
    finally:
        reporter.close()
    assert not log.exists(), "a clean exit moves the session log to the history"
    assert "disk on fire" in (log.parent / "errors.log").read_text()


def test_a_session_that_died_is_offered_on_the_next_start(qtbot, tmp_path: Path) -> None:
    log = tmp_path / "session.log"
    assert not offer_previous_crash(None, log)
    log.write_text("Fatal Python error: Segmentation fault\n")
    assert offer_previous_crash(None, log)
    (box,) = close_dialogs()
    assert "Segmentation fault" in box.detailedText()
    assert not offer_previous_crash(None, log), "offered once"


def test_the_gui_process_never_imports_the_ml_stack() -> None:
    code = (
        "import os; os.environ['QT_QPA_PLATFORM'] = 'offscreen';"
        "from PySide6.QtWidgets import QApplication; from PySide6.QtCore import QSettings;"
        "app = QApplication([]); from app.main import build_window;"
        "w = build_window(QSettings()); w.show(); app.processEvents()"
    )
    assert run_fresh(code).loaded == []


def test_every_page_and_the_app_have_a_sharp_icon(qtbot, settings: QSettings) -> None:
    from app.icons import studio_icon
    from app.main import PAGES

    for name in [icon for _, icon, _ in PAGES] + ["lora-studio"]:
        icon = studio_icon(name)
        for size in (20, 40, 256):  # 1x and 2x in the list, and large for docks and installers
            for mode in (QIcon.Mode.Normal, QIcon.Mode.Selected):
                image = icon.pixmap(size, size, mode).toImage()
                assert not image.isNull() and image.width() == size, name
                assert any(image.pixelColor(x, size // 2).alpha() for x in range(size)), f"{name} draws nothing"
