"""A whole page as a drop target: files dragged anywhere over it open, and a veil says what will happen.

The overlay watches its host's drag events (the host accepts drops; children that don't pass
drags up to it), covers the host while something is dragged over it, and judges the items as
the drop zone does: usable files and folders are taken as a copy, anything else is refused
with the reason, which stays readable while the pointer is over the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PySide6.QtCore import QEvent, QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QDropEvent, QFont, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QWidget

from widgets.drop_zone import Verdict, copy_or_link, judge_drag, release_text
from widgets.palette import negative_color

_DRAGS = (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.DragLeave, QEvent.Type.Drop)


class DropOverlay(QWidget):
    """Covers ``host`` while files are dragged over it; emits ``pathsDropped`` or ``refused``."""

    pathsDropped = Signal(list)  # list[Path], absolute
    refused = Signal(str)  # why a drop was refused

    def __init__(
        self,
        host: QWidget,
        *,
        extensions: Sequence[str],
        folders: bool = True,
        multiple: bool = False,
        refusals: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(host)
        self._host = host
        self._extensions = tuple(e.lower() for e in extensions)
        self._folders = folders
        self._multiple = multiple
        self._refusals = dict(refusals or {})
        self._verdict = Verdict()
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setObjectName("dropOverlay")
        self.hide()
        host.setAcceptDrops(True)
        host.installEventFilter(self)

    def verdict(self) -> Verdict:
        """What releasing the current drag would do (empty when nothing is dragged over the host)."""
        return self._verdict

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is not self.parentWidget() or event.type() not in _DRAGS:
            return False
        kind = event.type()
        if kind == QEvent.Type.DragLeave:
            self._end()
            event.accept()
            return True
        assert isinstance(event, QDropEvent)
        verdict = self._judge(event)
        if kind == QEvent.Type.Drop:
            self._end()
            if verdict.ok:
                event.accept()
                self.pathsDropped.emit([p.absolute() for p in verdict.paths])
            else:
                event.ignore()
                self.refused.emit(verdict.reason)
            return True
        if kind == QEvent.Type.DragEnter:
            # Accepted even when refused, so that the moves and the leave come and the reason shows.
            event.accept()
        elif verdict.ok:
            copy_or_link(event)
            event.accept()
        else:
            event.ignore()
        if verdict != self._verdict or not self.isVisible():
            self._verdict = verdict
            self.setGeometry(self._host.rect())
            self.raise_()
            self.show()
            self.update()
        return True

    def _judge(self, event: QDropEvent) -> Verdict:
        return judge_drag(
            event, self._extensions, folders=self._folders, multiple=self._multiple, refusals=self._refusals
        )

    def _end(self) -> None:
        self._verdict = Verdict()
        self.hide()

    def paintEvent(self, event: QPaintEvent) -> None:
        """A veil over the page, framed in the accent (or, refused, dashed red), and a card with the message."""
        palette = self.palette()
        ok = self._verdict.ok
        edge = palette.color(QPalette.ColorRole.Highlight) if ok else negative_color(palette)
        veil = QColor(palette.color(QPalette.ColorRole.Window))
        veil.setAlphaF(0.94)
        tint = QColor(edge)
        tint.setAlphaF(0.08)
        line = self.fontMetrics().height()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), veil)
        frame = QRectF(self.rect()).adjusted(line * 0.75, line * 0.75, -line * 0.75, -line * 0.75)
        pen = QPen(edge, 2.5, Qt.PenStyle.SolidLine if ok else Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(tint)
        painter.drawRoundedRect(frame, line * 0.8, line * 0.8)

        title = release_text(self._verdict.paths) if ok else "Can't open this"
        detail = (
            "LoRA Studio will check every row and tell you what it finds."
            if ok
            else self._verdict.reason or "Only dataset files and folders can be dropped here."
        )
        title_font = QFont(self.font())
        title_font.setPointSizeF(title_font.pointSizeF() * 1.5)
        title_font.setBold(True)
        width = min(frame.width() - 4 * line, line * 34)
        wrap = Qt.AlignmentFlag.AlignHCenter | Qt.TextFlag.TextWordWrap
        painter.setFont(title_font)
        title_height = painter.fontMetrics().boundingRect(0, 0, round(width), 10_000, wrap, title).height()
        painter.setFont(self.font())
        detail_height = self.fontMetrics().boundingRect(0, 0, round(width), 10_000, wrap, detail).height()
        height = title_height + line // 2 + detail_height
        card = QRectF(0, 0, width + 3 * line, height + 2.5 * line)
        card.moveCenter(frame.center())
        base = palette.color(QPalette.ColorRole.Base)
        painter.setPen(QPen(edge, 1.5))
        painter.setBrush(base)
        painter.drawRoundedRect(card, line * 0.6, line * 0.6)

        top = card.top() + 1.25 * line
        left = card.left() + 1.5 * line
        painter.setFont(title_font)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(QRectF(left, top, width, title_height), wrap, title)
        painter.setFont(self.font())
        if ok:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(QRectF(left, top + title_height + line // 2, width, detail_height), wrap, detail)
