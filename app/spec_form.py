"""The hyperparameter form of a training job: one editor per ``JobSpec`` field, with the spec's own help.

Every field is named by its dotted spec path (``training.micro_batch_size``), shows the pydantic
``Field`` description of that path as a visible help line and a tooltip, and shows its validation
error in red under it. The form holds raw values only; the page builds the spec with
``JobSpec.from_dict`` and hands the problems back with ``set_errors``, so the rules live in one
place (``backend/core/spec.py``) and the form never second-guesses them. Which fields there are,
in which sections, and how their numbers are written and read is in ``app.spec_fields``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Signal
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

from app.spec_fields import (
    ADVANCED_SECTIONS,
    INT_MAX,
    MAIN_SECTIONS,
    FieldDef,
    default_values,
    description,
    format_number,
    literal_values,
    parse_number,
)
from widgets.collapsible_section import CollapsibleSection
from widgets.focus_wheel import FocusComboBox, FocusSpinBox
from widgets.form_field import FormField


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
            spin = FocusSpinBox()
            spin.setRange(0, INT_MAX)
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
            combo = FocusComboBox()
            values = literal_values(field_def.path) if kind == "choice" else list(field_def.choices or {})
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
