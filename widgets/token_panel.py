"""A dataset measured in a model's tokens: which model, the maximum length, the histogram and what it means.

Counting tokens needs the model's tokenizer, which this widget knows nothing of: the app
measures (in another process) and shows the result with ``show_summary``, the wait with
``show_busy`` and a failure, with the command that fixes it, with ``show_error``. The panel
asks with ``modelChosen``, ``maxLengthChanged``, ``cancelRequested`` and ``retryRequested``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from widgets.token_histogram import TokenHistogram, TokenLengths

MIN_LENGTH, MAX_LENGTH = 16, 1_048_576
_OTHER_FOLDER = "\x00folder"  # the combo item that asks for a model folder


@dataclass(frozen=True)
class TokenSummary:
    """What measuring a dataset with one model's tokenizer found, at one maximum length."""

    lengths: TokenLengths
    max_length: int
    examples: int
    total: int
    """Tokens of every example, before cutting."""
    longest: int
    truncated: int
    """Examples longer than ``max_length``."""
    cut_tokens: int
    """Tokens those examples lose."""
    tokens_per_epoch: int
    """Tokens trained on in one pass over the training split, after cutting."""
    loss_share: float | None = None
    """Share of the tokens that carry loss (the replies), measured on ``loss_sample`` examples."""
    loss_sample: int = 0
    lost_reply: int = 0
    """Of that sample: examples cut before their reply begins, so nothing of them is learned."""
    failed: int = 0
    """Examples the chat template could not render (not counted)."""


