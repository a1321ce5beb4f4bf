"""Containers the pages' forms are built from: a titled group and a frameless vertical scroll area."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGroupBox, QScrollArea, QVBoxLayout, QWidget


def group(title: str, body: QWidget) -> QGroupBox:
    """``body`` in a group box titled ``title``, with margins of the font's line height."""
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    line = box.fontMetrics().height()
    layout.setContentsMargins(line, line // 2, line, line)
    layout.addWidget(body)
    return box


def vertical_scroll(content: QWidget) -> QScrollArea:
    """``content`` in a scroll area that scrolls only up and down: the content takes the width it is given."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(content)
    # A click on the empty space between fields must not take the focus from the field being edited:
    # Tab would then start over from the first field and scroll back to the top.
    area.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    return area
