"""Set-up shared by the Qt tests: a Qt warning fails the test, and so does anything left running.

pytest-qt provides the one session-wide QApplication (``qapp``) and closes the widgets given
to ``qtbot.addWidget``. A timer or thread still running after that fires into a widget that
is gone, and crashes some later, unrelated test; failing the test that started it says where.
"""

from __future__ import annotations

import contextlib
import gc
import traceback
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import QObject, QThread, QThreadPool, QTimer
from PySide6.QtWidgets import QApplication

from app.session import Session

HERE = Path(__file__).parent

# The offscreen platform says this whenever a window is shown; it is not about our code.
QT_LOG_IGNORE = (r"This plugin does not support propagateSizeHints\(\)",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Qt warnings fail the tests in this folder only; an ini option would reach every test."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(pytest.mark.qt_log_ignore(*QT_LOG_IGNORE))


@pytest.fixture(autouse=True)
def _nothing_left_running(qapp: QApplication, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail a test that leaves a QTimer or QThread running, or a window open, once its widgets are closed."""
    started: list[tuple[QObject, str]] = []

    def track(cls: type[QTimer] | type[QThread]) -> None:
        original = cls.start

        def start(self: QObject, *args: object) -> None:
            caller = traceback.extract_stack(limit=2)[0]
            started.append((self, f"{caller.filename}:{caller.lineno}"))
            original(self, *args)

        monkeypatch.setattr(cls, "start", start)

    track(QTimer)
    track(QThread)
    yield
    qapp.processEvents()

    left = []
    for thing, where in started:
        try:
            running = thing.isActive() if isinstance(thing, QTimer) else thing.isRunning()
        except RuntimeError:  # Qt has deleted it, so it cannot be running
            continue
        if running:
            left.append(f"a {type(thing).__name__} started at {where}")
            if isinstance(thing, QTimer):  # stopped, so it can't fire into a later test
                thing.stop()
            else:
                thing.quit()
                thing.wait(2000)
    if not QThreadPool.globalInstance().waitForDone(1000):
        left.append("work in the global QThreadPool")
    left += [f"an open window: {w!r}" for w in qapp.topLevelWidgets() if w.isVisible()]
    for window in qapp.topLevelWidgets():
        window.close()
    # The test's Qt objects that only a cycle keeps (a session, its file watcher) are collected here, on the GUI
    # thread: collected later by a pool thread's allocation, they would be deleted from the wrong thread.
    gc.collect()
    assert not left, "still running after the test: " + "; ".join(left)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty LoRA Studio data folder; LORA_STUDIO_HOME points there, for this process and its children."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("LORA_STUDIO_HOME", str(folder))
    return folder


@pytest.fixture
def session(home: Path) -> Iterator[Session]:
    """A Session on ``home``; runners and workers the pages start there are killed after the test.

    The pages start real background runners (``ensure_runner``), which outlive their caller by
    design; they inherit LORA_STUDIO_HOME, which is how they are found afterwards.
    """
    yield Session(home)
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get("LORA_STUDIO_HOME") == str(home):
                process.kill()
