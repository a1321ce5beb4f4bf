"""What the pages share: the chosen dataset, the selected job, the queue's state, and the way to ask for a page.

Pages never hold each other; each takes the one ``Session`` and talks through its
signals, so any page can be built, tested or replaced alone. The queue's state is one
``app.queue_state.QueueState`` that every page observes. ``keep_in`` brings back the dataset and
the job of the last session (QSettings), and keeps them there as they change.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal

from app.queue_state import QueueState
from backend.core import paths

SETTINGS_DATASET = "session/dataset"
SETTINGS_JOB = "session/job"


@dataclass(frozen=True)
class DatasetChoice:
    """A dataset the Data page has checked and the Model & training page trains on."""

    path: str
    format: str
    """The detected or chosen format name (``messages``, ``alpaca``…, ``columns``)."""
    columns: dict[str, str] | None
    """The column mapping when ``format`` is ``columns``."""
    rows: int | None
    """Examples that will be trained on; None when not counted (a spec loaded for editing)."""
    p99_tokens: int | None = None
    """The 99th percentile of example length in tokens, once measured with a tokenizer."""
    sheet: str | None = None
    """The sheet of an Excel workbook that is read; None for the first visible one with rows."""


class Session(QObject):
    dataset_changed = Signal(object)
    """A ``DatasetChoice``."""
    job_selected = Signal(int)
    """The job whose details the Jobs, Monitor and Evaluate pages show."""
    job_queued = Signal(int)
    show_page = Signal(str)
    """Ask the window to show the page with this title."""
    edit_spec = Signal(object)
    """A training ``JobSpec`` to load into the Model & training form (``request_edit``)."""
    adapter_requested = Signal(str, str)
    """A page's title and the adapter folder it should choose (``request_adapter``)."""

    def __init__(self, home: Path | None = None) -> None:
        super().__init__()
        self.home = home or paths.data_home()
        self.dataset: DatasetChoice | None = None
        self.job_id: int | None = None
        self.pending_edit: object | None = None
        """A spec ``request_edit`` asked for that no form has taken yet: the page may not be built."""
        self.pending_adapters: dict[str, str] = {}
        """Adapter folders ``request_adapter`` asked a page (by title) to choose that it has not taken yet."""
        self._queue_state: QueueState | None = None
        self._settings: QSettings | None = None
        self.dataset_changed.connect(self._remember_dataset)
        self.job_selected.connect(self._remember_job)

    @property
    def queue_path(self) -> Path:
        return self.home / "queue.sqlite3"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    def queue_state(self) -> QueueState:
        """The one view of the queue that every page observes (made on first use)."""
        if self._queue_state is None:
            self._queue_state = QueueState(self.queue_path, self.jobs_dir, parent=self)
        return self._queue_state

    def keep_in(self, settings: QSettings) -> None:
        """Bring back the last session's dataset (if its file is still there) and job (if still queued; else the
        running one), before any page is built; from now on, keep each as it changes."""
        self._settings = settings
        dataset = _dataset_from(settings.value(SETTINGS_DATASET))
        if dataset is not None:
            self.dataset = dataset
        state = self.queue_state()
        state.refresh()
        saved = settings.value(SETTINGS_JOB)
        job = state.job(int(saved)) if saved is not None and str(saved).isdigit() else None
        running = next((j for j in state.jobs() if j.state == "running"), None)
        chosen = job or running
        self.job_id = chosen.id if chosen is not None else None

    def request_edit(self, spec: object) -> None:
        """Open ``spec`` in the Model & training form, whether or not that page exists yet."""
        self.pending_edit = spec
        self.edit_spec.emit(spec)
        self.show_page.emit("Model & training")

    def request_adapter(self, page: str, folder: str) -> None:
        """Show ``page`` (Evaluate or Export) with the adapter in ``folder`` chosen, whether or not it is built yet."""
        self.pending_adapters[page] = folder
        self.adapter_requested.emit(page, folder)
        self.show_page.emit(page)

    def take_pending_adapter(self, page: str) -> str | None:
        return self.pending_adapters.pop(page, None)

    def take_pending_edit(self) -> object | None:
        spec, self.pending_edit = self.pending_edit, None
        return spec

    def _remember_dataset(self, choice: DatasetChoice) -> None:
        self.dataset = choice
        if self._settings is not None:
            self._settings.setValue(SETTINGS_DATASET, json.dumps(dataclasses.asdict(choice)))

    def _remember_job(self, job_id: int) -> None:
        self.job_id = job_id
        if self._settings is not None:
            self._settings.setValue(SETTINGS_JOB, job_id)


def _dataset_from(saved: object) -> DatasetChoice | None:
    """The dataset saved by an earlier session, or None when there is none, it cannot be read or its file is gone."""
    if not isinstance(saved, str):
        return None
    try:
        choice = DatasetChoice(**json.loads(saved))
    except (ValueError, TypeError):
        return None
    return choice if Path(choice.path).exists() else None
