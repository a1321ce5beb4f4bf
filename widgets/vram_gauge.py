"""Whether a job will fit in the chosen GPU's memory, what the memory goes to, and what to change.

The app recomputes the estimate on every keystroke in the hyperparameter form and passes it in
as plain data (``widgets.vram_data``); the gauge only updates texts and repaints, it never creates
widgets for an update of the same shape. The verdict is said with an icon of its own shape and
a word, not by colour alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QStyle, QVBoxLayout, QWidget

from widgets.memory_bar import BarSwatch, MemoryBar, Segment
from widgets.palette import is_dark
from widgets.suggestion_list import SuggestionList
from widgets.units import format_bytes
from widgets.vram_data import GaugeData, GpuInfo, Verdict

NO_GPU_TEXT = "No NVIDIA GPU found — training would run on the CPU"
NO_DATA_TEXT = "Choose a model and training settings to see whether the job fits in GPU memory."
_ICONS = {
    Verdict.FITS: QStyle.StandardPixmap.SP_DialogApplyButton,
    Verdict.TIGHT: QStyle.StandardPixmap.SP_MessageBoxWarning,
    Verdict.WILL_NOT_FIT: QStyle.StandardPixmap.SP_MessageBoxCritical,
    None: QStyle.StandardPixmap.SP_MessageBoxInformation,
}
_NEEDS = (
    (
        "System RAM to load the model",
        "While the base model is read and quantized it passes through the computer's own memory (RAM),\n"
        "not only the GPU's. Less free RAM than this makes loading fail or swap to disk.",
    ),
    (
        "System RAM to merge for export",
        "The least RAM the merge needs: it merges the adapter one file at a time, then checks the result\n"
        "against base + adapter layer by layer. With more RAM the check runs in full float32 and takes\n"
        "more; the Export page says how much before anything runs.",
    ),
    (
        "Disk space",
        "For the checkpoints saved during training, the merged model and the exported files.",
    ),
)


class VramGauge(QWidget):
    """The estimated peak against the selected GPU, its breakdown, a verdict and ranked suggestions."""

    suggestionChosen = Signal(int)  # the index of the suggestion the user clicked
    gpuChanged = Signal(int)  # the index of the newly selected GPU in the list given to set_gpus

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._gpus: list[GpuInfo] = []
        self._data: GaugeData | None = None
        line = self.fontMetrics().height()

        title = QLabel("GPU memory", textFormat=Qt.TextFormat.PlainText)
        font = title.font()
        font.setBold(True)
        title.setFont(font)

        self._gpu_label = QLabel("&GPU")
        self._gpu_box = QComboBox()
        self._gpu_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self._gpu_box.setMinimumContentsLength(16)
        self._gpu_box.currentIndexChanged.connect(self._gpu_selected)
        self._gpu_label.setBuddy(self._gpu_box)
        gpu_row = QHBoxLayout()
        gpu_row.addWidget(self._gpu_label)
        gpu_row.addWidget(self._gpu_box, 1)

        self._icon = QLabel()
        self._icon.setFixedSize(QSize(round(line * 1.6), round(line * 1.6)))
        self._verdict = QLabel(textFormat=Qt.TextFormat.PlainText, wordWrap=True)
        self._verdict.setObjectName("verdict")
        self._verdict.setForegroundRole(QPalette.ColorRole.WindowText)  # recoloured per verdict
        bold = self._verdict.font()
        bold.setBold(True)
        self._verdict.setFont(bold)
        self._detail = QLabel(textFormat=Qt.TextFormat.PlainText, wordWrap=True)
        self._detail.setObjectName("verdictDetail")
        words = QVBoxLayout()
        words.setSpacing(line // 6)
        words.addWidget(self._verdict)
        words.addWidget(self._detail)
        headline = QHBoxLayout()
        headline.setSpacing(line // 2)
        headline.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignTop)
        headline.addLayout(words, 1)

        self._bar = MemoryBar()
        self._terms = QGridLayout()
        self._terms.setHorizontalSpacing(line // 2)
        self._terms.setVerticalSpacing(line // 6)
        self._terms.setColumnStretch(1, 1)
        self._term_rows: list[tuple[BarSwatch, QLabel, QLabel]] = []
        self._others_row = self._term_row(None)
        self._add_row(self._others_row, 0)

        self._suggestions_title = QLabel("What would help — click one to apply it", textFormat=Qt.TextFormat.PlainText)
        self._suggestions_title.setFont(bold)
        self._suggestions = SuggestionList()
        self._suggestions.setObjectName("suggestions")
        self._suggestions.chosen.connect(self.suggestionChosen)

        needs_title = QLabel("Also needed", textFormat=Qt.TextFormat.PlainText)
        needs_title.setFont(bold)
        needs = QGridLayout()
        needs.setHorizontalSpacing(line // 2)
        needs.setVerticalSpacing(line // 6)
        needs.setColumnStretch(0, 1)
        self._needs: list[QLabel] = []
        for row, (text, tip) in enumerate(_NEEDS):
            label = QLabel(text, textFormat=Qt.TextFormat.PlainText, wordWrap=True)
            label.setToolTip(tip)
            value = QLabel(textFormat=Qt.TextFormat.PlainText)
            value.setToolTip(tip)
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
            needs.addWidget(label, row, 0)
            needs.addWidget(value, row, 1)
            self._needs.append(value)

        self._details = QWidget()
        details = QVBoxLayout(self._details)
        details.setContentsMargins(0, 0, 0, 0)
        details.setSpacing(line // 2)
        details.addWidget(self._bar)
        details.addLayout(self._terms)
        details.addSpacing(line // 2)
        details.addWidget(self._suggestions_title)
        details.addWidget(self._suggestions)
        details.addSpacing(line // 2)
        details.addWidget(needs_title)
        details.addLayout(needs)

        layout = QVBoxLayout(self)
        layout.setSpacing(round(line * 0.6))
        layout.addWidget(title)
        layout.addLayout(gpu_row)
        layout.addLayout(headline)
        layout.addWidget(self._details)
        layout.addStretch(1)

        self._load_icons()
        self._refresh()

    # -- public ----------------------------------------------------------------------------------

    def set_gpus(self, gpus: Sequence[GpuInfo]) -> None:
        """The machine's GPUs (from NVML); called again with fresh free memory keeps the selection."""
        previous = self._gpu_box.currentIndex()
        self._gpus = list(gpus)
        self._gpu_box.blockSignals(True)
        try:
            while self._gpu_box.count() > len(self._gpus):
                self._gpu_box.removeItem(self._gpu_box.count() - 1)
            for index, gpu in enumerate(self._gpus):
                text = f"{index}: {gpu.name} · {format_bytes(gpu.total_bytes)}"
                if index < self._gpu_box.count():
                    self._gpu_box.setItemText(index, text)
                else:
                    self._gpu_box.addItem(text)
                self._gpu_box.setItemData(
                    index, f"{gpu.name}: {format_bytes(gpu.free_bytes)} free now", Qt.ItemDataRole.ToolTipRole
                )
            if self._gpus and self._gpu_box.currentIndex() < 0:
                self._gpu_box.setCurrentIndex(0)
        finally:
            self._gpu_box.blockSignals(False)
        if self._gpu_box.currentIndex() != previous:
            self.gpuChanged.emit(self._gpu_box.currentIndex())
        self._refresh()

    def current_gpu(self) -> int:
        """The selected GPU's index in the list given to ``set_gpus``; -1 when there is none."""
        return self._gpu_box.currentIndex()

    def set_current_gpu(self, index: int) -> None:
        self._gpu_box.setCurrentIndex(index)

    def set_data(self, data: GaugeData | None) -> None:
        """Show an estimate made for the selected GPU, or None before there is one."""
        self._data = data
        self._refresh()

    # -- internals -------------------------------------------------------------------------------

    def _gpu_selected(self, index: int) -> None:
        self._refresh()
        self.gpuChanged.emit(index)

    def _term_row(self, index: int | None) -> tuple[BarSwatch, QLabel, QLabel]:
        row = (BarSwatch(index), QLabel(textFormat=Qt.TextFormat.PlainText), QLabel(textFormat=Qt.TextFormat.PlainText))
        row[2].setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return row

    def _grow_term_rows(self, count: int) -> None:
        """Make at least ``count`` legend rows (the pool never shrinks), keeping the hatched row last."""
        if count <= len(self._term_rows):
            return
        for widget in self._others_row:
            self._terms.removeWidget(widget)
        while len(self._term_rows) < count:
            self._term_rows.append(self._term_row(len(self._term_rows)))
            self._add_row(self._term_rows[-1], len(self._term_rows) - 1)
        self._add_row(self._others_row, len(self._term_rows))

    def _add_row(self, row: tuple[BarSwatch, QLabel, QLabel], index: int) -> None:
        swatch, label, value = row
        self._terms.addWidget(swatch, index, 0, Qt.AlignmentFlag.AlignVCenter)
        self._terms.addWidget(label, index, 1)
        self._terms.addWidget(value, index, 2)

    def _refresh(self) -> None:
        gpu = self._gpus[self.current_gpu()] if self._gpus and self.current_gpu() >= 0 else None
        self._gpu_label.setVisible(bool(self._gpus))
        self._gpu_box.setVisible(bool(self._gpus))
        data = self._data
        verdict = data.verdict if data is not None and gpu is not None else None
        self._show_icon(verdict)
        palette = self._verdict.palette()
        palette.setColor(QPalette.ColorRole.WindowText, _verdict_color(verdict, self.palette()))
        self._verdict.setPalette(palette)

        self._details.setVisible(data is not None)
        if data is None:
            self._verdict.setText(NO_GPU_TEXT if not self._gpus else "No estimate yet")
            self._detail.setText(NO_DATA_TEXT)
            return
        peak = data.peak_bytes
        self._verdict.setText(verdict.value if verdict is not None else NO_GPU_TEXT)
        self._detail.setText(verdict_detail(verdict, peak, gpu))
        self._show_terms(data, gpu)
        self._suggestions_title.setVisible(bool(data.suggestions) and gpu is not None)
        self._suggestions.setVisible(bool(data.suggestions) and gpu is not None)
        self._suggestions.set_suggestions(data.suggestions, self._icons)
        for label, value in zip(self._needs, (data.ram_load_bytes, data.ram_merge_bytes, data.disk_bytes), strict=True):
            label.setText(format_bytes(value))

    def _show_terms(self, data: GaugeData, gpu: GpuInfo | None) -> None:
        peak = max(data.peak_bytes, 1)
        segments = [
            Segment(
                term.label,
                term.bytes,
                f"{term.label}: {format_bytes(term.bytes)} ({term.bytes / peak:.0%} of the peak)\n{term.explanation}",
                term.color,
            )
            for term in data.terms
        ]
        others = gpu.total_bytes - gpu.free_bytes if gpu is not None else 0
        others_tip = (
            f"In use by other programs: {format_bytes(others)}.\n"
            "Memory that other programs (a desktop, a browser, another job) already hold on this GPU.\n"
            "Closing them makes it free for training."
        )
        self._bar.set_segments(
            segments,
            gpu.total_bytes if gpu is not None else None,
            gpu.free_bytes if gpu is not None else None,
            others_tip,
        )
        self._grow_term_rows(len(segments))
        for index, (swatch, label, value) in enumerate(self._term_rows):
            shown = index < len(segments)
            for widget in (swatch, label, value):
                widget.setVisible(shown)
            if shown:
                swatch.set_color(segments[index].color)
                label.setText(segments[index].label)
                value.setText(format_bytes(segments[index].bytes))
                for widget in (swatch, label, value):
                    widget.setToolTip(segments[index].tooltip)
        swatch, label, value = self._others_row
        for widget in self._others_row:
            widget.setVisible(others > 0)
            widget.setToolTip(others_tip)
        label.setText("In use by other programs")
        value.setText(format_bytes(others))

    def _load_icons(self) -> None:
        """The verdict icons from the current style: native, and the same shapes as in the issue list."""
        self._icons = {verdict: self.style().standardIcon(pixmap) for verdict, pixmap in _ICONS.items()}

    def _show_icon(self, verdict: Verdict | None) -> None:
        self._icon.setPixmap(self._icons[verdict].pixmap(self._icon.size(), self.devicePixelRatioF()))

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.StyleChange:
            self._load_icons()
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            self._refresh()


