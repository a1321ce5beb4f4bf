"""The Adapters page: every registered version, its provenance and history, comparisons, and release actions.

The table is filled from the registry's index off the GUI thread (listing 1,000 versions
takes ~80 ms on a loaded machine; bench/adapters_page.py measures the page fill), when the page
is shown, after each action and when a job starts or ends while it is shown; the
detail pane and comparison read one or two version folders on the GUI thread (a few ms).
Actions go through ``backend.registry``; a refusal (a gate that fails, a production version
that cannot be deleted) is shown with its numbers and what to do, and a failed gate can be
overridden with a typed reason that the history keeps.
"""

from __future__ import annotations

from typing import Protocol, cast

from PySide6.QtCore import QItemSelectionModel, QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.adapter_details import details_html, gate_lines, number
from app.adapter_table import VersionsFilter, VersionsModel
from app.queue_watch import QueueWatch
from app.session import Session
from backend.core.task_specs import EvaluateSpec
from backend.jobs.queue import JobQueue
from backend.jobs.runner import ensure_runner
from backend.registry.errors import RegistryError
from backend.registry.gates import GateResult
from backend.registry.history import Stage, VersionState
from backend.registry.registry import Listed, Registry
from widgets.version_chart import VersionChart

CHARTED = (("heldout_loss", "Held-out loss"), ("task_score", "Task score"))
"""The metrics charted across an adapter's versions (the index holds them for every version)."""


class Asker(Protocol):
    """The questions the page asks a person; tests answer them without dialogs."""

    def text(self, title: str, label: str) -> str | None: ...

    def confirm(self, title: str, text: str) -> bool: ...


class DialogAsker:
    def __init__(self, parent: QWidget) -> None:
        self._parent = parent

    def text(self, title: str, label: str) -> str | None:
        value, ok = QInputDialog.getText(self._parent, title, label)
        return value.strip() if ok else None

    def confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self._parent, title, text)
        return answer == QMessageBox.StandardButton.Yes


class _Signals(QObject):
    listed = Signal(object)  # list[Listed]
    failed = Signal(str)


class _ListVersions(QRunnable):
    """``Registry.versions()`` on a pool thread (it opens its own SQLite connection)."""

    def __init__(self, registry: Registry) -> None:
        super().__init__()
        self.registry = registry
        self.signals = _Signals()

    def run(self) -> None:
        try:
            rows = self.registry.versions()
        except (RegistryError, OSError) as exc:
            self.signals.failed.emit(str(exc))
        else:
            self.signals.listed.emit(rows)


