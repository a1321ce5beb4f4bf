"""The table behind the example preview: one row per normalized example, read only when drawn.

The model keeps a reference to the caller's sequence and reads an example only when the view
asks for a visible cell, so a lazy sequence over an Arrow table shows a million rows without
loading them. Cell text is cut short before it reaches the view, because laying out a
100,000-character reply just to elide it would stall scrolling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, QSize, Qt
from PySide6.QtGui import QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from widgets.palette import role_color
from widgets.sequence_model import SequenceTableModel

Message = Mapping[str, object]  # {"role": "user", "content": "…"}; extra keys (weight) are ignored
Example = Sequence[Message]

_COLUMNS = ("#", "Turns", "Prompt", "Reply")
NUMBER, TURNS, PROMPT, REPLY = range(len(_COLUMNS))
_CELL_CHARS = 240  # enough to fill a wide cell; the view elides the rest
_TIP_CHARS = 800
TURN_ROLES = Qt.ItemDataRole.UserRole  # the Turns column's roles, as a tuple, for the delegate


def role_of(message: Message) -> str:
    return str(message.get("role", ""))


def text_of(message: Message) -> str:
    content = message.get("content", "")
    return content if isinstance(content, str) else str(content)


def _one_line(text: str, limit: int) -> str:
    return " ".join(text[: limit * 2].split())[:limit]


def _prompt(example: Example) -> Message | None:
    """The first user message, or the first message of any kind when there is none."""
    return next((m for m in example if role_of(m) == "user"), example[0] if example else None)


def _reply(example: Example) -> Message | None:
    return next((m for m in reversed(example) if role_of(m) == "assistant"), None)


class ExampleTableModel(SequenceTableModel[Example]):
    """Examples as rows: number, role-coloured turns, first prompt and last reply."""

    def __init__(self) -> None:
        super().__init__(_COLUMNS)

    def set_examples(self, rows: Sequence[Example]) -> None:
        self.set_rows(rows)

    def example(self, row: int) -> Example:
        return self.row_item(row)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or role not in (
            Qt.ItemDataRole.DisplayRole,
            Qt.ItemDataRole.ToolTipRole,
            Qt.ItemDataRole.TextAlignmentRole,
            TURN_ROLES,
        ):
            return None
        column = index.column()
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter if column == NUMBER else None
        if column == NUMBER:
            return f"{index.row() + 1:,}" if role == Qt.ItemDataRole.DisplayRole else None
        example = self.row_item(index.row())
        if column == TURNS:
            roles = tuple(role_of(m) for m in example)
            if role == TURN_ROLES:
                return roles
            listed = ", ".join(roles)
            return listed if role == Qt.ItemDataRole.DisplayRole else f"{len(roles)} messages: {listed}"
        if role == TURN_ROLES:
            return None
        message = _prompt(example) if column == PROMPT else _reply(example)
        if message is None:
            return None
        text = text_of(message)
        return _one_line(text, _CELL_CHARS) if role == Qt.ItemDataRole.DisplayRole else text[:_TIP_CHARS]


class TurnsDelegate(QStyledItemDelegate):
    """Draws a conversation's turns as small role-coloured badges (S, U, A, T) in its cell."""

    MAX_BADGES = 6

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        self.initStyleOption(option, index)
        option.text = ""
        style = option.widget.style() if option.widget else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, option.widget)
        roles = index.data(TURN_ROLES) or ()
        side = option.fontMetrics.height()
        gap = _badge_gap(side)
        x = option.rect.x() + gap
        y = option.rect.y() + (option.rect.height() - side) / 2
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        letter_font = QFont(option.font)
        letter_font.setPointSizeF(option.font.pointSizeF() * 0.8)
        letter_font.setBold(True)
        for shown, role in enumerate(roles):
            if shown == self.MAX_BADGES - 1 and len(roles) > self.MAX_BADGES:
                selected = option.state & QStyle.StateFlag.State_Selected
                painter.setFont(option.font)
                painter.setPen(
                    option.palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
                )
                rest = QRectF(x, y, side * 2, side)
                painter.drawText(rest, Qt.AlignmentFlag.AlignVCenter, f"+{len(roles) - shown}")
                break
            color = role_color(role, option.palette)
            badge = QRectF(x, y, side, side)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            painter.drawRoundedRect(badge, side / 4, side / 4)
            painter.setFont(letter_font)
            painter.setPen(option.palette.color(QPalette.ColorRole.Base))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, (role[:1] or "?").upper())
            x += side + gap
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(self.badges_width(option.fontMetrics), option.fontMetrics.height() + 4)

    @classmethod
    def badges_width(cls, metrics: QFontMetrics) -> int:
        """Room for every badge and the gaps between them."""
        side = metrics.height()
        return (side + _badge_gap(side)) * cls.MAX_BADGES + side


def _badge_gap(side: int) -> int:
    return max(3, side // 3)
