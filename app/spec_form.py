"""The hyperparameter form of a training job: one editor per ``JobSpec`` field, with the spec's own help.

Every field is named by its dotted spec path (``training.micro_batch_size``), shows the pydantic
``Field`` description of that path as a visible help line and a tooltip, and shows its validation
error in red under it. The form holds raw values only; the page builds the spec with
``JobSpec.from_dict`` and hands the problems back with ``set_errors``, so the rules live in one
place (``backend/core/spec.py``) and the form never second-guesses them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from backend.core.spec import JobSpec
from widgets.collapsible_section import CollapsibleSection
from widgets.form_field import FormField

Kind = Literal["int", "optional_int", "float", "optional_float", "bool", "choice", "text", "targets", "names", "path"]

_INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class FieldDef:
    path: str
    label: str
    kind: Kind
    empty: str = ""
    """What an empty optional field means, shown in the empty editor (e.g. "count epochs")."""
    choices: dict[str, str] | None = None
    """Shown text by value, for choices whose values are spec words; others show the value."""
    pick: Literal["file", "folder"] = "folder"


MAIN_SECTIONS: tuple[tuple[str, tuple[FieldDef, ...]], ...] = (
    (
        "Adapter",
        (
            FieldDef(
                "quantization.mode",
                "Base model format",
                "choice",
                choices={
                    "nf4": "4-bit NF4 (QLoRA)",
                    "fp4": "4-bit FP4",
                    "int8": "8-bit",
                    "none": "16-bit, no compression (plain LoRA)",
                },
            ),
            FieldDef("lora.r", "Rank (r)", "int"),
            FieldDef(
                "lora.target_modules",
                "Layers to adapt",
                "targets",
                choices={
                    "all_linear": "Every linear layer",
                    "attention_mlp": "Attention and MLP",
                    "attention": "Attention only",
                },
            ),
        ),
    ),
    (
        "Training",
        (
            FieldDef("training.epochs", "Epochs", "float"),
            FieldDef("training.max_steps", "Max steps", "optional_int", empty="none: count epochs"),
            FieldDef("training.learning_rate", "Learning rate", "float"),
            FieldDef("training.micro_batch_size", "Micro-batch size", "int"),
            FieldDef("training.gradient_accumulation_steps", "Gradient accumulation", "int"),
            FieldDef("training.max_seq_length", "Max length (tokens)", "int"),
            FieldDef("training.gradient_checkpointing", "Gradient checkpointing", "bool"),
            FieldDef(
                "training.optimizer",
                "Optimizer",
                "choice",
                choices={
                    "adamw_torch": "AdamW",
                    "adamw_8bit": "AdamW, 8-bit",
                    "paged_adamw_8bit": "AdamW, 8-bit, paged",
                    "paged_adamw_32bit": "AdamW, 32-bit, paged",
                    "adafactor": "Adafactor",
                    "sgd": "SGD",
                },
            ),
            FieldDef("name", "Job name", "text"),
        ),
    ),
)

ADVANCED_SECTIONS: tuple[tuple[str, tuple[FieldDef, ...]], ...] = (
    (
        "Adapter",
        (
            FieldDef("lora.alpha", "Alpha", "optional_float", empty="twice the rank"),
            FieldDef("lora.dropout", "Dropout", "float"),
            FieldDef("lora.use_rslora", "Rank-stabilised scaling (rsLoRA)", "bool"),
            FieldDef("lora.use_dora", "DoRA", "bool"),
            FieldDef("lora.modules_to_save", "Layers trained in full", "names", empty="none"),
            FieldDef("quantization.double_quant", "Double quantization", "bool"),
            FieldDef("quantization.compute_dtype", "Compute format", "choice"),
        ),
    ),
    (
        "Schedule",
        (
            FieldDef("training.lr_scheduler", "Learning-rate schedule", "choice"),
            FieldDef("training.warmup_ratio", "Warm-up share", "float"),
            FieldDef("training.packing", "Packing", "bool"),
            FieldDef("training.weight_decay", "Weight decay", "float"),
            FieldDef("training.max_grad_norm", "Gradient clipping", "float"),
            FieldDef("training.precision", "Training precision", "choice"),
            FieldDef("training.seed", "Seed", "int"),
        ),
    ),
    (
        "Held-out data",
        (
            FieldDef("data.eval_path", "Evaluation data", "path", empty="a share of the training data", pick="file"),
            FieldDef("data.eval_split", "Held-out share", "float"),
            FieldDef("data.split_seed", "Split seed", "int"),
            FieldDef(
                "data.loss_on",
                "Learn from",
                "choice",
                choices={"assistant": "The assistant's replies", "all": "Every token"},
            ),
            FieldDef("data.dedupe", "Drop exact duplicates", "bool"),
            FieldDef("data.chunk_chars", "Text piece length", "int"),
        ),
    ),
    (
        "Checkpoints and output",
        (
            FieldDef("schedule.eval_every_steps", "Evaluate every (steps)", "optional_int", empty="about ten times"),
            FieldDef("schedule.save_every_steps", "Checkpoint every (steps)", "int"),
            FieldDef("schedule.keep_checkpoints", "Checkpoints kept", "int"),
            FieldDef("schedule.log_every_steps", "Log every (steps)", "int"),
            FieldDef("output_dir", "Adapter folder", "path", empty="the job's own folder"),
        ),
    ),
)

ALL_FIELDS: tuple[FieldDef, ...] = tuple(
    field for _, fields in (*MAIN_SECTIONS, *ADVANCED_SECTIONS) for field in fields
)


def spec_field(path: str) -> Any:
    """The pydantic ``FieldInfo`` of a dotted path in ``JobSpec``."""
    model: type[BaseModel] = JobSpec
    *sections, name = path.split(".")
    for section in sections:
        annotation = model.model_fields[section].annotation
        model = next(a for a in (annotation, *get_args(annotation)) if isinstance(a, type) and issubclass(a, BaseModel))
    return model.model_fields[name]


def description(path: str) -> str:
    return spec_field(path).description or ""


def default_values() -> dict[str, Any]:
    """The spec's defaults for every field of the form, by dotted path."""
    values = {}
    for field in ALL_FIELDS:
        info = spec_field(field.path)
        values[field.path] = info.get_default(call_default_factory=True)
    return values


