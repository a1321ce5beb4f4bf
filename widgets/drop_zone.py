"""Where a dataset comes in: files and folders dragged from the file manager, pasted, or browsed for.

Every refusal says why (a ``.png`` is not a dataset, a web link is not on this computer), and
mixed drops are refused whole rather than quietly keeping the good part.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QMimeData, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDragMoveEvent,
    QDropEvent,
    QFocusEvent,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
)
from PySide6.QtWidgets import QFileDialog, QFrame, QHBoxLayout, QLabel, QPushButton, QStyle, QVBoxLayout, QWidget

from widgets.palette import negative_color

_MOVE_ONLY = (
    "These can only be moved, and LoRA Studio never moves your files. "
    "Copy them in the file manager instead, then paste them here."
)


class DropState(enum.Enum):
    IDLE = "idle"
    ACCEPT = "accept"  # something usable is being dragged over
    REJECT = "reject"  # something unusable is being dragged over, or was just refused


@dataclass(frozen=True)
class Verdict:
    """What a drop would do: the paths to open, or why nothing can be opened."""

    paths: tuple[Path, ...] = ()
    reason: str = ""

    @property
    def ok(self) -> bool:
        return not self.reason


def _quoted(path: Path) -> str:
    return f"“{path.name or path}”"


def check_paths(
    paths: Sequence[Path],
    extensions: Sequence[str],
    *,
    folders: bool = True,
    multiple: bool = True,
    refusals: Mapping[str, str] | None = None,
) -> Verdict:
    """Decide whether ``paths`` can be opened; the reason names the first offending item.

    ``refusals`` says, for suffixes that look usable but are not (an old .xls), what the file is and what to do.
    """
    if not paths:
        return Verdict(reason="Only files and folders from this computer can be dropped here.")
    if len(paths) > 1 and not multiple:
        return Verdict(reason="Drop one file or folder at a time.")
    for path in paths:
        if path.is_dir():
            if not folders:
                return Verdict(reason=f"{_quoted(path)} is a folder; drop a file instead.")
        elif not path.is_file():
            return Verdict(reason=f"{_quoted(path)} can't be found on this computer.")
        elif path.suffix.lower() not in extensions:
            if refusals and path.suffix.lower() in refusals:
                return Verdict(reason=f"{_quoted(path)} is {refusals[path.suffix.lower()]}.")
            kind = f"a {path.suffix.lower()} file" if path.suffix else "a file without an extension"
            return Verdict(reason=f"{_quoted(path)} is {kind}, not a dataset. Use {_describe(extensions, folders)}.")
    return Verdict(paths=tuple(paths))


def judge_mime(
    mime: QMimeData | None,
    extensions: Sequence[str],
    *,
    folders: bool = True,
    multiple: bool = True,
    refusals: Mapping[str, str] | None = None,
) -> Verdict:
    """Decide whether what is dragged or pasted (``mime``) can be opened, as ``check_paths`` does for paths."""
    if mime is None:
        return check_paths([], extensions)
    paths, foreign = _paths_from_mime(mime)
    if foreign:
        return Verdict(reason="Web links can't be opened here; download the file first, then drop it.")
    return check_paths(paths, extensions, folders=folders, multiple=multiple, refusals=refusals)


def judge_drag(
    event: QDropEvent,
    extensions: Sequence[str],
    *,
    folders: bool = True,
    multiple: bool = True,
    refusals: Mapping[str, str] | None = None,
) -> Verdict:
    """Judge a drag's items, and take them as a copy: a drag that can only move is refused."""
    verdict = judge_mime(event.mimeData(), extensions, folders=folders, multiple=multiple, refusals=refusals)
    if verdict.ok and not copy_or_link(event):
        return Verdict(reason=_MOVE_ONLY)
    return verdict


def _paths_from_mime(mime: QMimeData) -> tuple[list[Path], bool]:
    """Local paths in a drag or the clipboard, and whether anything else (a web link) came along."""
    urls = mime.urls() if mime.hasUrls() else []
    local = [Path(url.toLocalFile()) for url in urls if url.isLocalFile()]
    return local, len(local) != len(urls)


def _describe(extensions: Sequence[str], folders: bool) -> str:
    names = list(extensions)
    listed = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)
    return f"{listed} files" + (", or a folder of them" if folders else "")


