"""A page that is built the first time it is shown.

The studio has six pages and the user sees one at start-up; building (and importing) the
other five only when they are first opened keeps the window's start under its time bar.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget


class LazyPage(QWidget):
    built = Signal(object)
    """The real page, once it has been built."""

    def __init__(self, factory: Callable[[], QWidget], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._factory: Callable[[], QWidget] | None = factory
        self._page: QWidget | None = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def page(self) -> QWidget:
        """The real page, built now if it was not yet."""
        if self._page is None and self._factory is not None:
            factory, self._factory = self._factory, None
            self._page = factory()
            self._layout.addWidget(self._page)
            self.built.emit(self._page)
        assert self._page is not None
        return self._page

    def is_built(self) -> bool:
        return self._page is not None

    def showEvent(self, event: QShowEvent) -> None:
        self.page()
        super().showEvent(event)
