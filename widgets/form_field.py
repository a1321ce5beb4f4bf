"""One setting of a form: its editor, a plain-language help line under it, and its error under that.

The help text is always visible (a tooltip alone is never found by someone who does not know
to hover), in a quieter colour than the value. The error line is hidden until there is an
error, and then says it in red with an icon, next to the field it is about.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QStyle, QVBoxLayout, QWidget

from widgets.palette import mix, negative_color


class FormField(QWidget):
    """``editor`` with ``help_text`` below it, and an error line that appears when one is set."""

    def __init__(self, editor: QWidget, help_text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        line = self.fontMetrics().height()
        self.help = QLabel(help_text, textFormat=Qt.TextFormat.PlainText, wordWrap=True)
        self.help.setObjectName("fieldHelp")
        self.help.setVisible(bool(help_text))
        self._error_icon = QLabel()
        self._error_icon.setFixedSize(line, line)
        self._error = QLabel(textFormat=Qt.TextFormat.PlainText, wordWrap=True)
        self._error.setObjectName("fieldError")
        self._error_row = QWidget()
        error_layout = QHBoxLayout(self._error_row)
        error_layout.setContentsMargins(0, 0, 0, 0)
        error_layout.setSpacing(line // 3)
        error_layout.addWidget(self._error_icon, 0, Qt.AlignmentFlag.AlignTop)
        error_layout.addWidget(self._error, 1)
        # The error's line is kept while there is no error, so one appearing or clearing moves nothing
        # below it (a click aimed there lands where it was aimed); only an error longer than a line grows it.
        policy = self._error_row.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self._error_row.setSizePolicy(policy)
        self._error_row.setVisible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(line // 6)
        layout.addWidget(editor)
        layout.addWidget(self.help)
        layout.addWidget(self._error_row)
        if help_text:
            editor.setToolTip(help_text)
        self._recolor()

    def error(self) -> str:
        """The error shown under the field; empty when there is none."""
        return self._error.text() if not self._error_row.isHidden() else ""

    def set_error(self, text: str) -> None:
        if text == self.error():
            return
        self._error.setText(text)
        self._error_row.setVisible(bool(text))
        self.editor.setAccessibleDescription(text)

    def _recolor(self) -> None:
        palette = self.palette()
        text, window = palette.color(QPalette.ColorRole.WindowText), palette.color(QPalette.ColorRole.Window)
        quiet = self.help.palette()
        quiet.setColor(QPalette.ColorRole.WindowText, mix(text, window, 0.3))
        self.help.setPalette(quiet)
        red = self._error.palette()
        red.setColor(QPalette.ColorRole.WindowText, negative_color(palette))
        self._error.setPalette(red)
        icon = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical)
        self._error_icon.setPixmap(icon.pixmap(self._error_icon.size(), self.devicePixelRatioF()))

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            self._recolor()