def verdict_detail(verdict: Verdict | None, peak: int, gpu: GpuInfo | None) -> str:
    """The sentence under the verdict, with the numbers it rests on."""
    need = f"About {format_bytes(peak)} needed"
    if gpu is None or verdict is None:
        return (
            f"{need}. The CPU is fine for a quick test with a small model, but training there is far slower. "
            "The parts below are what the job would need."
        )
    free, total = format_bytes(gpu.free_bytes), format_bytes(gpu.total_bytes)
    if verdict is Verdict.FITS:
        return f"{need}; {free} of this GPU's {total} is free."
    if verdict is Verdict.TIGHT:
        return f"{need} and {free} is free: little to spare, so another program using the GPU could make it run out."
    if peak > gpu.total_bytes:
        return f"{need}, more than this GPU's {total}. One of the changes below makes it smaller."
    return f"{need}, but only {free} of {total} is free. Close other programs using the GPU, or make a change below."


_VERDICT_HUES = {Verdict.FITS: 140, Verdict.TIGHT: 38, Verdict.WILL_NOT_FIT: 4}  # green, amber, red


def _verdict_color(verdict: Verdict | None, palette: QPalette) -> QColor:
    """The verdict word's colour, light on dark themes and dark on light ones so it reads as text."""
    if verdict is None:
        return palette.color(QPalette.ColorRole.WindowText)
    hue = _VERDICT_HUES[verdict]
    return QColor.fromHsl(hue, 150, 175) if is_dark(palette) else QColor.fromHsl(hue, 170, 70)
