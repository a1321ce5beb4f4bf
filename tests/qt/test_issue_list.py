"""The issue list: clicks and Enter emit the example, filters and badges count, copy and save."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QTableView, QToolButton
from pytestqt.qtbot import QtBot

from widgets.issue_list import SEVERITIES, Issue, IssueList, IssueTableModel

ISSUES = [
    Issue("error", "not valid JSON", file="train.jsonl", line=12, hint="fix the line or delete it"),
    Issue("error", "does not end with an assistant reply", file="train.jsonl", line=40, field="messages", example=37),
    Issue("warning", "exact duplicate", file="table.csv", row=77, hint="turn on dedupe", example=70),
    Issue("info", "only 120 examples", hint="a few hundred usually work better"),
]


@pytest.fixture
def issues(qtbot: QtBot) -> IssueList:
    widget = IssueList()
    qtbot.addWidget(widget)
    widget.resize(900, 300)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def table_of(widget: IssueList) -> QTableView:
    return widget.findChild(QTableView)


def button(widget: IssueList, starts: str) -> QToolButton:
    (found,) = (b for b in widget.findChildren(QToolButton) if b.text().startswith(starts))
    return found


def cell_center(table: QTableView, row: int):
    return table.visualRect(table.model().index(row, 4)).center()


def test_the_model_passes_qts_model_checks(qtmodeltester) -> None:
    model = IssueTableModel(dict.fromkeys(SEVERITIES, QIcon()))
    model.set_issues(ISSUES)
    qtmodeltester.check(model, force_py=True)


def test_clicking_an_issue_emits_its_example(qtbot: QtBot, issues: IssueList) -> None:
    issues.set_issues(ISSUES)
    table = table_of(issues)
    with qtbot.waitSignal(issues.issueActivated, timeout=1000) as signal:
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=cell_center(table, 1))
    assert signal.args == [37]
    # An issue about a row that was not kept has nothing to jump to.
    with qtbot.assertNotEmitted(issues.issueActivated):
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=cell_center(table, 0))


def test_enter_activates_the_current_issue(qtbot: QtBot, issues: IssueList) -> None:
    issues.set_issues(ISSUES)
    table = table_of(issues)
    table.setFocus()
    table.setCurrentIndex(table.model().index(2, 0))
    with qtbot.waitSignal(issues.issueActivated, timeout=1000) as signal:
        qtbot.keyClick(table, Qt.Key.Key_Return)
    assert signal.args == [70]


def test_badges_count_and_toggles_filter(qtbot: QtBot, issues: IssueList) -> None:
    assert [b.text() for b in issues.findChildren(QToolButton)[:3]] == ["Errors", "Warnings", "Notes"]
    issues.set_issues(ISSUES)
    assert issues.counts() == {"error": 2, "warning": 1, "info": 1}
    assert [b.text() for b in issues.findChildren(QToolButton)[:3]] == ["2 errors", "1 warning", "1 note"]

    qtbot.mouseClick(button(issues, "2 errors"), Qt.MouseButton.LeftButton)
    table = table_of(issues)
    assert [table.model().index(r, 4).data() for r in range(table.model().rowCount())] == [
        "exact duplicate",
        "only 120 examples",
    ]
    with qtbot.waitSignal(issues.issueActivated, timeout=1000) as signal:  # rows map back through the filter
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=cell_center(table, 0))
    assert signal.args == [70]

    issues.set_severity_shown("warning", False)
    issues.set_severity_shown("info", False)
    assert table.model().rowCount() == 0
    assert table.placeholder() == "Every issue is hidden. Turn on a severity above to see them."
    assert not button(issues, "1 warning").isChecked()


def test_where_says_line_or_row(issues: IssueList) -> None:
    issues.set_issues(ISSUES)
    model = table_of(issues).model()
    assert [model.index(r, 2).data() for r in range(4)] == ["line 12", "line 40", "row 77", ""]
    assert (
        model.index(0, 4).data(Qt.ItemDataRole.ToolTipRole) == "not valid JSON\n\nWhat to do: fix the line or delete it"
    )


def test_copy_puts_the_selected_issues_on_the_clipboard(qtbot: QtBot, issues: IssueList) -> None:
    issues.set_issues(ISSUES)
    table = table_of(issues)
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=cell_center(table, 0))
    qtbot.mouseClick(
        table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, cell_center(table, 2)
    )
    qtbot.keyClick(table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text().splitlines() == [
        "Severity\tFile\tWhere\tField\tProblem\tWhat to do",
        "Error\ttrain.jsonl\tline 12\t\tnot valid JSON\tfix the line or delete it",
        "Warning\ttable.csv\trow 77\t\texact duplicate\tturn on dedupe",
    ]


def test_save_report_is_offered_once_there_is_a_result(qtbot: QtBot, issues: IssueList) -> None:
    save = button(issues, "Save report…")
    assert not save.isEnabled()
    assert table_of(issues).placeholder().startswith("Problems found in the dataset are listed here")
    issues.set_issues([])
    assert table_of(issues).placeholder() == "No problems found."
    with qtbot.waitSignal(issues.saveReportRequested, timeout=1000):
        qtbot.mouseClick(save, Qt.MouseButton.LeftButton)
    issues.clear()
    assert not save.isEnabled()


def test_an_unknown_severity_is_refused() -> None:
    with pytest.raises(ValueError, match="severity must be one of error, warning, info"):
        Issue("fatal", "x")