def _literal_values(path: str) -> list[str]:
    annotation = spec_field(path).annotation
    return [str(value) for value in get_args(annotation)]


def format_number(value: float | int) -> str:
    """A number as a person writes it: 2e-4 for a learning rate, 0.05 for a share, 3 for epochs."""
    if isinstance(value, int):
        return str(value)
    if value and abs(value) < 0.001:
        mantissa, exponent = f"{value:e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{value:g}"


def parse_number(text: str) -> int | float | str:
    """A typed number, or the text itself so the spec's validation says what is wrong with it."""
    cleaned = text.strip()
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")  # a decimal comma
    for convert in (int, float):
        try:
            return convert(cleaned)
        except ValueError:
            continue
    return text.strip()


def errors_by_field(problems: Iterable[str], paths: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Each SpecError line under the field it starts with (the longest dotted path that matches;
    ``data.columns.instruction is required`` belongs to ``data.columns`` when that is the deepest field shown).

    Returns the messages by path (several joined by newlines) and the lines no field claims.
    """
    known = sorted(paths, key=len, reverse=True)
    placed: dict[str, list[str]] = {}
    rest: list[str] = []
    for problem in problems:
        owner = next((p for p in known if problem.startswith(p) and problem[len(p) : len(p) + 1] in " :;."), None)
        if owner is None:
            rest.append(problem)
        else:
            placed.setdefault(owner, []).append(problem)
    return {path: "\n".join(lines) for path, lines in placed.items()}, rest


class _SpinBox(QSpinBox):
    """A spin box that lets the wheel scroll the form unless it has the focus (a click or Tab gives it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()


class _ComboBox(QComboBox):
    """A combo box that lets the wheel scroll the form unless it has the focus."""

    def __init__(self) -> None:
        super().__init__()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()


class SpecForm(QWidget):
    """The main fields, then an Advanced section that starts folded."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fields: dict[str, FormField] = {}
        self._labels: list[QLabel] = []
        self._defs: dict[str, FieldDef] = {}
        self._loading = False
        line = self.fontMetrics().height()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(line)
        for title, defs in MAIN_SECTIONS:
            layout.addWidget(self._section(title, defs))

        advanced = QWidget()
        advanced_layout = QVBoxLayout(advanced)
        advanced_layout.setContentsMargins(0, 0, 0, 0)
        advanced_layout.setSpacing(line)
        for title, defs in ADVANCED_SECTIONS:
            advanced_layout.addWidget(self._section(title, defs))
        self.advanced = CollapsibleSection("Advanced settings", advanced)
        layout.addWidget(self.advanced)
        # One label column for every section, so the editors line up down the whole form.
        width = max(label.sizeHint().width() for label in self._labels)
        for label in self._labels:
            label.setMinimumWidth(width)
        self.set_values(default_values())

    # -- building ---------------------------------------------------------------------------------

    def _section(self, title: str, defs: tuple[FieldDef, ...]) -> QWidget:
        box = QWidget()
        outer = QVBoxLayout(box)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(self.fontMetrics().height() // 2)
        heading = QLabel(title)
        font = heading.font()
        font.setBold(True)
        heading.setFont(font)
        outer.addWidget(heading)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        form.setLabelAlignment(form.labelAlignment())
        form.setVerticalSpacing(round(self.fontMetrics().height() * 0.7))
        for field_def in defs:
            editor = self._editor(field_def)
            field = FormField(editor, description(field_def.path))
            field.setObjectName(field_def.path)
            self.fields[field_def.path] = field
            self._defs[field_def.path] = field_def
            if field_def.kind == "bool":
                spacer = QLabel()
                self._labels.append(spacer)
                form.addRow(spacer, field)
            else:
                label = QLabel(f"{field_def.label}:")
                label.setBuddy(editor)
                self._labels.append(label)
                form.addRow(label, field)
        outer.addLayout(form)
        return box

    def _editor(self, field_def: FieldDef) -> QWidget:
        kind = field_def.kind
        if kind in ("int", "optional_int"):
            spin = _SpinBox()
            spin.setRange(0, _INT_MAX)
            spin.setGroupSeparatorShown(True)
            spin.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)
            if kind == "optional_int":
                spin.setSpecialValueText(field_def.empty)
            spin.valueChanged.connect(self._edited)
            return spin
        if kind == "bool":
            box = QCheckBox(field_def.label)
            box.toggled.connect(self._edited)
            return box
        if kind in ("choice", "targets"):
            combo = _ComboBox()
            values = _literal_values(field_def.path) if kind == "choice" else list(field_def.choices or {})
            for value in values:
                combo.addItem((field_def.choices or {}).get(value, value), value)
            if kind == "targets":
                combo.setEditable(True)
                combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
                editor = combo.lineEdit()
                assert editor is not None  # setEditable(True) gave the combo box one
                editor.setPlaceholderText("or layer names, separated by commas")
                combo.editTextChanged.connect(self._edited)
            combo.currentIndexChanged.connect(self._edited)
            return combo
        edit = QLineEdit()
        if field_def.empty:
            edit.setPlaceholderText(field_def.empty)
        edit.setClearButtonEnabled(kind in ("path", "optional_float", "names"))
        if kind == "path":
            icon = self.style().standardIcon(
                QStyle.StandardPixmap.SP_DirOpenIcon
                if field_def.pick == "folder"
                else QStyle.StandardPixmap.SP_FileIcon
            )
            action = edit.addAction(icon, QLineEdit.ActionPosition.TrailingPosition)
            action.setToolTip("Choose…")
            action.setObjectName(field_def.path)
            action.triggered.connect(self._browse)
        edit.textChanged.connect(self._edited)
        return edit

    # -- values -----------------------------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        """The raw values by dotted path; numbers parsed where they can be, text otherwise."""
        return {path: self._value(path) for path in self.fields}

    def value(self, path: str) -> Any:
        return self._value(path)

    def _value(self, path: str) -> Any:
        kind = self._defs[path].kind
        editor = self.fields[path].editor
        if isinstance(editor, QSpinBox):
            value = editor.value()
            return None if kind == "optional_int" and value == 0 else value
        if isinstance(editor, QCheckBox):
            return editor.isChecked()
        if isinstance(editor, QComboBox):
            if kind == "targets":
                text = editor.currentText().strip()
                index = editor.findText(text)
                if index >= 0:
                    return editor.itemData(index)
                if text in (self._defs[path].choices or {}):
                    return text
                return [name.strip() for name in text.split(",") if name.strip()]
            return editor.currentData()
        assert isinstance(editor, QLineEdit)
        text = editor.text()
        if kind == "text":
            return text
        if kind in ("path", "optional_float", "names") and not text.strip():
            return [] if kind == "names" else None
        if kind == "path":
            return text.strip()
        if kind == "names":
            return [name.strip() for name in text.split(",") if name.strip()]
        return parse_number(text)

    def set_values(self, values: Mapping[str, Any]) -> None:
        """Set the fields named in ``values`` (dotted paths; others are ignored), then say ``changed`` once."""
        self._loading = True
        try:
            for path, value in values.items():
                if path in self.fields:
                    self._set(path, value)
        finally:
            self._loading = False
        self.changed.emit()

    def _set(self, path: str, value: Any) -> None:
        kind = self._defs[path].kind
        editor = self.fields[path].editor
        if isinstance(editor, QSpinBox):
            editor.setValue(0 if value is None else int(value))
        elif isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, QComboBox):
            if kind == "targets" and isinstance(value, list):
                editor.setEditText(", ".join(value))
            else:
                index = editor.findData(value)
                if index >= 0:
                    editor.setCurrentIndex(index)
                    if kind == "targets":
                        editor.setEditText(editor.itemText(index))
        else:
            assert isinstance(editor, QLineEdit)
            if value is None:
                editor.setText("")
            elif kind == "names":
                editor.setText(", ".join(value))
            elif kind in ("float", "optional_float") and isinstance(value, (int, float)):
                editor.setText(format_number(value))
            else:
                editor.setText(str(value))
            editor.setCursorPosition(0)

    # -- errors -----------------------------------------------------------------------------------

    def set_errors(self, errors: Mapping[str, str]) -> None:
        """Show each message under its field and clear the others; open Advanced if an error hides there."""
        for path, field in self.fields.items():
            field.set_error(errors.get(path, ""))
        advanced = {field.path for _, defs in ADVANCED_SECTIONS for field in defs}
        if any(path in advanced for path in errors) and not self.advanced.is_expanded():
            self.advanced.set_expanded(True)

    def errors(self) -> dict[str, str]:
        return {path: field.error() for path, field in self.fields.items() if field.error()}

    # -- slots ------------------------------------------------------------------------------------

    def _edited(self, *_args: object) -> None:
        if not self._loading:
            self.changed.emit()

    def _browse(self) -> None:
        path = self.sender().objectName()
        editor = self.fields[path].editor
        assert isinstance(editor, QLineEdit)
        if self._defs[path].pick == "folder":
            chosen = QFileDialog.getExistingDirectory(self, self._defs[path].label, editor.text())
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, self._defs[path].label, editor.text())
        if chosen:
            editor.setText(chosen)
