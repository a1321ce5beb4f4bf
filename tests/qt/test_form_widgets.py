"""The small form widgets of the Model & training page: a field with help and error, folding, messages."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from widgets.collapsible_section import CollapsibleSection
from widgets.form_field import FormField
from widgets.labels import wrapping_label
from widgets.message_list import MessageList


def test_a_field_shows_its_help_always_and_its_error_only_when_there_is_one(qtbot: QtBot) -> None:
    field = FormField(QLineEdit(), "Examples processed at once.")
    qtbot.addWidget(field)
    field.show()
    error = field.findChild(QLabel, "fieldError")
    assert field.help.isVisible() and field.help.text() == "Examples processed at once."
    assert field.editor.toolTip() == "Examples processed at once."
    assert not error.isVisible() and field.error() == ""
    field.set_error("training.micro_batch_size must be greater than 0; you wrote 0")
    assert error.isVisible() and field.error().startswith("training.micro_batch_size")
    assert field.editor.accessibleDescription() == field.error()
    field.set_error("")
    assert not error.isVisible()


def test_a_wrapped_help_line_gets_the_height_of_its_lines(qtbot: QtBot) -> None:
    text = " ".join(["Recompute activations instead of storing them."] * 6)
    field = FormField(QLineEdit(), text)
    qtbot.addWidget(field)
    field.resize(300, 10)
    field.show()
    field.resize(300, field.heightForWidth(300))
    qtbot.waitUntil(lambda: field.help.height() > 0)
    assert field.help.height() == field.help.heightForWidth(field.help.width())
    assert wrapping_label("x").sizePolicy().hasHeightForWidth()


def test_a_section_folds_and_unfolds(qtbot: QtBot) -> None:
    content = QWidget()
    section = CollapsibleSection("Advanced settings", content)
    qtbot.addWidget(section)
    section.show()
    assert not section.is_expanded() and not content.isVisible()
    with qtbot.waitSignal(section.toggled) as toggled:
        qtbot.mouseClick(section.header, Qt.MouseButton.LeftButton)
    assert toggled.args == [True] and content.isVisible()
    assert section.header.arrowType() == Qt.ArrowType.DownArrow
    section.set_expanded(False)
    assert not content.isVisible() and section.header.arrowType() == Qt.ArrowType.RightArrow


def test_messages_are_shown_in_order_and_rows_are_reused(qtbot: QtBot) -> None:
    window = QWidget()
    messages = MessageList(window)
    qtbot.addWidget(window)
    window.show()
    assert not messages.isVisible(), "no messages, no room taken"
    messages.set_messages([("error", "The disk is full."), ("info", "No GPU: the CPU runs it.")])
    labels = [label for label in messages.findChildren(QLabel) if label.text() and label.isVisible()]
    assert [label.text() for label in labels] == ["The disk is full.", "No GPU: the CPU runs it."]
    rows = len(messages.findChildren(QLabel))
    messages.set_messages([("ok", "Queued as job 3.")])
    assert len(messages.findChildren(QLabel)) == rows
    assert messages.messages() == [("ok", "Queued as job 3.")]
    messages.set_messages([])
    assert not messages.isVisible()