class DropZone(QFrame):
    """A framed area that opens dataset files and folders.

    Drag files or folders onto it, paste them (Ctrl+V after copying them in the file manager),
    press Enter or Space to browse for files, or use the two buttons. Emits ``pathsDropped``
    with absolute paths only when every item is usable.
    """

    pathsDropped = Signal(list)  # list[Path]

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        extensions: Sequence[str],
        folders: bool = True,
        multiple: bool = True,
        refusals: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(parent)
        self._extensions = tuple(e.lower() for e in extensions)
        self._folders = folders
        self._multiple = multiple
        self._refusals = dict(refusals or {})
        self._state = DropState.IDLE
        self._pending = Verdict()
        self._last_dir = ""

        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Dataset drop zone")
        self.setAccessibleDescription(
            "Drop, paste, or press Enter to choose " + _describe(self._extensions, folders) + "."
        )

        self._icon = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self._title = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        title_font = self._title.font()
        title_font.setPointSizeF(title_font.pointSizeF() * 1.25)
        title_font.setBold(True)
        self._title.setFont(title_font)
        self._detail = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self._detail.setObjectName("detail")
        for label in (self._title, self._detail):
            label.setTextFormat(Qt.TextFormat.PlainText)

        files_button = QPushButton("Browse files…")
        files_button.setToolTip("Choose one or more dataset files" if multiple else "Choose a dataset file")
        files_button.clicked.connect(self.browse_files)
        buttons = QHBoxLayout()
        buttons.addStretch()
        buttons.addWidget(files_button)
        if folders:
            folder_button = QPushButton("Browse folder…")
            folder_button.setToolTip("Choose a folder of dataset files, or one saved with datasets")
            folder_button.clicked.connect(self.browse_folder)
            buttons.addWidget(folder_button)
        buttons.addStretch()

        layout = QVBoxLayout(self)
        margin = self.fontMetrics().height()
        layout.setContentsMargins(margin, margin, margin, margin)
        layout.addStretch()
        layout.addWidget(self._icon)
        layout.addWidget(self._title)
        layout.addWidget(self._detail)
        layout.addSpacing(margin // 2)
        layout.addLayout(buttons)
        layout.addStretch()
        self._show(DropState.IDLE)

    # -- public ------------------------------------------------------------------------------

    @property
    def state(self) -> DropState:
        return self._state

    def message(self) -> str:
        """What the zone says right now: the headline and the line under it."""
        return f"{self._title.text()}\n{self._detail.text()}"

    def browse_files(self) -> None:
        """Ask for files with the platform's file dialog."""
        patterns = " ".join(f"*{e}" for e in self._extensions)
        filters = f"Datasets ({patterns});;All files (*)"
        if self._multiple:
            names, _ = QFileDialog.getOpenFileNames(self, "Open dataset files", self._last_dir, filters)
        else:
            name, _ = QFileDialog.getOpenFileName(self, "Open a dataset file", self._last_dir, filters)
            names = [name] if name else []
        if names:
            self.open_paths([Path(n) for n in names])

    def browse_folder(self) -> None:
        """Ask for a folder: a folder of dataset files, or one written by ``datasets.save_to_disk``."""
        folder = QFileDialog.getExistingDirectory(self, "Open a dataset folder", self._last_dir)
        if folder:
            self.open_paths([Path(folder)])

    def open_paths(self, paths: Sequence[Path]) -> bool:
        """Check ``paths`` as if they had been dropped; emit them, or show why not."""
        verdict = check_paths(
            paths, self._extensions, folders=self._folders, multiple=self._multiple, refusals=self._refusals
        )
        self._finish(verdict)
        return verdict.ok

    # -- drag and drop -----------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        self._pending = self._judge_drag(event)
        self._show(DropState.ACCEPT if self._pending.ok else DropState.REJECT, self._pending)
        # Accepted even when refused, so the move and leave events come and the reason can be
        # shown while hovering; the move handler is what forbids the drop.
        event.accept()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self._pending.ok:
            copy_or_link(event)
            event.accept()
        else:
            event.ignore()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        # A refusal stays on screen after the pointer leaves, so the reason can still be read.
        if self._state is DropState.ACCEPT:
            self._show(DropState.IDLE)
        self._pending = Verdict()
        event.accept()

    def dropEvent(self, event: QDropEvent) -> None:
        verdict = self._judge_drag(event)
        self._pending = Verdict()
        if verdict.ok:
            event.accept()
        else:
            event.ignore()
        self._finish(verdict)

    # -- keyboard ----------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.matches(QKeySequence.StandardKey.Paste):
            self._finish(self._judge(QGuiApplication.clipboard().mimeData()))
        elif event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.browse_files()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    # -- painting ----------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        palette = self.palette()
        if self._state is DropState.REJECT:
            edge = negative_color(palette)
        elif self._state is DropState.ACCEPT or self.hasFocus():
            edge = palette.color(QPalette.ColorRole.Highlight)
        else:
            edge = palette.color(QPalette.ColorRole.PlaceholderText)
        fill = QColor(edge if self._state is not DropState.IDLE else palette.color(QPalette.ColorRole.Base))
        fill.setAlphaF(0.12 if self._state is not DropState.IDLE else 0.6)

        width = 2.0 if self._state is not DropState.IDLE or self.hasFocus() else 1.5
        pen = QPen(edge, width, Qt.PenStyle.SolidLine if self._state is DropState.ACCEPT else Qt.PenStyle.DashLine)
        radius = self.fontMetrics().height() * 0.6
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(pen)
        painter.setBrush(fill)
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(width, width, -width, -width), radius, radius)

    def focusInEvent(self, event: QFocusEvent) -> None:
        super().focusInEvent(event)
        self.update()

    def focusOutEvent(self, event: QFocusEvent) -> None:
        super().focusOutEvent(event)
        self.update()

    # -- internals ---------------------------------------------------------------------------

    def _judge_drag(self, event: QDropEvent) -> Verdict:
        return judge_drag(
            event, self._extensions, folders=self._folders, multiple=self._multiple, refusals=self._refusals
        )

    def _judge(self, mime: QMimeData | None) -> Verdict:
        return judge_mime(
            mime, self._extensions, folders=self._folders, multiple=self._multiple, refusals=self._refusals
        )

    def _finish(self, verdict: Verdict) -> None:
        if not verdict.ok:
            self._show(DropState.REJECT, verdict)
            return
        self._show(DropState.IDLE)
        first = verdict.paths[0]
        self._last_dir = str(first if first.is_dir() else first.parent)
        self.pathsDropped.emit([p.absolute() for p in verdict.paths])

    def _show(self, state: DropState, verdict: Verdict | None = None) -> None:
        self._state = state
        verdict = verdict or Verdict()
        # The reason for a refusal is the one line that matters, so only it gets full-strength text.
        self._detail.setForegroundRole(
            QPalette.ColorRole.WindowText if state is DropState.REJECT else QPalette.ColorRole.PlaceholderText
        )
        style = self.style()
        if state is DropState.ACCEPT:
            icon = style.standardIcon(QStyle.StandardPixmap.SP_DialogOpenButton)
            self._title.setText(release_text(verdict.paths))
            self._detail.setText("LoRA Studio will check every row and tell you what it finds.")
        elif state is DropState.REJECT:
            icon = style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
            self._title.setText("Can't open this")
            self._detail.setText(verdict.reason)
        else:
            icon = style.standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon)
            self._title.setText("Drop a dataset file or folder here")
            self._detail.setText(f"Accepts {_describe(self._extensions, self._folders)}.")
        side = round(self.fontMetrics().height() * 2.5)
        self._icon.setPixmap(icon.pixmap(QSize(side, side), self.devicePixelRatioF()))
        self.update()


def copy_or_link(event: QDropEvent) -> bool:
    """Take a copy (or a link) of what is dropped, never a move, which would have the file manager delete it."""
    for action in (Qt.DropAction.CopyAction, Qt.DropAction.LinkAction):
        if event.possibleActions() & action:
            event.setDropAction(action)
            return True
    return False


def release_text(paths: Sequence[Path]) -> str:
    if len(paths) == 1:
        kind = "the folder " if paths[0].is_dir() else ""
        return f"Release to open {kind}{_quoted(paths[0])}"
    return f"Release to open these {len(paths)} items"
