"""The column-mapping dialog: a saved mapping round-trips, choices are validated, the preview follows."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QLabel, QTableWidget
from pytestqt.qtbot import QtBot

from widgets.column_mapping import ColumnMappingDialog

COLUMNS = ["question", "context", "answer", "id"]
ROWS = [{"question": f"Q{i}?", "context": f"clause {i}", "answer": f"A{i}.", "id": i} for i in range(8)]


def make(qtbot: QtBot, mapping: dict | None = None, rows: list = ROWS) -> ColumnMappingDialog:
    dialog = ColumnMappingDialog(COLUMNS, rows, mapping, file_name="clauses.csv")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def choose(qtbot: QtBot, dialog: ColumnMappingDialog, column: str, role_name: str) -> None:
    """Pick a role the way a keyboard user does: focus the column's box and type the role's name.

    Only the first word is typed: a space would open the list.
    """
    combo = dialog.findChild(QComboBox, f"role:{column}")
    combo.setFocus()
    qtbot.keyClicks(combo, role_name.split()[0])
    assert combo.currentText() == role_name


def ok_button(dialog: ColumnMappingDialog):
    return dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)


def preview(dialog: ColumnMappingDialog) -> list[list[str]]:
    table = dialog.findChild(QTableWidget, "preview")
    header = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    return [header] + [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]


def test_a_saved_mapping_round_trips(qtbot: QtBot) -> None:
    saved = {"instruction": "question", "input": "context", "response": "answer"}
    dialog = make(qtbot, saved)
    assert dialog.windowTitle() == "Columns of clauses.csv"
    assert dialog.mapping() == saved
    assert ok_button(dialog).isEnabled()
    with qtbot.waitSignal(dialog.accepted, timeout=1000):
        qtbot.mouseClick(ok_button(dialog), Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.mapping() == saved
    assert ColumnMappingDialog(COLUMNS, ROWS, dialog.mapping()).mapping() == saved


def test_instruction_and_response_are_required(qtbot: QtBot) -> None:
    dialog = make(qtbot)
    assert dialog.mapping() == {}
    assert not ok_button(dialog).isEnabled()
    problem = dialog.findChild(QLabel, "problem")
    assert problem.text().splitlines() == [
        "Choose the column that holds the instruction.",
        "Choose the column that holds the response.",
    ]
    choose(qtbot, dialog, "question", "Instruction")
    assert not ok_button(dialog).isEnabled()
    choose(qtbot, dialog, "answer", "Response")
    assert ok_button(dialog).isEnabled()
    assert problem.isHidden()
    assert dialog.mapping() == {"instruction": "question", "response": "answer"}


def test_a_role_can_have_only_one_column(qtbot: QtBot) -> None:
    dialog = make(qtbot, {"instruction": "question", "response": "answer"})
    choose(qtbot, dialog, "context", "Response")
    assert dialog.problems() == ["Only one column can be the response; now “context”, “answer” are."]
    assert not ok_button(dialog).isEnabled()
    dialog.accept()  # e.g. Enter pressed: refused while the mapping is wrong
    assert dialog.isVisible()


def test_the_preview_follows_the_mapping(qtbot: QtBot) -> None:
    dialog = make(qtbot, {"instruction": "question", "response": "answer"})
    assert preview(dialog)[:3] == [["Instruction", "Response"], ["Q0?", "A0."], ["Q1?", "A1."]]
    assert len(preview(dialog)) == 1 + 5
    choose(qtbot, dialog, "context", "Input")
    choose(qtbot, dialog, "id", "System prompt")
    assert preview(dialog)[:2] == [
        ["Instruction", "Input", "Response", "System prompt"],
        ["Q0?", "clause 0", "A0.", "0"],
    ]


def test_a_saved_mapping_naming_missing_columns_says_so(qtbot: QtBot) -> None:
    dialog = make(qtbot, {"instruction": "question", "response": "reply"})
    assert dialog.mapping() == {"instruction": "question"}
    text = dialog.findChild(QLabel, "problem").text()
    assert "The saved mapping named columns this file doesn't have: “reply”." in text


def test_a_mapping_with_an_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown roles \['output'\]; a mapping's roles are instruction, input"):
        ColumnMappingDialog(COLUMNS, ROWS, {"instruction": "question", "output": "answer"})


@pytest.mark.parametrize("rows", [[], [{"question": None, "answer": ["a", "list"]}]], ids=["no rows", "odd values"])
def test_rows_without_text_still_preview(qtbot: QtBot, rows: list) -> None:
    dialog = make(qtbot, {"instruction": "question", "response": "answer"}, rows)
    assert preview(dialog)[1:] == ([["", "['a', 'list']"]] if rows else [])
