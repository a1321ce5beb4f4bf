"""Datasets opened before, newest first: a name, what the last check found, and where it is.

One click, or Enter on the current row, opens one (``HINT`` says so where the list is shown; a
double-click opens it once); the context menu (or Delete) forgets it. An entry whose file
is gone stays listed, greyed, so the user sees it moved rather than wondering where it went.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QFont, QKeyEvent, QPainter, QPalette
from PySide6.QtWidgets import (
    QListWidget,
    QListWidgetItem,
    QMenu,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

_DETAIL = Qt.ItemDataRole.UserRole + 1
_KEY = Qt.ItemDataRole.UserRole + 2
_MISSING = Qt.ItemDataRole.UserRole + 3

HINT = "Click one to open it again, or select it and press Enter; Delete forgets it."


@dataclass(frozen=True)
class RecentItem:
    key: str
    """What ``openRequested`` and ``forgetRequested`` carry: the dataset's path."""
    title: str
    detail: str
    """What the last check found, in one line."""
    missing: bool = False
    """The file or folder is no longer there."""


class RecentList(QListWidget):
    openRequested = Signal(str)
    forgetRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recent")
        self.setAccessibleName("Recent datasets")
        self.setItemDelegate(_TwoLines(self))
        self.setUniformItemSizes(True)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        # A single click opens, whatever the style's activation (double-click on most desktops) says.
        self.itemClicked.connect(self._activated)

    def set_items(self, items: Sequence[RecentItem]) -> None:
        self.clear()
        for entry in items:
            item = QListWidgetItem(entry.title)
            item.setData(_DETAIL, entry.detail + (" · not found: moved or deleted?" if entry.missing else ""))
            item.setData(_KEY, entry.key)
            item.setData(_MISSING, entry.missing)
            item.setToolTip(f"{entry.key}\n{HINT}")
            item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{entry.title}, {entry.detail}")
            self.addItem(item)

    def keys(self) -> list[str]:
        return [self.item(i).data(_KEY) for i in range(self.count())]

    def keyPressEvent(self, event: QKeyEvent) -> None:
        item = self.currentItem()
        if item is not None and event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.forgetRequested.emit(item.data(_KEY))
            event.accept()
            return
        if item is not None and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.openRequested.emit(item.data(_KEY))
            event.accept()
            return
        super().keyPressEvent(event)

    def _activated(self, item: QListWidgetItem) -> None:
        self.openRequested.emit(item.data(_KEY))

    def _menu(self, position: QPoint) -> None:
        item = self.itemAt(position)
        if item is None:
            return
        key = item.data(_KEY)
        menu = QMenu(self)
        open_action = menu.addAction("Open")
        forget_action = menu.addAction("Forget")
        chosen = menu.exec(self.viewport().mapToGlobal(position))
        menu.deleteLater()
        if chosen is open_action:
            self.openRequested.emit(key)
        elif chosen is forget_action:
            self.forgetRequested.emit(key)


class _TwoLines(QStyledItemDelegate):
    """The name in bold over the detail in the muted colour, both elided to the width."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        line = option.fontMetrics.height()
        return QSize(line * 12, round(line * 2.9))

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        self.initStyleOption(option, index)
        widget = option.widget
        style = widget.style() if widget else None
        text = option.text
        option.text = ""
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, widget)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        palette = option.palette
        missing = bool(index.data(_MISSING))
        line = option.fontMetrics.height()
        pad = line // 2
        box = option.rect.adjusted(pad, line // 4, -pad, -(line // 4))
        top = QRect(box.left(), box.top(), box.width(), box.height() // 2)
        bottom = QRect(box.left(), box.top() + box.height() // 2, box.width(), box.height() - box.height() // 2)

        painter.save()
        title_font = QFont(option.font)
        title_font.setBold(True)
        painter.setFont(title_font)
        if selected:
            painter.setPen(palette.color(QPalette.ColorRole.HighlightedText))
        elif missing:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        else:
            painter.setPen(palette.color(QPalette.ColorRole.Text))
        flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(top, flags, painter.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, top.width()))
        painter.setFont(option.font)
        if not selected:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        detail = str(index.data(_DETAIL) or "")
        painter.drawText(
            bottom, flags, option.fontMetrics.elidedText(detail, Qt.TextElideMode.ElideRight, bottom.width())
        )
        painter.restore()
