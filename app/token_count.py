"""The Data page's token count: one checked dataset measured in the chosen model's tokens.

``TokenCount`` drives the page's ``TokenPanel``: it offers the models there are, remembers the
model and maximum length chosen, and counts with ``TokenJob`` (``lora-studio data check --model
M --json`` in a child process, so this process never imports transformers). A change of the
maximum length waits for the length to settle before counting again (holding an arrow key would
start and kill one child per step). The count's result goes to the panel and on to the page
(``counted``), which folds it into its report; failure and cancel are the panel's alone.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import cast

from PySide6.QtCore import QObject, QSettings, QTimer, Signal

from app.token_job import Measuring, TokenJob, canonical_model, model_choices, model_problem
from backend.data.scan import ImportOptions
from backend.models.store import DEFAULT_ALIAS
from widgets.token_panel import TokenPanel, TokenSummary

_REMEASURE_MS = 600  # after the last change of the maximum length
_MODEL_KEY = "data/model"
_MAX_LENGTH_KEY = "data/max_length"


class TokenCount(QObject):
    """Counts the tokens of the dataset given to ``start`` with the model chosen in ``panel``."""

    counted = Signal(object, object)  # TokenSummary (or None: nothing measurable), the child's report
    changed = Signal()  # the model or the maximum length changed: renderings made before are stale
    settled = Signal()  # the maximum length stopped changing (after the count has started again)

    def __init__(self, home: Path, panel: TokenPanel, settings: QSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._panel = panel
        self._settings = settings
        self._dataset: tuple[Path, ImportOptions] | None = None  # a usable checked dataset, read as its check did
        self._job = TokenJob(home, self)
        self._job.measured.connect(self._on_measured)
        self._job.failed.connect(self._on_failed)
        self._job.cancelled.connect(self._on_cancelled)
        self._remeasure = QTimer(self, singleShot=True, interval=_REMEASURE_MS)
        self._remeasure.timeout.connect(self.measure)
        self._remeasure.timeout.connect(self.settled)
        panel.modelChosen.connect(self._model_chosen)
        panel.maxLengthChanged.connect(self._max_length_changed)
        panel.cancelRequested.connect(self._job.cancel)
        panel.retryRequested.connect(self._retry)

    def restore_max_length(self) -> None:
        """Show the maximum length chosen last time."""
        with contextlib.suppress(TypeError, ValueError):  # a hand-edited setting is ignored
            saved = cast("int | str", self._settings.value(_MAX_LENGTH_KEY, 1024))  # an int, or text from a file
            self._panel.set_max_length(int(saved))

    def refresh_models(self) -> None:
        """Offer the models there are now, keeping the one chosen (the remembered one at first)."""
        models = model_choices()
        saved = self._settings.value(_MODEL_KEY)
        current = canonical_model(self._panel.current_model() or str(saved or DEFAULT_ALIAS))
        if saved is None and current == DEFAULT_ALIAS and len(models) > 1:
            current = models[1][1]  # never chosen, and the default isn't imported: the first model there is
        self._panel.set_models(models, current)

    def set_dataset(self, path: Path, options: ImportOptions) -> None:
        """Count the usable dataset at ``path``, read with ``options``, from ``measure`` on and on each change."""
        self._dataset = (path, options)

    def clear(self) -> None:
        """Forget the dataset (a new one is being checked) and stop counting it."""
        self._dataset = None
        self.stop()

    def stop(self) -> None:
        """Stop the count under way and the one waiting for the maximum length to settle."""
        self._remeasure.stop()
        self._job.shutdown()

    def is_running(self) -> bool:
        return self._job.is_running()

    def settling(self) -> bool:
        """Whether the maximum length is still being changed."""
        return self._remeasure.isActive()

    def request(self) -> Measuring | None:
        """The dataset with the model and maximum length chosen; ``None`` until there is a dataset and a model."""
        ref = self._panel.current_model()
        if self._dataset is None or ref is None:
            return None
        return Measuring(*self._dataset, ref, self._panel.max_length())

    def measure(self) -> None:
        """Count the dataset's tokens with the chosen model, in a child process."""
        self._remeasure.stop()
        if self._dataset is None:
            return
        ref = self._panel.current_model()
        if ref is None:
            self._panel.show_idle("Choose a model to measure the examples with its tokenizer.")
            return
        problem = model_problem(ref)
        if problem is not None:
            self._job.shutdown()
            self._panel.show_error(*problem)
            return
        self._job.start(Measuring(*self._dataset, ref, self._panel.max_length()))
        self._panel.show_busy(
            f"Counting tokens with {self._panel.current_model_name()}… "
            "Loading its tokenizer takes a few seconds; the examples stay usable meanwhile."
        )

    def _max_length_changed(self, tokens: int) -> None:
        """Renderings at the old length go at once; the count and a new rendering, which start a child process
        each, wait for the length to settle (holding an arrow key would start and kill one per step)."""
        self._settings.setValue(_MAX_LENGTH_KEY, tokens)
        self._remeasure.start()
        self.changed.emit()

    def _model_chosen(self, ref: str) -> None:
        self._settings.setValue(_MODEL_KEY, ref)
        self.changed.emit()
        self.measure()

    def _retry(self) -> None:
        self.refresh_models()  # the model may have been imported since
        self.measure()

    def _on_measured(self, summary: TokenSummary | None, measured: dict) -> None:
        if self._dataset is None:
            return
        if summary is None:
            self._panel.show_idle("No example could be measured: the chat template refused every one. See the issues.")
        else:
            self._panel.show_summary(summary)
        self.counted.emit(summary, measured)

    def _on_failed(self, message: str) -> None:
        self._panel.show_error(message)

    def _on_cancelled(self) -> None:
        self._panel.show_idle("Counting cancelled.", retry=True)
