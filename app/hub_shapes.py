"""The shapes the estimator needs for the chosen base model, cached per model and read off the GUI thread.

A model folder or the embedded default is read at once (a config and safetensors headers); a hub
id is read by a ``QRunnable`` so that a slow or absent network never freezes the form. A read that
gave no shapes (offline, gated, …) stands for ``HUB_RETRY_S`` and is then tried again, so that
coming back online or accepting a gated model's license shows up without a restart.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot

from app.model_info import ModelInfo
from backend.estimator import ModelShapes
from backend.models.errors import ModelError
from backend.models.hub_facts import HubFacts, read_hub_facts
from backend.models.shapes import shapes_from_config, shapes_from_folder
from backend.models.store import DEFAULT_CONFIG

HUB_RETRY_S = 30.0
"""How long a Hub read that gave no shapes stands before the next estimate asks the Hub again."""


class _HubSignals(QObject):
    done = Signal(str, object)  # ref, HubFacts
    failed = Signal(str, str)  # ref, reason


class _HubRead(QRunnable):
    """Reads a hub model's facts and shapes (model info, config, safetensors headers) off the GUI thread."""

    def __init__(self, ref: str) -> None:
        super().__init__()
        self.ref = ref
        self.signals = _HubSignals()

    def run(self) -> None:
        try:
            facts = read_hub_facts(self.ref)
        except Exception as exc:  # noqa: BLE001 - offline, missing, the Hub down: all say "not known yet"
            self.signals.failed.emit(self.ref, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        else:
            self.signals.done.emit(self.ref, facts)


class ModelShapesCache(QObject):
    """Each model's shapes, or why there are none; hub ids are read in the background."""

    hub_answered = Signal(str, object)
    """A hub read ended: the ref and its ``HubFacts``, or why it could not be read (``str``)."""

    def __init__(self, pool: QThreadPool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = pool
        self._shapes: dict[str, tuple[object, ModelShapes | None, str]] = {}
        self._reads: dict[str, _HubRead] = {}

    def shapes_for(self, info: ModelInfo) -> tuple[ModelShapes | None, str]:
        """The model's shapes for the estimator and, when there are none, why; cached per model."""
        stamp: object = None
        if info.folder is not None:
            config = info.folder / "config.json"
            stamp = (str(info.folder), config.stat().st_mtime_ns if config.is_file() else None)
        cached = self._shapes.get(info.ref)
        if cached is not None and (cached[0] == stamp or _recent_failure(cached[0])):
            return cached[1], cached[2]
        shapes: ModelShapes | None = None
        reason = ""
        if info.problem:
            reason = info.problem
        elif info.folder is not None:
            try:
                shapes = shapes_from_folder(info.folder)
            except ModelError as exc:
                reason = str(exc)
        elif info.ref == "default":
            shapes = shapes_from_config(DEFAULT_CONFIG)
        else:
            self._read_hub(info.ref)
            return None, f"Reading {info.ref}'s shapes from the Hugging Face Hub…"
        self._shapes[info.ref] = (stamp, shapes, reason)
        return shapes, reason

    def forget(self, ref: str) -> None:
        """Drop what is known of ``ref`` (it was just imported: its folder is what counts now)."""
        self._shapes.pop(ref, None)

    def is_reading(self) -> bool:
        """Whether a hub model's facts and shapes are being read."""
        return bool(self._reads)

    def _read_hub(self, ref: str) -> None:
        if ref in self._reads:
            return
        read = _HubRead(ref)
        read.signals.done.connect(self._hub_read, Qt.ConnectionType.QueuedConnection)
        read.signals.failed.connect(self._hub_failed, Qt.ConnectionType.QueuedConnection)
        self._reads[ref] = read
        self._pool.start(read)

    @Slot(str, object)
    def _hub_read(self, ref: str, facts: HubFacts) -> None:
        self._reads.pop(ref, None)
        self._store(ref, facts.shapes, facts.problem)
        self.hub_answered.emit(ref, facts)

    @Slot(str, str)
    def _hub_failed(self, ref: str, reason: str) -> None:
        self._reads.pop(ref, None)
        self._store(ref, None, reason)
        self.hub_answered.emit(ref, reason)

    def _store(self, ref: str, shapes: ModelShapes | None, problem: str) -> None:
        reason = (
            f"The memory estimate needs {ref}'s shapes, which could not be read from the Hub ({problem}). "
            "Import the model to see it."
        )
        # A read that gave no shapes is stamped with the time, so that a later estimate asks again.
        self._shapes[ref] = (None, shapes, "") if shapes else (time.monotonic(), None, reason)


def _recent_failure(stamp: object) -> bool:
    """Whether a cache entry is a Hub read that failed less than ``HUB_RETRY_S`` ago."""
    return isinstance(stamp, float) and time.monotonic() - stamp < HUB_RETRY_S
