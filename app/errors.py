"""No error vanishes: exceptions from any thread reach the user, and crashes leave a log.

``install`` hooks ``sys.excepthook`` and ``threading.excepthook`` and points
``faulthandler`` at the session log, so even a segfault leaves a trace. An exception
is written to the session log at once (the process may not survive it) and shown in
a dialog with "Copy details" on the GUI thread; one raised on another thread is
handed over through a queued signal. A clean exit moves the session log into the
error history; a session log still there at the next start means the last run
died, and ``offer_previous_crash`` shows it.
"""

from __future__ import annotations

import faulthandler
import sys
import threading
import time
import traceback
from pathlib import Path
from types import TracebackType
from typing import TextIO

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget


def format_exception(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> str:
    return "".join(traceback.format_exception(kind, value, tb))


class ErrorReporter(QObject):
    """Turns exceptions into dialogs on the GUI thread and lines in the crash log."""

    _raised = Signal(str, str)  # summary, details

    def __init__(self, crash_log: Path, parent: QWidget | None = None) -> None:
        super().__init__()
        self._crash_log = crash_log
        self._parent = parent
        self._fault_file: TextIO | None = None
        self.shown: list[str] = []  # summaries shown this session, for the status bar and tests
        self._raised.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self) -> None:
        sys.excepthook = self._on_exception
        threading.excepthook = self._on_thread_exception
        self._crash_log.parent.mkdir(parents=True, exist_ok=True)
        self._fault_file = fault_file = self._crash_log.open("a", encoding="utf-8")
        faulthandler.enable(file=fault_file, all_threads=True)

    def close(self) -> None:
        """A clean exit: the session's errors move to the history, so the next start sees no crash."""
        sys.excepthook = sys.__excepthook__
        threading.excepthook = threading.__excepthook__
        if self._fault_file is not None:
            faulthandler.disable()
            self._fault_file.close()
            self._fault_file = None
        if self._crash_log.is_file():
            history = self._crash_log.with_name("errors.log")
            with history.open("a", encoding="utf-8") as out:
                out.write(self._crash_log.read_text(encoding="utf-8", errors="replace"))
            self._crash_log.unlink()

    def _on_exception(self, kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            QApplication.quit()
            return
        self.report(f"{kind.__name__}: {value}", format_exception(kind, value, tb))

    def _on_thread_exception(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        details = format_exception(args.exc_type, args.exc_value, args.exc_traceback)
        where = args.thread.name if args.thread else "a background thread"
        self.report(f"{args.exc_type.__name__} in {where}: {args.exc_value}", details)

    def report(self, summary: str, details: str) -> None:
        """Record now, show on the GUI thread (safe to call from any thread)."""
        self._append_log(summary, details)
        self._raised.emit(summary, details)

    def _append_log(self, summary: str, details: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            self._crash_log.parent.mkdir(parents=True, exist_ok=True)
            with self._crash_log.open("a", encoding="utf-8") as log:
                log.write(f"=== {stamp} {summary}\n{details}\n")
        except OSError:
            print(f"could not write {self._crash_log}:\n{details}", file=sys.stderr)

    @Slot(str, str)
    def _show(self, summary: str, details: str) -> None:
        self.shown.append(summary)
        show_error(self._parent, "Something went wrong", summary, details)


_OPEN: set[QMessageBox] = set()  # parentless dialogs live until closed, not until the function returns


def show_error(parent: QWidget | None, title: str, text: str, details: str) -> None:
    """A readable error dialog whose full details can be copied for a bug report."""
    box = QMessageBox(QMessageBox.Icon.Critical, title, text, QMessageBox.StandardButton.Close, parent)
    _OPEN.add(box)
    box.finished.connect(lambda _result: _OPEN.discard(box))
    box.setInformativeText("LoRA Studio keeps running. The details below help us fix it.")
    box.setDetailedText(details)
    copy = box.addButton("Copy details", QMessageBox.ButtonRole.ActionRole)
    copy.clicked.disconnect()  # keep the dialog open after copying
    copy.clicked.connect(lambda: QApplication.clipboard().setText(f"{text}\n\n{details}"))
    box.open()


def offer_previous_crash(parent: QWidget | None, crash_log: Path) -> bool:
    """If the last run died (its session log is still there), show the log once. Returns whether it did."""
    if not crash_log.is_file():
        return False
    text = crash_log.read_text(encoding="utf-8", errors="replace").strip()
    crash_log.replace(crash_log.with_name("crash-seen.log"))
    if not text:
        text = "The previous session ended without a clean exit and left no error message (killed or power loss)."
    show_error(
        parent,
        "LoRA Studio stopped unexpectedly last time",
        "The last session ended with an error. Its log is below; please attach it to a bug report.",
        text[-20_000:],
    )
    return True
