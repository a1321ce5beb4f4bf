"""What the pages share: the chosen dataset, the selected job, and the way to ask for a page.

Pages never hold each other; each takes the one ``Session`` and talks through its
signals, so any page can be built, tested or replaced alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from backend.core import paths


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

    def __init__(self, home: Path | None = None) -> None:
        super().__init__()
        self.home = home or paths.data_home()
        self.dataset: DatasetChoice | None = None
        self.job_id: int | None = None
        self.pending_edit: object | None = None
        """A spec ``request_edit`` asked for that no form has taken yet: the page may not be built."""
        self.dataset_changed.connect(self._remember_dataset)
        self.job_selected.connect(self._remember_job)

    @property
    def queue_path(self) -> Path:
        return self.home / "queue.sqlite3"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    def request_edit(self, spec: object) -> None:
        """Open ``spec`` in the Model & training form, whether or not that page exists yet."""
        self.pending_edit = spec
        self.edit_spec.emit(spec)
        self.show_page.emit("Model & training")

    def take_pending_edit(self) -> object | None:
        spec, self.pending_edit = self.pending_edit, None
        return spec

    def _remember_dataset(self, choice: DatasetChoice) -> None:
        self.dataset = choice

    def _remember_job(self, job_id: int) -> None:
        self.job_id = job_id
