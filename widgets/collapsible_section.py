"""A titled section whose content folds away behind a disclosure arrow, for settings few people change."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QSizePolicy, QToolButton, QVBoxLayout, QWidget


class CollapsibleSection(QWidget):
    """A header button with an arrow; clicking it (or Space on it) shows or hides ``content``.

    The button is not checkable: a checked tool button is drawn pressed in, which reads as a stuck button.
    """

    toggled = Signal(bool)  # expanded

    def __init__(self, title: str, content: QWidget, *, expanded: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.content = content
        self.header = QToolButton()
        self.header.setText(title)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setAutoRaise(True)
        self.header.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        font = self.header.font()
        font.setBold(True)
        self.header.setFont(font)
        self.header.clicked.connect(self._clicked)
        rule = QFrame()
        rule.setFrameShape(QFrame.Shape.HLine)
        rule.setFrameShadow(QFrame.Shadow.Sunken)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(self.fontMetrics().height() // 2)
        layout.addWidget(rule)
        layout.addWidget(self.header)
        layout.addWidget(content)
        self._expanded = not expanded
        self.set_expanded(expanded)

    def is_expanded(self) -> bool:
        return self._expanded

    def set_expanded(self, expanded: bool) -> None:
        if expanded == self._expanded:
            return
        self._expanded = expanded
        self.header.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.content.setVisible(expanded)
        self.header.setAccessibleDescription("expanded" if expanded else "collapsed")
        self.toggled.emit(expanded)

    def _clicked(self) -> None:
        self.set_expanded(not self._expanded)
