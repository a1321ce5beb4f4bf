"""The column-mapping dialog: a saved mapping round-trips, choices are validated, the preview follows, and only
a mapping that imports rows is offered (tried with the importer's own reading of the rows, ``app.mapping_trial``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QLabel, QTableWidget
from pytestqt.qtbot import QtBot

from app.data_page import DataPage
from app.mapping_trial import MappingTrier
from app.session import Session
from widgets.column_mapping import ColumnMappingDialog

COLUMNS = ["question", "context", "answer", "id"]
ROWS = [{"question": f"Q{i}?", "context": f"clause {i}", "answer": f"A{i}.", "id": i} for i in range(8)]


def make(qtbot: QtBot, mapping: dict | None = None, rows: list = ROWS) -> ColumnMappingDialog:
    dialog = ColumnMappingDialog(COLUMNS, rows, MappingTrier(rows), mapping, file_name="clauses.csv")
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
    assert ColumnMappingDialog(COLUMNS, ROWS, MappingTrier(ROWS), dialog.mapping()).mapping() == saved


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
        ColumnMappingDialog(COLUMNS, ROWS, MappingTrier(ROWS), {"instruction": "question", "output": "answer"})


@pytest.mark.parametrize("rows", [[], [{"question": None, "answer": ["a", "list"]}]], ids=["no rows", "odd values"])
def test_rows_without_text_preview_why_and_are_not_offered(qtbot: QtBot, rows: list) -> None:
    dialog = make(qtbot, {"instruction": "question", "response": "answer"}, rows)
    assert preview(dialog)[1:] == ([["⚠ 'question' is empty", "⚠ 'answer' is a list, not text"]] if rows else [])
    assert not ok_button(dialog).isEnabled()
    assert dialog.problems() == (
        ["With this mapping none of the first row can be imported: row 1: 'question' is empty."]
        if rows
        else ["The file has no rows."]
    )


PAIRS = [
    {
        "input": {"messages": [{"role": "user", "content": f"Is {i} even?"}]},
        "preferred_output": [{"role": "assistant", "content": "Yes." if i % 2 == 0 else "No."}],
        "non_preferred_output": [{"role": "assistant", "content": "Maybe."}],
    }
    for i in range(4)
]


def test_object_columns_are_flagged_and_a_mapping_of_them_is_not_offered(qtbot: QtBot) -> None:
    """OpenAI preference data: every column holds objects or lists. Mapped to instruction and response, no row
    imports, so OK stays disabled with the importer's reason, and the preview shows no Python dict text."""
    trier = MappingTrier(PAIRS)
    columns = list(PAIRS[0])
    dialog = ColumnMappingDialog(
        columns,
        PAIRS,
        trier,
        {"instruction": "input", "response": "preferred_output"},
        column_notes=trier.column_notes(columns),
        advice=trier.layout_advice(),
    )
    qtbot.addWidget(dialog)
    dialog.show()
    assert not ok_button(dialog).isEnabled()
    problem = dialog.findChild(QLabel, "problem")
    assert problem.isVisibleTo(dialog)
    assert (
        problem.text()
        == "With this mapping none of the first 4 rows can be imported: row 1: 'input' is an object, not text."
    )
    assert dialog.findChild(QLabel, "sample:input").text() == "⚠ an object, not text"
    assert dialog.findChild(QLabel, "sample:preferred_output").text() == "⚠ a list, not text"
    cells = [cell for row in preview(dialog)[1:] for cell in row]
    assert cells and all(cell.startswith("⚠ ") and "not text" in cell for cell in cells)
    assert not any("{'" in cell or "[{" in cell for cell in cells), "Python's text of an object"
    dialog.accept()
    assert dialog.isVisible(), "refused while no row imports"
    # The way this data trains is named: a preference objective, not a mapping.
    advice = dialog.findChild(QLabel, "advice")
    assert advice.isVisibleTo(dialog) and "training.objective" in advice.text() and "DPO" in advice.text()


def test_a_mapping_that_imports_some_rows_is_offered_with_how_many(qtbot: QtBot) -> None:
    rows = [*ROWS[:3], {"question": {"nested": True}, "context": "", "answer": "A.", "id": 9}]
    dialog = make(qtbot, {"instruction": "question", "response": "answer"}, rows)
    assert ok_button(dialog).isEnabled()
    problem = dialog.findChild(QLabel, "problem")
    assert problem.text() == "3 of the first 4 rows can be imported; row 4: 'question' is an object, not text."
    assert dialog.findChild(QLabel, "advice").isHidden(), "ordinary rows: no other objective to point to"


@pytest.fixture
def data_page(qtbot: QtBot, session: Session, tmp_path: Path) -> DataPage:
    page = DataPage(session, settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(page)
    return page


def test_the_data_pages_dialog_refuses_a_mapping_of_preference_objects_and_names_the_objective(
    qtbot: QtBot, data_page: DataPage, tmp_path: Path
) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in PAIRS), encoding="utf-8")
    with qtbot.waitSignal(data_page.checked, timeout=30_000):
        data_page.open(path)
    assert data_page.map_button.isVisibleTo(data_page)
    dialog = data_page.ask_mapping()
    assert dialog is not None
    for column, role in (("input", "instruction"), ("preferred_output", "response")):
        combo = dialog.findChild(QComboBox, f"role:{column}")
        combo.setCurrentIndex(combo.findData(role))
    assert not ok_button(dialog).isEnabled()
    assert "'input' is an object, not text" in dialog.findChild(QLabel, "problem").text()
    assert "training.objective" in dialog.findChild(QLabel, "advice").text()
    dialog.close()


def test_detect_format_reads_the_file_again_without_reopening_the_dialog(
    qtbot: QtBot, data_page: DataPage, tmp_path: Path
) -> None:
    path = tmp_path / "tickets.csv"
    path.write_text("ticket,reply\nPrinter jams,Open tray B\nNo wifi,Restart the router\n")
    with qtbot.waitSignal(data_page.checked, timeout=30_000):
        data_page.open(path)
    dialog = data_page.mapping_dialog
    assert dialog is not None, "nothing recognised: the mapping is asked for at once"
    for column, role in (("ticket", "instruction"), ("reply", "response")):
        combo = dialog.findChild(QComboBox, f"role:{column}")
        combo.setCurrentIndex(combo.findData(role))
    with qtbot.waitSignal(data_page.checked, timeout=30_000) as mapped:
        qtbot.mouseClick(ok_button(dialog), Qt.MouseButton.LeftButton)
    assert mapped.args[0].accepted == 2
    with qtbot.waitSignal(data_page.checked, timeout=30_000) as detected:
        qtbot.mouseClick(data_page.detect_button, Qt.MouseButton.LeftButton)
    assert detected.args[0].accepted == 0
    qtbot.wait(50)
    assert data_page.mapping_dialog is None, "the user asked to detect, not to map: the dialog stays closed"
    assert data_page.map_button.isVisibleTo(data_page) and data_page.map_button.isDefault()
