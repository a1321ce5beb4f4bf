"""Open folder where the system has no launcher: the path is shown with Copy instead of nothing happening.

The offscreen platform the tests run on is such a system: it has no way to open a document, so
``QDesktopServices.openUrl`` returns False there exactly as it does on a desktop without ``xdg-open``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from app.jobs_page import JobsPage
from app.open_location import PathDialog, open_location
from app.session import Session
from backend.jobs.queue import JobQueue
from tests.qt.conftest import QT_LOG_IGNORE
from tests.queue_support import add

NO_LAUNCHER = r"This plugin does not support QPlatformServices::openDocument\(\)"


def path_dialogs() -> list[PathDialog]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, PathDialog) and w.isVisible()]


@pytest.mark.qt_log_ignore(NO_LAUNCHER, *QT_LOG_IGNORE)
def test_without_a_launcher_open_folder_shows_the_path_with_copy(
    qtbot: QtBot, session: Session, home: Path, tmp_path: Path
) -> None:
    assert not QDesktopServices.openUrl(QUrl.fromLocalFile(str(tmp_path))), "this platform has no launcher"
    with JobQueue(session.queue_path, session.jobs_dir) as queue:
        job = add(queue, tmp_path, "waiting")
    page = JobsPage(session, poll_ms=100, start_runner=lambda _queue: None)
    qtbot.addWidget(page)
    page.show()
    page.select_job(job.id)
    page.job_actions.open_folder.trigger()
    [dialog] = path_dialogs()
    qtbot.addWidget(dialog)
    assert dialog.path.text() == str(job.folder) and dialog.path.isReadOnly()
    QGuiApplication.clipboard().clear()
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == str(job.folder)
    dialog.close()


class Launcher(QObject):
    """A desktop's launcher, as Qt calls one registered for a URL scheme."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.opened.append(url)


def test_where_a_launcher_opens_it_nothing_more_is_shown(qtbot: QtBot, tmp_path: Path) -> None:
    launcher, owner = Launcher(), QWidget()
    qtbot.addWidget(owner)
    QDesktopServices.setUrlHandler("file", launcher, "open")
    try:
        assert open_location(tmp_path, owner)
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert launcher.opened == [QUrl.fromLocalFile(str(tmp_path))] and not path_dialogs()
