"""Where a dataset comes into the Data page: the drop zone, the datasets opened before, the sample, and
the "Open another" menu.

Both parts only say which path to open (``openRequested``); the page checks it. They share the
page's ``RecentDatasets`` store, so forgetting one here and a check remembered there agree.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction, QFont, QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QVBoxLayout, QWidget

from app.recent import RecentDatasets
from backend.core.paths import assets_dir
from backend.data.files import KINDS_BY_SUFFIX, OLD_FORMATS
from widgets.drop_zone import DropZone
from widgets.recent_list import HINT, RecentItem, RecentList

SAMPLE = assets_dir() / "datasets" / "support_triage" / "train.jsonl"
_RECENT_ROWS = 6  # the recent list grows to this many rows, then scrolls


def bold_label(text: str) -> QLabel:
    label = QLabel(text)
    font = QFont(label.font())
    font.setBold(True)
    label.setFont(font)
    return label


class DatasetLanding(QWidget):
    """The Data page while no dataset is open: drop or browse for one, or reopen one opened before."""

    openRequested = Signal(object)  # Path

    def __init__(self, recent: RecentDatasets, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._recent = recent
        line = self.fontMetrics().height()
        self.drop_zone = DropZone(multiple=False, extensions=tuple(KINDS_BY_SUFFIX), refusals=OLD_FORMATS)
        self.drop_zone.setMinimumHeight(line * 11)
        self.drop_zone.setMaximumHeight(line * 18)
        self.drop_zone.pathsDropped.connect(lambda paths: self.openRequested.emit(paths[0]))
        self.recent_list = RecentList()
        self.recent_list.openRequested.connect(lambda path: self.openRequested.emit(Path(path)))
        self.recent_list.forgetRequested.connect(self._forget)
        self._recent_heading = bold_label("Recent datasets")
        self._recent_hint = QLabel(HINT, wordWrap=True)
        self._recent_hint.setObjectName("recentHint")
        self._recent_hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self._no_recent = QLabel(
            "Datasets you open are listed here, with what their last check found. "
            f'New to this? <a href="{SAMPLE}">Open the sample dataset</a> (360 support tickets, triaged).'
        )
        self._no_recent.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self._no_recent.setWordWrap(True)
        self._no_recent.linkActivated.connect(lambda link: self.openRequested.emit(Path(link)))
        column = QVBoxLayout()
        column.addStretch(1)
        column.addWidget(self.drop_zone, 3)
        column.addSpacing(line)
        column.addWidget(self._recent_heading)
        column.addWidget(self._recent_hint)
        column.addWidget(self.recent_list, 2)
        column.addWidget(self._no_recent)
        column.addStretch(1)
        centred = QHBoxLayout(self)
        centred.addStretch(1)
        centred.addLayout(column, 6)
        centred.addStretch(1)

    def refresh(self) -> None:
        """Show the recent datasets as the store has them now."""
        entries = self._recent.entries()
        self.recent_list.set_items([RecentItem(e.path, e.name, e.detail(), missing=not e.exists()) for e in entries])
        self.recent_list.setVisible(bool(entries))
        self._recent_hint.setVisible(bool(entries))
        # As tall as its entries (it scrolls past the most it shows), so the empty page stays centred.
        rows = self.recent_list.sizeHintForRow(0) * max(1, min(len(entries), _RECENT_ROWS)) if entries else 0
        self.recent_list.setMaximumHeight(rows + 2 * self.recent_list.frameWidth())
        self._no_recent.setVisible(not entries)

    def _forget(self, path: str) -> None:
        self._recent.forget(path)
        self.refresh()


class OpenMenu(QMenu):
    """ "Open another": browse for files or a folder, or reopen a recent dataset other than the one open."""

    openRequested = Signal(object)  # Path

    def __init__(
        self, recent: RecentDatasets, drop_zone: DropZone, current: Callable[[], Path | None], parent: QWidget
    ) -> None:
        super().__init__(parent)
        self._recent = recent
        self._drop_zone = drop_zone  # its file dialogs, so browsing works the same from both
        self._current = current
        self.aboutToShow.connect(self._fill)
        self.triggered.connect(self._chosen)

    def _fill(self) -> None:
        self.clear()
        self.addAction("Browse files…").setData("files")
        self.addAction("Browse folder…").setData("folder")
        entries = [e for e in self._recent.entries() if e.path != str(self._current())]
        if entries:
            self.addSection("Recent")
        for entry in entries:
            action = self.addAction(entry.name)
            action.setData(entry.path)
            action.setToolTip(entry.path)
            action.setEnabled(entry.exists())
        self.setToolTipsVisible(True)

    def _chosen(self, action: QAction) -> None:
        chosen = action.data()
        if chosen == "files":
            self._drop_zone.browse_files()
        elif chosen == "folder":
            self._drop_zone.browse_folder()
        elif chosen:
            self.openRequested.emit(Path(chosen))
