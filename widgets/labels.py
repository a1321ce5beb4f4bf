"""Word-wrapped labels that never make their column wider, and still get the height their text needs."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy


def wrapping_label(text: str = "", *, selectable: bool = False, name: str = "") -> QLabel:
    """A plain-text label that wraps at the width it is given.

    Its width is ignored when the layout sizes the column (a long path or sentence would
    otherwise widen the whole form), but it keeps height-for-width, so the layout gives it
    exactly the lines it wraps into; replacing the size policy drops that flag unless it is set again.
    """
    label = QLabel(text, textFormat=Qt.TextFormat.PlainText, wordWrap=True)
    policy = QSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    policy.setHeightForWidth(True)
    label.setSizePolicy(policy)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if name:
        label.setObjectName(name)
    return label
