"""What can be done with the Jobs page's selected job: the actions, and when each one applies.

``JobActions`` owns the ``QAction``s (text, tooltip with its shortcut, icon) and enables each
from the selected job's state and its place in the line; the page connects what they do. The
toolbar and the context menu are built from the same actions, so a shortcut, a button and a
menu entry can never disagree; each has its own mnemonic, underlined in the context menu.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QMenu, QStyle, QToolButton, QWidget

from app.main_window import with_mnemonic
from backend.jobs.job import REQUEUEABLE, Job

_Shortcut = str | QKeySequence.StandardKey | None


class JobActions(QObject):
    """Cancel, pause, resume, retry (from the start or the last checkpoint), duplicate, edit a copy,
    delete, open the folder, move up and down the line, show the charts."""

    def __init__(self, owner: QWidget) -> None:
        """The actions are added to ``owner``: their shortcuts work while it or a child has the focus."""
        super().__init__(owner)
        self._owner = owner
        self._mnemonics: set[str] = set()
        pixmap = QStyle.StandardPixmap
        self.cancel = self._make(
            "Cancel",
            "Stop the job after its current step, with a checkpoint; a queued job never starts",
            "Ctrl+.",
            pixmap.SP_BrowserStop,
        )
        self.pause = self._make(
            "Pause",
            "Stop after the current step and keep the job first in line until you resume it",
            "Ctrl+P",
            pixmap.SP_MediaPause,
        )
        self.resume = self._make(
            "Resume",
            "Continue from the newest checkpoint (or let a paused job run again)",
            "Ctrl+R",
            pixmap.SP_MediaPlay,
        )
        self.retry = self._make(
            "Retry",
            "Queue the job again at the end, from the start (its earlier log is kept under attempts/)",
            "Ctrl+Shift+R",
            pixmap.SP_BrowserReload,
        )
        self.retry_checkpoint = self._make(
            "Retry from the last checkpoint",
            "Queue the job again at the end, continuing from its newest checkpoint",
            None,
        )
        self.duplicate = self._make(
            "Duplicate",
            "Queue a copy of the job with the same settings",
            "Ctrl+D",
            pixmap.SP_FileDialogNewFolder,
        )
        self.edit_copy = self._make(
            "Edit a copy…",
            "Open the job's settings in the Model & training form, to change them and queue the copy",
            "Ctrl+E",
        )
        self.delete = self._make(
            "Delete…",
            "Delete the job and its folder: checkpoints, adapter and logs",
            QKeySequence.StandardKey.Delete,
            pixmap.SP_TrashIcon,
        )
        self.open_folder = self._make(
            "Open folder",
            "Show the job's folder in the file manager",
            "Ctrl+Shift+O",
            pixmap.SP_DirOpenIcon,
        )
        self.move_up = self._make("Run earlier", "Move the queued job up the line", "Alt+Up")
        self.move_down = self._make("Run later", "Move the queued job down the line", "Alt+Down")
        self.charts = self._make(
            "Show charts",
            "Open the job's live charts on the Monitor page",
            None,
            pixmap.SP_DesktopIcon,
        )

    def _make(self, text: str, tip: str, shortcut: _Shortcut, symbol: QStyle.StandardPixmap | None = None) -> QAction:
        action = QAction(with_mnemonic(text, self._mnemonics), self._owner)  # the buttons show it without the &
        if symbol is not None:
            action.setIcon(self._owner.style().standardIcon(symbol))
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            tip = f"{tip} ({action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
        action.setToolTip(tip)
        self._owner.addAction(action)
        return action

    def update(self, job: Job | None, jobs: list[Job]) -> None:
        """Enable what applies to ``job`` (the selected one, if any) among ``jobs`` as last read."""
        state = job.state if job else None
        queued = [j for j in jobs if j.state == "queued"]
        place = next((i for i, j in enumerate(queued, 1) if job and j.id == job.id), None)
        enabled = {
            self.cancel: job is not None and state in ("queued", "running") and job.request != "cancel",
            self.pause: job is not None
            and ((state == "queued" and not job.held) or (state == "running" and job.request is None)),
            self.resume: job is not None and (job.paused or state in REQUEUEABLE),
            self.retry: state in REQUEUEABLE,
            self.retry_checkpoint: job is not None and state in REQUEUEABLE and job.kind == "train",
            self.duplicate: job is not None,
            self.edit_copy: job is not None and job.kind in ("train", "measure"),
            self.delete: job is not None and state != "running",
            self.open_folder: job is not None and job.folder.is_dir(),
            self.move_up: place is not None and place > 1,
            self.move_down: place is not None and place < len(queued),
            self.charts: job is not None,
        }
        for action, on in enabled.items():
            action.setEnabled(bool(on))

    def toolbar(self) -> QHBoxLayout:
        """The buttons above the table: what is done most, then the charts and the folder on the right."""
        row = QHBoxLayout()
        row.setSpacing(self._owner.fontMetrics().height() // 3)
        for action in (self.cancel, self.pause, self.resume, self.retry, self.duplicate, self.delete):
            row.addWidget(_tool_button(action))
        row.addStretch(1)
        row.addWidget(_tool_button(self.charts))
        row.addWidget(_tool_button(self.open_folder))
        return row

    def context_menu(self, parent: QWidget) -> QMenu:
        """Every action, in groups; the menu deletes itself once it is hidden."""
        menu = QMenu(parent)
        groups = (
            (self.charts,),
            (self.cancel, self.pause, self.resume),
            (self.retry, self.retry_checkpoint, self.duplicate, self.edit_copy),
            (self.move_up, self.move_down),
            (self.open_folder, self.delete),
        )
        for index, group in enumerate(groups):
            if index:
                menu.addSeparator()
            for action in group:
                menu.addAction(action)
        menu.aboutToHide.connect(menu.deleteLater)
        return menu


def _tool_button(action: QAction) -> QToolButton:
    button = QToolButton()
    button.setDefaultAction(action)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    button.setAutoRaise(False)
    return button
