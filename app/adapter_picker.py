"""Choose a trained adapter: a registered version, one the queue's jobs produced, or any PEFT folder on disk.

Shared by the Evaluate and Export pages. Reading an adapter's record is a small
JSON file, and the registry's list comes from its index (a few ms for tens of versions),
so both happen on the GUI thread; nothing here loads weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QPushButton, QWidget

from backend.evaluation.loss_note import EVALUATION, IN_TRAINING
from backend.export.adapter import AdapterInfo, read_adapter
from backend.export.errors import ExportError
from backend.jobs.queue import JobQueue
from backend.registry.errors import RegistryError
from backend.registry.registry import Registry

if TYPE_CHECKING:
    from app.session import Session

_RECENT_KEY = "adapters/recent"
_RECENT_MAX = 8


@dataclass(frozen=True)
class AdapterEntry:
    path: str
    label: str


def queue_adapters(queue: JobQueue) -> list[AdapterEntry]:
    """Adapters of succeeded training jobs whose folder still exists, newest first."""
    entries = []
    for job in queue.jobs("succeeded"):
        if job.kind != "train" or not job.adapter_path or not Path(job.adapter_path).is_dir():
            continue
        when = time.strftime("%d %b %H:%M", time.localtime(job.ended_at or job.created_at))
        entries.append(AdapterEntry(job.adapter_path, f"{job.name} (job {job.id}, {when})"))
    return entries


def registry_adapters(registry: Registry) -> list[AdapterEntry]:
    """Registered versions, production first, then the newest: "support-triage v3 (production)"."""
    try:
        listed = registry.versions()
    except (RegistryError, OSError):
        return []  # an unreadable registry leaves the other adapters to choose from
    order = {"production": 0, "staging": 1, "archived": 2}
    listed.sort(key=lambda v: (order.get(v.stage, 3), v.name, -v.version))
    return [AdapterEntry(v.folder, f"{v.label} ({v.stage})") for v in listed if v.problem is None]


def describe(info: AdapterInfo) -> str:
    """One paragraph of what an adapter is: base, rank, data, training metrics and last evaluation."""
    record: dict[str, Any] = info.record or {}
    base = info.recorded_base.get("ref") or info.config.get("base_model_name_or_path") or "unknown base"
    parts = [f"Base: {base}", f"rank {info.config.get('r', '?')}, alpha {_number(info.config.get('lora_alpha'))}"]
    dataset = record.get("dataset") or {}
    if dataset.get("path"):
        parts.append(f"data {Path(str(dataset['path'])).name} ({str(dataset.get('content_hash', ''))[:8]})")
    metrics = record.get("metrics") or {}
    if "eval_loss" in metrics:
        parts.append(f"{IN_TRAINING} {metrics['eval_loss']:.3f}")
    elif "train_loss" in metrics:
        parts.append(f"training loss {metrics['train_loss']:.3f}")
    evaluation = record.get("evaluation")
    if isinstance(evaluation, dict):
        base_loss, tuned_loss = evaluation.get("base_loss"), evaluation.get("loss")
        if isinstance(base_loss, int | float) and isinstance(tuned_loss, int | float):
            parts.append(f"{EVALUATION} {base_loss:.3f} (base) → {tuned_loss:.3f}")
    return " · ".join(parts)


class AdapterPicker(QWidget):
    """A combo of known adapters with a Browse button; emits the chosen folder ("" for none)."""

    adapter_changed = Signal(str)

    def __init__(
        self, queue: JobQueue, settings: QSettings, parent: QWidget | None = None, *, registry: Registry | None = None
    ) -> None:
        super().__init__(parent)
        self._queue = queue
        self._registry = registry or Registry()
        self._settings = settings
        self._combo = QComboBox()
        self._combo.setMinimumContentsLength(40)
        self._combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self._combo.setPlaceholderText("No adapter yet: train one, or browse for a folder")
        self._combo.currentIndexChanged.connect(lambda _: self.adapter_changed.emit(self.path()))
        browse = QPushButton("Browse…")
        browse.setToolTip("Choose any PEFT adapter folder (one with adapter_config.json)")
        browse.clicked.connect(self._browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._combo, 1)
        layout.addWidget(browse)
        self.refresh()

    def path(self) -> str:
        data = self._combo.currentData()
        return data if isinstance(data, str) else ""

    def refresh(self) -> None:
        """Re-read the queue's adapters and the recent folders, keeping the current choice."""
        current = self.path()
        entries = registry_adapters(self._registry) + queue_adapters(self._queue)
        known = {entry.path for entry in entries}
        for folder in self._recent():
            if folder not in known and Path(folder).is_dir():
                entries.append(AdapterEntry(folder, folder))
        self._combo.blockSignals(True)
        self._combo.clear()
        for entry in entries:
            self._combo.addItem(entry.label, entry.path)
            self._combo.setItemData(self._combo.count() - 1, entry.path, 3)  # tooltip: the folder
        index = self._combo.findData(current) if current else (0 if entries else -1)
        self._combo.setCurrentIndex(index)
        self._combo.blockSignals(False)
        if self.path() != current:
            self.adapter_changed.emit(self.path())

    def select(self, folder: str) -> None:
        """Choose ``folder`` (added to the recent list when the queue does not know it)."""
        if self._combo.findData(folder) < 0:
            self._remember(folder)
            self.refresh()
        self._combo.setCurrentIndex(self._combo.findData(folder))

    def follow_requests(self, session: Session, page: str) -> None:
        """Choose the folders ``session.request_adapter`` asks ``page`` for (the Adapters page's Export)."""

        def requested(title: str, _folder: str) -> None:
            if title == page and (folder := session.take_pending_adapter(page)):
                self.select(folder)

        session.adapter_requested.connect(requested)
        requested(page, "")  # one asked for before the page was built

    def info(self) -> tuple[AdapterInfo | None, str]:
        """The chosen adapter read from disk, or None and why not."""
        if not self.path():
            return None, "Choose an adapter: train one on the Model & training page, or browse for a folder."
        try:
            return read_adapter(self.path()), ""
        except ExportError as exc:
            return None, str(exc)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose an adapter folder", self.path() or str(Path.home()))
        if folder:
            self.select(folder)

    def _recent(self) -> list[str]:
        value = cast("list[str] | str | None", self._settings.value(_RECENT_KEY, []))  # QSettings: a lone item is text
        return [value] if isinstance(value, str) else list(value or [])

    def _remember(self, folder: str) -> None:
        recent = [folder, *(f for f in self._recent() if f != folder)][:_RECENT_MAX]
        self._settings.setValue(_RECENT_KEY, recent)


def _number(value: object) -> str:
    """32.0 as 32, 0.5 as 0.5, anything else as it is."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "?" if value is None else str(value)