class AdaptersPage(QWidget):
    filled = Signal()
    """The table shows the rows of the latest fill."""

    def __init__(
        self,
        session: Session,
        parent: QWidget | None = None,
        *,
        registry: Registry | None = None,
        pool: QThreadPool | None = None,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self.registry = registry or Registry()
        self._pool = pool or QThreadPool.globalInstance()
        self._queue = JobQueue(session.queue_path, session.jobs_dir)
        self.ask: Asker = DialogAsker(self)
        self._reading: _ListVersions | None = None
        self._again = False

        self.model = VersionsModel()
        self.proxy = VersionsFilter(self.model)
        self.filter = QLineEdit(placeholderText="Filter: adapter, stage, base, data, tag or note words")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.set_filter)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # the index's order: by adapter, newest first
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)

        self.buttons: dict[str, QPushButton] = {}
        actions = QHBoxLayout()
        for name, tip, slot in (
            (
                "Promote…",
                "Put this version in production (its gates are checked) or another stage",
                self.promote_selected,
            ),
            (
                "Roll back…",
                "Put back the version that was in production before the current one",
                self.rollback_selected,
            ),
            ("Tag…", "Add tags (or remove them with a leading -)", self.tag_selected),
            ("Note…", "Add a note to this version", self.note_selected),
            ("Evaluate", "Queue an evaluation of this version against its base", self.evaluate_selected),
            ("Export…", "Open the Export page with this version chosen", self.export_selected),
            ("Delete…", "Delete this version's folder (its history stays)", self.delete_selected),
        ):
            button = QPushButton(name)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            actions.addWidget(button)
            self.buttons[name.rstrip("…")] = button
        actions.addStretch(1)
        refresh = QPushButton("Refresh")
        refresh.setToolTip("Read the registry again (other processes and the command line change it too)")
        refresh.clicked.connect(self.refresh)
        actions.addWidget(refresh)

        self.details = QTextBrowser()
        self.details.setOpenLinks(False)
        self.compare_note = QLabel("Select two versions (Ctrl+click) to compare them.")
        self.compare_note.setWordWrap(True)
        self.settings_diff = _table(("Setting", "A", "B"))
        self.metrics_diff = _table(("Metric", "A", "B", "Change"))
        self.charts = {key: VersionChart(title) for key, title in CHARTED}
        compare = QWidget()
        compare_layout = QVBoxLayout(compare)
        compare_layout.addWidget(self.compare_note)
        compare_layout.addWidget(QLabel("Settings, data and base that differ"))
        compare_layout.addWidget(self.settings_diff, 1)
        compare_layout.addWidget(QLabel("Metrics"))
        compare_layout.addWidget(self.metrics_diff, 1)
        chart_row = QHBoxLayout()
        for chart in self.charts.values():
            chart_row.addWidget(chart)
        compare_layout.addLayout(chart_row, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.details, "Details")
        self.tabs.addTab(compare, "Compare")

        splitter = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.filter)
        left_layout.addWidget(self.table, 1)
        splitter.addWidget(left)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([600, 400])  # the table's columns readable at the window's first size
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addLayout(actions)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.message)
        self._selection_changed()
        self._watch = QueueWatch(self, session.queue_state())
        self._watch.changed.connect(self._jobs_changed)

    # -- filling -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """List the registry again off the GUI thread; ``filled`` says when the table shows it."""
        if self._reading is not None:
            self._again = True
            return
        self._reading = _ListVersions(self.registry)
        self._reading.signals.listed.connect(self._listed, Qt.ConnectionType.QueuedConnection)
        self._reading.signals.failed.connect(self._list_failed, Qt.ConnectionType.QueuedConnection)
        self._pool.start(self._reading)

    def _listed(self, rows: list[Listed]) -> None:
        chosen = [(r.name, r.version) for r in self.selected()]
        self._reading = None
        first = not self.model.rows
        self.model.set_rows(rows)
        if first and rows:
            self.table.resizeColumnsToContents()  # once: later fills keep the widths a person set
        self._select(chosen)
        self.filled.emit()
        if self._again:
            self._again = False
            self.refresh()

    def _list_failed(self, reason: str) -> None:
        self._reading = None
        self.message.setText(f"The registry cannot be read: {reason}")
        self.filled.emit()

    def _jobs_changed(self) -> None:
        """A job ended or started: a finished training registers a version, an evaluation adds numbers."""
        if self.isVisible():
            self.refresh()

    def showEvent(self, event: QShowEvent) -> None:
        self.refresh()
        super().showEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._queue.close()
        super().closeEvent(event)

    # -- selection ---------------------------------------------------------------------------

    def selected(self) -> list[Listed]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.proxy.listed(r) for r in rows]

    def select(self, *versions: tuple[str, int]) -> None:
        """Select these (name, number) versions, as a Ctrl+click would."""
        self._select(list(versions))

    def _select(self, wanted: list[tuple[str, int]]) -> None:
        selection = self.table.selectionModel()
        selection.clearSelection()
        for row in range(self.proxy.rowCount()):
            listed = self.proxy.listed(row)
            if (listed.name, listed.version) in wanted:
                flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
                selection.select(self.proxy.index(row, 0), flags)

    def _selection_changed(self) -> None:
        chosen = self.selected()
        one = len(chosen) == 1
        for name, button in self.buttons.items():
            button.setEnabled(one or (name == "Roll back" and bool(chosen)))
        if one:
            self._show_details(chosen[0])
        elif not chosen:
            self.details.setPlainText("Select a version to see where it came from, its history and its gates.")
        if len(chosen) == 2:
            self._compare(chosen[0], chosen[1])
            self.tabs.setCurrentIndex(1)
        else:
            self.compare_note.setText("Select two versions (Ctrl+click) to compare them.")
            if one:
                self.tabs.setCurrentIndex(0)

    def _show_details(self, listed: Listed) -> None:
        try:
            version = self.registry.get(listed.name, listed.version)
            state = VersionState(cast(Stage, listed.stage), set(listed.tags), listed.notes)  # as the index row says
            events = [e for e in self.registry.history(listed.name) if e.get("version") in (listed.version, None)]
        except (RegistryError, OSError) as exc:
            self.details.setPlainText(f"{listed.label} cannot be read: {exc}")
            return
        try:
            gates: list[GateResult] | str = self.registry.gate_results(listed.name, listed.version)
        except RegistryError as exc:
            gates = f"The gates cannot be checked: {exc.message}"
        self.details.setHtml(details_html(version, state, events, gates))

    def _compare(self, first: Listed, second: Listed) -> None:
        a, b = sorted((first, second), key=lambda v: (v.name, v.version))
        try:
            diff = self.registry.diff(self.registry.get(a.name, a.version), self.registry.get(b.name, b.version))
        except (RegistryError, OSError) as exc:
            self.compare_note.setText(f"These versions cannot be compared: {exc}")
            return
        self.compare_note.setText(
            f"A = {a.label}, B = {b.label}" + (" (different adapters)" if a.name != b.name else "")
        )
        rows: list[tuple[str, ...]] = [(key, number(x), number(y)) for key, (x, y) in diff["spec"].items()]
        if diff["dataset_hash"]:
            rows.append(("data hash", *(str(h or "—")[:12] for h in diff["dataset_hash"])))
        if diff["base_fingerprint"]:
            rows.append(("base fingerprint", *(str(f or "—")[:12] for f in diff["base_fingerprint"])))
        _fill(self.settings_diff, rows or [("(no differences)", "", "")])
        metrics: list[tuple[str, ...]] = [
            (key, number(m["a"]), number(m["b"]), "" if m["delta"] is None else f"{m['delta']:+.4g}")
            for key, m in diff["metrics"].items()
        ]
        _fill(self.metrics_diff, metrics or [("(the same)", "", "", "")])
        versions = [r for r in self.model.rows if r.name == a.name]
        marked = (a.version, b.version) if a.name == b.name else (a.version,)
        for key, chart in self.charts.items():
            chart.show_values({r.version: getattr(r, key) for r in versions}, marked)

    # -- actions -------------------------------------------------------------------------------

    def _one(self) -> Listed | None:
        chosen = self.selected()
        return chosen[0] if len(chosen) == 1 else None

    def _done(self, text: str) -> None:
        self.message.setText(text)
        self.refresh()

    def _refused(self, exc: RegistryError) -> None:
        self.message.setText(exc.message + (f" {exc.hint}" if exc.hint else ""))

    def promote_selected(self) -> None:
        """Production, asking why; when gates refuse, show them with their numbers and offer an override."""
        listed = self._one()
        if listed is None:
            return
        reason = self.ask.text("Promote", f"Why put {listed.label} in production?")
        if reason is None:
            return
        try:
            self.registry.promote(listed.name, listed.version, "production", reason)
        except RegistryError as exc:
            try:
                failed = [r for r in self.registry.gate_results(listed.name, listed.version) if not r.passed]
            except RegistryError:  # an unreadable gates.yaml: the refusal itself says so
                failed = []
            if not failed:
                self._refused(exc)
                return
            lines = "\n".join(gate_lines(failed))
            self.message.setText(f"{listed.label} was not promoted: its release gates refused it.\n{lines}")
            override = self.ask.text(
                "Gates refused the promotion",
                f"{lines}\n\nTo promote {listed.label} anyway, type why (the reason is kept in its history):",
            )
            if not override:
                return
            try:
                self.registry.promote(listed.name, listed.version, "production", reason, override=override)
            except RegistryError as again:
                self._refused(again)
                return
            self._done(f"{listed.label} is in production, its failed gates overridden: {override}")
            return
        self._done(f"{listed.label} is in production.")

    def rollback_selected(self) -> None:
        chosen = self.selected()
        if not chosen:
            return
        name = chosen[0].name
        reason = self.ask.text("Roll back", f"Why roll {name} back to its previous production version?")
        if reason is None:
            return
        try:
            event = self.registry.rollback(name, reason)
        except RegistryError as exc:
            self._refused(exc)
            return
        self._done(f"{name} v{event['version']} is in production again (v{event['from']} archived).")

    def tag_selected(self) -> None:
        listed = self._one()
        if listed is None:
            return
        text = self.ask.text("Tag", f"Tags for {listed.label} (separate with spaces; -tag removes one):")
        if not text:
            return
        words = text.split()
        add = [w for w in words if not w.startswith("-")]
        remove = [w[1:] for w in words if w.startswith("-") and len(w) > 1]
        try:
            self.registry.tag(listed.name, listed.version, add, remove)
        except RegistryError as exc:
            self._refused(exc)
            return
        self._done(f"{listed.label} tagged.")

    def note_selected(self) -> None:
        listed = self._one()
        if listed is None:
            return
        text = self.ask.text("Note", f"A note on {listed.label}:")
        if not text:
            return
        try:
            self.registry.note(listed.name, listed.version, text)
        except RegistryError as exc:
            self._refused(exc)
            return
        self._done(f"Note added to {listed.label}.")

    def evaluate_selected(self) -> None:
        """Queue an evaluate job of the version's folder, on its own evaluation split, as the Evaluate page does."""
        listed = self._one()
        if listed is None:
            return
        spec = EvaluateSpec(name=f"{listed.name}-v{listed.version}-evaluation", adapter=listed.folder)
        added = self._queue.add(spec)
        lines = [check.message for check in added.checks if check.level != "info"]
        if added.job is not None:
            ensure_runner(self._queue)
            self._session.job_queued.emit(added.job.id)
            lines.insert(
                0, f"Queued job {added.job.id}; the Evaluate page shows its report, and this version keeps its numbers."
            )
        self.message.setText("\n".join(lines))

    def export_selected(self) -> None:
        listed = self._one()
        if listed is not None:
            self._session.request_adapter("Export", listed.folder)

    def delete_selected(self) -> None:
        listed = self._one()
        if listed is None:
            return
        if not self.ask.confirm(
            "Delete version", f"Delete {listed.label} and its folder?\n{listed.folder}\n\nIts history stays."
        ):
            return
        try:
            self.registry.remove(listed.name, listed.version, reason="deleted on the Adapters page")
        except RegistryError as exc:
            self._refused(exc)
            return
        self._done(f"{listed.label} deleted.")


def _table(headers: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    return table


def _fill(table: QTableWidget, rows: list[tuple[str, ...]]) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            table.setItem(r, c, QTableWidgetItem(text))
