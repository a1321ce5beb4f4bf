"""The recent-datasets list: keys and activation reach its signals, and every row paints."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from widgets.recent_list import RecentItem, RecentList


def _list(qtbot: QtBot) -> RecentList:
    recent = RecentList()
    qtbot.addWidget(recent)
    recent.set_items(
        [
            RecentItem("/data/tickets.jsonl", "tickets.jsonl", "360 rows, 2 problems"),
            RecentItem("/data/gone.csv", "gone.csv", "no longer there", missing=True),
        ]
    )
    recent.resize(320, 200)
    recent.show()
    qtbot.waitExposed(recent)
    return recent


def test_delete_forgets_and_enter_opens_the_current_row(qtbot: QtBot) -> None:
    recent = _list(qtbot)
    recent.setCurrentRow(1)
    with qtbot.waitSignal(recent.forgetRequested) as forgot:
        qtbot.keyClick(recent, Qt.Key.Key_Delete)
    assert forgot.args == ["/data/gone.csv"]
    recent.setCurrentRow(0)
    with qtbot.waitSignal(recent.openRequested) as opened:
        qtbot.keyClick(recent, Qt.Key.Key_Return)
    assert opened.args == ["/data/tickets.jsonl"]
    with qtbot.assertNotEmitted(recent.forgetRequested):
        qtbot.keyClick(recent, Qt.Key.Key_Down)  # other keys move the selection as usual
    assert recent.currentRow() == 1


def test_rows_paint_two_lines_with_the_missing_one_muted(qtbot: QtBot) -> None:
    recent = _list(qtbot)
    recent.setCurrentRow(0)
    image = recent.grab().toImage()
    assert recent.keys() == ["/data/tickets.jsonl", "/data/gone.csv"]
    first, second = (recent.visualItemRect(recent.item(i)) for i in range(2))
    assert first.height() >= 2 * recent.fontMetrics().height(), "room for the name and the detail"

    def inked(rect) -> int:  # pixels that differ from the row's background corner
        corner = image.pixelColor(rect.right() - 1, rect.bottom() - 1)
        return sum(
            image.pixelColor(x, y) != corner
            for x in range(rect.left(), rect.right(), 2)
            for y in range(rect.top(), rect.bottom(), 2)
        )

    assert inked(first) > 20 and inked(second) > 20, "both rows drew their text"


def test_one_click_opens_a_row_once_even_when_double_clicked(qtbot: QtBot) -> None:
    recent = _list(qtbot)
    row = recent.visualItemRect(recent.item(1)).center()
    with qtbot.waitSignal(recent.openRequested) as opened:
        qtbot.mouseClick(recent.viewport(), Qt.MouseButton.LeftButton, pos=row)
    assert opened.args == ["/data/gone.csv"]
    seen: list[str] = []
    recent.openRequested.connect(seen.append)
    qtbot.mouseDClick(recent.viewport(), Qt.MouseButton.LeftButton, pos=row)
    assert len(seen) <= 1, "a double-click must not open the dataset twice"