class TokenPanel(QWidget):
    """Model and maximum-length choices over a token-length histogram and the facts under it."""

    modelChosen = Signal(str)  # the item's reference: a store name, "default", or a folder's path
    maxLengthChanged = Signal(int)
    cancelRequested = Signal()
    retryRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._summary: TokenSummary | None = None
        self._last_model: str | None = None  # chosen before "Other model folder…", to go back to on cancel

        self._model = QComboBox()
        self._model.setObjectName("model")
        self._model.setAccessibleName("Base model whose tokenizer measures the data")
        self._model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self._model.setMinimumContentsLength(16)
        self._model.activated.connect(self._model_activated)
        model_label = QLabel("&Model")
        model_label.setBuddy(self._model)

        self._max = QSpinBox()
        self._max.setObjectName("maxLength")
        self._max.setRange(MIN_LENGTH, MAX_LENGTH)
        self._max.setSingleStep(128)
        self._max.setValue(1024)
        self._max.setGroupSeparatorShown(True)
        self._max.setSuffix(" tokens")
        self._max.setKeyboardTracking(False)  # typing 2048 asks once, not for 2, 20, 204 and 2048
        self._max.setAccessibleName("Maximum length in tokens")
        self._max.setToolTip("Examples longer than this are cut in training. Drag the red line to try other values.")
        self._max.valueChanged.connect(self._max_edited)
        max_label = QLabel("Max &length")
        max_label.setBuddy(self._max)

        controls = QHBoxLayout()
        controls.addWidget(model_label)
        controls.addWidget(self._model, 1)
        controls.addSpacing(self.fontMetrics().height())
        controls.addWidget(max_label)
        controls.addWidget(self._max)

        # One status line: busy (bar and Cancel) or failed (icon, reason, the command that fixes it, Try again).
        side = self.fontMetrics().height()
        self._icon = QLabel()
        warning = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        self._icon.setPixmap(warning.pixmap(QSize(side, side), self.devicePixelRatioF()))
        self._bar = QProgressBar(textVisible=False)
        self._bar.setRange(0, 0)
        self._bar.setMaximumWidth(side * 6)
        self._bar.setMaximumHeight(round(side * 0.8))
        self._status = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self._status.setObjectName("status")
        self._status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._cancel = QPushButton("Cancel")
        self._cancel.setObjectName("cancel")
        self._cancel.clicked.connect(self.cancelRequested)
        self._retry = QPushButton("Try again")
        self._retry.setObjectName("retry")
        self._retry.clicked.connect(self.retryRequested)
        status_row = QHBoxLayout()
        status_row.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignTop)
        status_row.addWidget(self._bar, 0, Qt.AlignmentFlag.AlignVCenter)
        status_row.addWidget(self._status, 1)
        status_row.addWidget(self._cancel, 0, Qt.AlignmentFlag.AlignTop)
        status_row.addWidget(self._retry, 0, Qt.AlignmentFlag.AlignTop)

        self._command = QLineEdit(readOnly=True)
        self._command.setObjectName("command")
        self._command.setAccessibleName("Command that fixes this")
        self._command.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self._copy = QPushButton("Copy")
        self._copy.setToolTip("Copy the command, to paste it in a terminal")
        self._copy.clicked.connect(self._copy_command)  # a bound method: a lambda holding self can crash at exit
        command_row = QHBoxLayout()
        command_row.setContentsMargins(side + 6, 0, 0, 0)
        command_row.addWidget(self._command, 1)
        command_row.addWidget(self._copy)
        self._command_row = QWidget()
        self._command_row.setLayout(command_row)

        self._histogram = TokenHistogram()
        self._histogram.maxLengthChanged.connect(self._line_dropped)

        self._facts = QGridLayout()
        self._facts.setContentsMargins(side // 2, 0, side // 2, 0)  # in line with the histogram's sentences
        self._facts.setColumnStretch(1, 1)
        self._facts.setHorizontalSpacing(side)
        self._fact_labels: dict[str, QLabel] = {}
        for row, (key, title) in enumerate(
            (("epoch", "Tokens per epoch"), ("learned", "Learned from"), ("cut", "Cut off"), ("failed", "Not counted"))
        ):
            name = QLabel(title)
            name.setForegroundRole(QPalette.ColorRole.PlaceholderText)
            value = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText)
            value.setObjectName(key)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self._facts.addWidget(name, row, 0, Qt.AlignmentFlag.AlignTop)
            self._facts.addWidget(value, row, 1)
            self._fact_labels[key] = value
            self._fact_labels[key + ":name"] = name

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addLayout(status_row)
        layout.addWidget(self._command_row)
        layout.addWidget(self._histogram, 1)
        layout.addLayout(self._facts)
        self.show_idle()

    # -- choices -----------------------------------------------------------------------------

    def set_models(self, models: Sequence[tuple[str, str]], current: str | None = None) -> None:
        """Offer ``models`` as ``(name shown, reference)``; select ``current`` (added if missing)."""
        current = current if current is not None else self.current_model()
        self._model.blockSignals(True)
        self._model.clear()
        for name, ref in models:
            self._model.addItem(name, ref)
            self._model.setItemData(self._model.count() - 1, ref, Qt.ItemDataRole.ToolTipRole)
        self._model.insertSeparator(self._model.count())
        self._model.addItem("Other model folder…", _OTHER_FOLDER)
        self._model.blockSignals(False)
        if current:
            self._select(current)

    def current_model(self) -> str | None:
        ref = self._model.currentData()
        return ref if ref and ref != _OTHER_FOLDER else None

    def current_model_name(self) -> str:
        return self._model.currentText() if self.current_model() else ""

    def set_model(self, ref: str, name: str | None = None) -> None:
        """Select the model ``ref``, adding it (shown as ``name``) when it is not offered; emits nothing."""
        self._select(ref, name)

    def max_length(self) -> int:
        return self._max.value()

    def set_max_length(self, tokens: int) -> None:
        """Show ``tokens`` as the maximum length; emits nothing."""
        self._max.blockSignals(True)
        self._max.setValue(tokens)
        self._max.blockSignals(False)
        self._histogram.set_max_length(self._max.value())

    # -- states ------------------------------------------------------------------------------

    def show_idle(self, text: str = "", *, retry: bool = False) -> None:
        """Nothing measured: ``text`` (if any) says why or what comes next; ``retry`` offers to measure again."""
        self._summary = None
        self._histogram.set_lengths(None)
        self._show_status(text)
        self._retry.setVisible(retry)
        self._show_facts(None)

    def show_busy(self, text: str) -> None:
        """Measuring: the bar moves, Cancel stops it; the last result stays, greyed, until the new one comes."""
        self._show_status(text, busy=True)
        self._histogram.setEnabled(False)

    def show_error(self, text: str, command: str = "") -> None:
        """Measuring failed: why, and the ``command`` (if any) that fixes it, ready to copy."""
        self._summary = None
        self._histogram.set_lengths(None)
        self._show_status(text, error=True, command=command)
        self._show_facts(None)

    def show_summary(self, summary: TokenSummary) -> None:
        self._summary = summary
        self._show_status("")
        self.set_max_length(summary.max_length)
        self._histogram.set_lengths(summary.lengths)
        self._show_facts(summary)

    def summary(self) -> TokenSummary | None:
        return self._summary

    def status_text(self) -> str:
        """The busy, idle or error line, and the command offered with an error, one per line."""
        command = "" if self._command_row.isHidden() else self._command.text()
        return "\n".join(t for t in (self._status.text(), command) if t)

    def is_busy(self) -> bool:
        return not self._bar.isHidden()

    def histogram(self) -> TokenHistogram:
        return self._histogram

    # -- internals ---------------------------------------------------------------------------

    def _show_status(self, text: str, *, busy: bool = False, error: bool = False, command: str = "") -> None:
        self._histogram.setEnabled(True)
        self._status.setText(text)
        self._status.setVisible(bool(text))
        self._status.setForegroundRole(
            QPalette.ColorRole.WindowText if error or busy else QPalette.ColorRole.PlaceholderText
        )
        self._bar.setVisible(busy)
        self._cancel.setVisible(busy)
        self._icon.setVisible(error)
        self._retry.setVisible(error)
        self._command.setText(command)
        self._command_row.setVisible(bool(command))

    def _show_facts(self, summary: TokenSummary | None) -> None:
        labels = self._fact_labels
        shown = {
            "epoch": summary is not None and summary.examples > 0,
            "learned": summary is not None and summary.examples > 0,
            "cut": summary is not None and summary.truncated > 0,  # else the histogram's sentence says it all
            "failed": summary is not None and summary.failed > 0,
        }
        for key, visible in shown.items():
            labels[key].setVisible(visible)
            labels[key + ":name"].setVisible(visible)
        if summary is None:
            return
        labels["epoch"].setText(f"{summary.tokens_per_epoch:,} (the training split, after cutting)")
        if summary.loss_share is None:
            learned = "Not measured: no example could be rendered."
        else:
            learned = (
                f"{summary.loss_share:.1%} of the tokens are replies the model learns to write "
                f"(measured on {summary.loss_sample:,} examples)"
            )
            if summary.lost_reply:
                learned += f"; {summary.lost_reply:,} of them are cut before their reply begins"
        labels["learned"].setText(learned)
        share = summary.cut_tokens / summary.total if summary.total else 0.0
        labels["cut"].setText(
            f"{summary.cut_tokens:,} tokens ({share:.1%} of all) from {summary.truncated:,} examples; "
            f"the longest has {summary.longest:,}"
        )
        labels["failed"].setText(
            f"{summary.failed:,} examples the chat template could not render; see the issues for why"
        )

    def _select(self, ref: str, name: str | None = None) -> None:
        index = self._model.findData(ref)
        if index < 0:
            index = max(0, self._model.findData(_OTHER_FOLDER) - 1)  # before the separator
            self._model.insertItem(index, name or ref, ref)
            self._model.setItemData(index, ref, Qt.ItemDataRole.ToolTipRole)
        self._model.blockSignals(True)
        self._model.setCurrentIndex(index)
        self._model.blockSignals(False)
        self._last_model = ref

    def _model_activated(self, index: int) -> None:
        ref = self._model.itemData(index)
        if ref == _OTHER_FOLDER:
            folder = QFileDialog.getExistingDirectory(self, "Choose a model folder (config.json and tokenizer files)")
            if not folder:
                if self._last_model:
                    self._select(self._last_model)
                return
            ref = folder
            self._select(folder, Path(folder).name or folder)
        self._last_model = ref
        self.modelChosen.emit(ref)

    def _copy_command(self) -> None:
        QGuiApplication.clipboard().setText(self._command.text())

    def _max_edited(self, tokens: int) -> None:
        self._histogram.set_max_length(tokens)
        self.maxLengthChanged.emit(tokens)

    def _line_dropped(self, tokens: int) -> None:
        tokens = max(MIN_LENGTH, min(MAX_LENGTH, tokens))
        self.set_max_length(tokens)
        self.maxLengthChanged.emit(tokens)
