"""The Model & training page's dataset box: which dataset the job trains on, and a way to change it.

The dataset is chosen on the Data page; this only shows the session's choice and sends the user there.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QPushButton, QVBoxLayout, QWidget

from app.session import DatasetChoice
from widgets.labels import wrapping_label


class DatasetSummary(QWidget):
    """The chosen dataset's name, size, layout and path, and a button to the Data page."""

    data_page_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = wrapping_label(name="datasetTitle")
        bold = self.title.font()
        bold.setBold(True)
        self.title.setFont(bold)
        self.facts = wrapping_label(selectable=True, name="datasetFacts")
        self.button = QPushButton("Go to the Data page")
        self.button.clicked.connect(self.data_page_requested)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(self.fontMetrics().height() // 3)
        layout.addWidget(self.title)
        layout.addWidget(self.facts)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignLeft)

    def show_choice(self, choice: DatasetChoice | None) -> None:
        if choice is None:
            self.title.setText("No dataset chosen yet")
            self.facts.setText("Check a dataset on the Data page; the one you choose there is what this job trains on.")
            self.button.setText("Go to the Data page")
            return
        path = Path(choice.path)
        self.title.setText(path.name if path.name else choice.path)
        layout = "a column mapping" if choice.columns else f"{choice.format} format"
        counted = f"{choice.rows:,} examples" if choice.rows is not None else "not checked in this session"
        facts = [counted, layout]
        if choice.p99_tokens:
            facts.append(f"99% are at most {choice.p99_tokens:,} tokens long")
        self.facts.setText(" · ".join(facts) + f"\n{choice.path}")
        self.button.setText("Change on the Data page")
