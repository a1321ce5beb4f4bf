"""Choosing the base model: the default, the model store, a local folder, a hub id, recent choices.

Everything here reads files only (the store's records, config.json, safetensors headers), so the
GUI process never loads a model (``app.model_info`` says what is known of one). A hub model that
is not imported yet is described by the Hub: the training page reads its facts off the GUI
thread (with the shapes its estimate needs) and hands them to ``set_hub_facts``. A model that
is not imported yet (the default on a fresh install, a hub id typed in) can still be trained
on: the job imports it when it starts. The picker says so, and offers the import now, run as
``lora-studio models import`` in a QProcess whose output it shows a line at a time.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

from PySide6.QtCore import QProcess, QProcessEnvironment, QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.model_info import DEFAULT_DOWNLOAD, ModelInfo, describe, facts_line, with_hub_facts
from backend.models.hub_facts import HubFacts
from backend.models.hub_import import is_hub_id
from backend.models.store import (
    DEFAULT_ALIAS,
    DEFAULT_NAME,
    DEFAULT_SLUG,
    list_models,
)
from widgets.form_field import FormField
from widgets.labels import wrapping_label
from widgets.message_list import Level, MessageList

RECENT_KEY = "training/recent_models"
RECENT_LIMIT = 8
HUB_HELP = (
    "A model on the Hugging Face Hub, written as org/name. It is downloaded when you import it "
    "or when the first job that uses it starts."
)


class ModelPicker(QWidget):
    """A list of models to choose from, a folder button, a hub id field, and what is known of the choice."""

    changed = Signal(object)  # ModelInfo
    imported = Signal(str)  # the ref that an import finished for

    def __init__(self, settings: QSettings, home: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._home = home
        self._info: ModelInfo | None = None
        self._hub: dict[str, HubFacts | str] = {}
        self._process: QProcess | None = None
        self._output = ""
        line = self.fontMetrics().height()

        self.combo = QComboBox()
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(24)
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.combo.currentIndexChanged.connect(self._chosen)
        self.combo.setAccessibleName("Base model")
        self.folder_button = QPushButton("Folder…")
        self.folder_button.setToolTip(
            "Use a Hugging Face model folder on this computer (config.json and *.safetensors)."
        )
        self.folder_button.clicked.connect(self.choose_folder)
        row = QHBoxLayout()
        row.setSpacing(line // 2)
        row.addWidget(self.combo, 1)
        row.addWidget(self.folder_button)

        self.hub_edit = QLineEdit()
        self.hub_edit.setPlaceholderText("Hugging Face id, e.g. HuggingFaceTB/SmolLM2-360M-Instruct")
        self.hub_edit.setClearButtonEnabled(True)
        self.hub_edit.returnPressed.connect(self.use_hub_id)
        self.hub_edit.textChanged.connect(self._hub_typed)
        self.hub_button = QPushButton("Use")
        self.hub_button.setEnabled(False)
        self.hub_button.clicked.connect(self.use_hub_id)
        hub_row = QWidget()
        hub_layout = QHBoxLayout(hub_row)
        hub_layout.setContentsMargins(0, 0, 0, 0)
        hub_layout.setSpacing(line // 2)
        hub_layout.addWidget(self.hub_edit, 1)
        hub_layout.addWidget(self.hub_button)
        self.hub_field = FormField(hub_row, HUB_HELP)
        self.hub_field.editor.setToolTip("")
        self.hub_edit.setToolTip(HUB_HELP)

        self.facts = wrapping_label(selectable=True, name="modelFacts")
        self.status = MessageList()
        self.status.setObjectName("modelStatus")
        self.import_button = QPushButton("Import now")
        self.import_button.setToolTip("Run 'lora-studio models import' for this model in the background.")
        self.import_button.clicked.connect(self.start_import)
        self.import_button.setVisible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(line // 2)
        layout.addLayout(row)
        layout.addWidget(self.facts)
        layout.addWidget(self.status)
        layout.addWidget(self.import_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addSpacing(line // 4)
        layout.addWidget(self.hub_field)

        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.stop_import)
        self.refresh()

    # -- the list ---------------------------------------------------------------------------------

    def current(self) -> ModelInfo:
        if self._info is None:
            self._info = self._describe(self.ref())
        return self._info

    def _describe(self, ref: str) -> ModelInfo:
        info = describe(ref)
        if info.imported or info.problem or not is_hub_id(ref):
            return info
        return with_hub_facts(info, self._hub.get(ref))

    def set_hub_facts(self, ref: str, facts: HubFacts | str) -> None:
        """What the Hub says about ``ref``, or why it could not be read; shown while it is not imported."""
        self._hub[ref] = facts
        if ref == self.ref():
            self._info = self._describe(ref)
            self._show(self._info)

    def ref(self) -> str:
        return self.combo.currentData() or DEFAULT_ALIAS

    def recent(self) -> list[str]:
        value = cast("list[str] | str | None", self._settings.value(RECENT_KEY, []))  # QSettings: a lone item is text
        refs = [value] if isinstance(value, str) else list(value or [])
        return [ref for ref in refs if isinstance(ref, str) and ref]

    def refresh(self, select: str | None = None) -> None:
        """Re-read the store and the recent choices; keep (or make) ``select`` the current one."""
        wanted = select or self.combo.currentData() or DEFAULT_ALIAS
        self.combo.blockSignals(True)
        try:
            self.combo.clear()
            default = describe(DEFAULT_ALIAS)
            note = "default" if default.imported else "default, not imported yet"
            self.combo.addItem(f"{DEFAULT_NAME} ({note})", DEFAULT_ALIAS)
            self.combo.setItemData(0, "The embedded default model, SmolLM2-135M-Instruct.", Qt.ItemDataRole.ToolTipRole)
            listed = {DEFAULT_ALIAS}
            stored = [r for r in list_models() if r.slug != DEFAULT_SLUG]
            if stored:
                self.combo.insertSeparator(self.combo.count())
            for record in stored:
                self._add(f"{record.name} (imported)", record.slug, str(record.path))
                listed.update({record.slug, str(record.path), record.source.ref})
            recent = [ref for ref in self.recent() if ref not in listed and (is_hub_id(ref) or Path(ref).is_dir())]
            if wanted not in listed and wanted not in recent:
                recent.insert(0, wanted)
            if recent:
                self.combo.insertSeparator(self.combo.count())
            for ref in recent:
                if is_hub_id(ref) and not Path(ref).is_dir():
                    self._add(f"{ref} (Hugging Face Hub)", ref, f"https://huggingface.co/{ref}")
                else:
                    self._add(f"{Path(ref).name} (folder)", ref, ref)
            self.combo.setCurrentIndex(max(0, self.combo.findData(wanted)))
        finally:
            self.combo.blockSignals(False)
        self._chosen()

    def _add(self, text: str, ref: str, tooltip: str) -> None:
        self.combo.addItem(text, ref)
        self.combo.setItemData(self.combo.count() - 1, tooltip, Qt.ItemDataRole.ToolTipRole)

    def set_ref(self, ref: str) -> None:
        """Choose ``ref`` (listing it among the recent choices if it is new)."""
        if self.combo.findData(ref) < 0:
            self._remember(ref)
            self.refresh(select=ref)
        else:
            self.combo.setCurrentIndex(self.combo.findData(ref))

    def _remember(self, ref: str) -> None:
        if ref == DEFAULT_ALIAS:
            return
        refs = [ref, *(r for r in self.recent() if r != ref)][:RECENT_LIMIT]
        self._settings.setValue(RECENT_KEY, refs)

    def _chosen(self, *_args: object) -> None:
        self._info = self._describe(self.ref())
        self._show(self._info)
        self.changed.emit(self._info)

    def _show(self, info: ModelInfo) -> None:
        self.facts.setText(facts_line(info) if not info.problem else "")
        self.facts.setVisible(not info.problem)
        self.combo.setToolTip(f"{info.title}\n{info.folder or info.ref}")
        importing = self._process is not None
        if info.problem:
            self.status.set_messages([("error", info.problem)])
        elif importing:
            pass  # the import's own progress line stays
        elif not info.imported:
            size = f" ({DEFAULT_DOWNLOAD})" if info.ref == DEFAULT_ALIAS else " (from the Hugging Face Hub)"
            note: tuple[Level, str] = (
                "info",
                f"Not imported yet. A job imports it when it starts{size}; or import it now.",
            )
            self.status.set_messages([("warning", info.warning), note] if info.warning else [note])
        else:
            self.status.set_messages([])
        self.import_button.setVisible(info.importable or importing)
        self.import_button.setEnabled(info.importable and not importing)

    # -- folders and hub ids -----------------------------------------------------------------------

    def choose_folder(self) -> None:
        start = str(self.current().folder or Path.home())
        chosen = QFileDialog.getExistingDirectory(self, "Choose a Hugging Face model folder", start)
        if chosen:
            self.set_ref(str(Path(chosen).resolve()))

    def _hub_typed(self, text: str) -> None:
        valid = is_hub_id(text.strip())
        self.hub_button.setEnabled(valid)
        if valid or not text.strip():
            self.hub_field.set_error("")

    def use_hub_id(self) -> None:
        text = self.hub_edit.text().strip()
        if not is_hub_id(text):
            self.hub_field.set_error(
                f"'{text}' is not a Hugging Face id: write it as org/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct."
            )
            return
        self.hub_field.set_error("")
        self.hub_edit.clear()
        self.set_ref(text)

    # -- importing ----------------------------------------------------------------------------------

    def import_command(self, ref: str) -> list[str]:
        """The command line of the import: the headless CLI of this same installation."""
        return [sys.executable, "-m", "backend.cli", "models", "import", ref]

    def is_importing(self) -> bool:
        return self._process is not None

    def start_import(self) -> None:
        info = self.current()
        if not info.importable or self._process is not None:
            return
        program, *args = self.import_command(info.ref)
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        if self._home is not None:
            env.insert("LORA_STUDIO_HOME", str(self._home))
        env.insert("PYTHONUNBUFFERED", "1")
        process.setProcessEnvironment(env)
        process.setWorkingDirectory(str(Path(__file__).resolve().parent.parent))
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.setProperty("ref", info.ref)
        process.readyReadStandardOutput.connect(self._import_output)
        process.finished.connect(self._import_finished)
        process.errorOccurred.connect(self._import_error)
        self._process = process
        self._output = ""
        self.status.set_messages([("info", f"Importing {info.title}… starting")])
        self.import_button.setEnabled(False)
        process.start(program, args)

    def stop_import(self) -> None:
        """Stop a running import (the window is closing); its half-built folder is never used."""
        process, self._process = self._process, None
        if process is not None and process.state() != QProcess.ProcessState.NotRunning:
            process.finished.disconnect(self._import_finished)
            process.errorOccurred.disconnect(self._import_error)
            process.kill()
            process.waitForFinished(3000)

    def _import_output(self) -> None:
        process = self._process
        if process is None:
            return
        self._output = (self._output + bytes(process.readAllStandardOutput().data()).decode(errors="replace"))[-8000:]
        lines = [line.strip() for line in self._output.splitlines() if line.strip()]
        if lines:
            title = self.current().title
            self.status.set_messages([("info", f"Importing {title}… {lines[-1][:200]}")])

    def _import_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        self._import_output_from(process)
        ref = process.property("ref")
        process.deleteLater()
        if status == QProcess.ExitStatus.NormalExit and code == 0:
            self.refresh(select=ref)
            self.status.set_messages([("ok", f"Imported {self.current().title}.")])
            self.imported.emit(ref)
            return
        lines = [line.strip() for line in self._output.splitlines() if line.strip()]
        reason = next((line.removeprefix("error: ") for line in reversed(lines) if line.startswith("error:")), "")
        reason = reason or (lines[-1] if lines else f"the import stopped (exit code {code})")
        self.status.set_messages([("error", f"The import failed: {reason}")])
        self._show_buttons()

    def _import_output_from(self, process: QProcess) -> None:
        self._output = (self._output + bytes(process.readAllStandardOutput().data()).decode(errors="replace"))[-8000:]

    def _import_error(self, error: QProcess.ProcessError) -> None:
        if error != QProcess.ProcessError.FailedToStart:
            return  # a crash also ends in finished(), which reports it
        process, self._process = self._process, None
        if process is not None:
            process.deleteLater()
        self.status.set_messages([("error", f"The import could not start: {process.errorString() if process else ''}")])
        self._show_buttons()

    def _show_buttons(self) -> None:
        info = self.current()
        self.import_button.setVisible(info.importable)
        self.import_button.setEnabled(info.importable)
