"""Which sheet of a workbook is read, for a workbook with rows in more than one.

A workbook is read one sheet at a time; without this, rows in the other sheets would be left
out with nothing on screen to say so or to read them instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget


class SheetPicker(QWidget):
    """A "Sheet:" combo box, hidden while there is nothing to choose; ``sheetChosen`` carries a title the user chose."""

    sheetChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.combo = QComboBox()
        self.combo.setObjectName("sheet")
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.combo.setToolTip(
            "The sheet of the workbook that is read. Rows in the other sheets listed are not; choose one to read it "
            "instead."
        )
        self.combo.currentIndexChanged.connect(self._chosen)
        label = QLabel("&Sheet:")
        label.setBuddy(self.combo)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(label)
        layout.addWidget(self.combo)
        self.hide()

    def set_sheets(self, sheets: Sequence[tuple[str, bool]], current: str | None) -> None:
        """Offer ``sheets`` as ``(title, visible)``, hidden ones marked, with ``current`` chosen.

        Shown when there are two, or one to choose instead of a ``current`` that isn't among them."""
        with QSignalBlocker(self.combo):
            self.combo.clear()
            for title, visible in sheets:
                self.combo.addItem(title if visible else f"{title} (hidden)", title)
            self.combo.setCurrentIndex(self.combo.findData(current) if current is not None else -1)
        self.setVisible(len(sheets) > 1 or (bool(sheets) and self.combo.currentIndex() < 0))

    def _chosen(self, index: int) -> None:
        if index >= 0:
            self.sheetChosen.emit(self.combo.itemData(index))
