"""The studio's main window: a left-to-right path through the pages, and a status bar.

Pages are added by name; the navigation list, the ``Ctrl+1…`` shortcuts and the
saved "last page" all follow from that one list, so adding a page is one call.
"""

from __future__ import annotations

from typing import cast

from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QSplitter,
    QStackedWidget,
    QWidget,
)

from app import appearance
from app.about import AboutBox
from app.status import gpu_status_text

_GPU_POLL_MS = 5000


def with_mnemonic(title: str, taken: set[str]) -> str:
    """``title`` as a menu entry's text: a literal ``&`` doubled (a single one marks the mnemonic, and
    "Model & training" would underline the space), and ``&`` before the first letter no other entry
    in ``taken`` uses, which is added to it."""
    for i, char in enumerate(title):
        if char.isalnum() and char.lower() not in taken:
            taken.add(char.lower())
            return title[:i].replace("&", "&&") + "&" + title[i:].replace("&", "&&")
    return title.replace("&", "&&")


class MainWindow(QMainWindow):
    page_changed = Signal(int)
    """The index of the page now shown."""

    def __init__(self, settings: QSettings) -> None:
        super().__init__()
        self.setWindowTitle("LoRA Studio")
        self._settings = settings
        self._nav = QListWidget()
        self._nav.setIconSize(QSize(20, 20))
        self._nav.setMinimumWidth(180)
        self._nav.setUniformItemSizes(True)
        self._stack = QStackedWidget()
        self._nav.currentRowChanged.connect(self._stack.setCurrentIndex)
        self._nav.currentRowChanged.connect(self.page_changed)
        self._page_mnemonics: set[str] = set()

        self._splitter = QSplitter(Qt.Orientation.Horizontal)
        self._splitter.addWidget(self._nav)
        self._splitter.addWidget(self._stack)
        self._splitter.setStretchFactor(1, 1)
        self._splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self._splitter)

        self._queue_label = QLabel()
        self._queue_label.setToolTip("Jobs in the queue; the Jobs page lists them.")
        self._queue_label.setContentsMargins(0, 0, self.fontMetrics().height(), 0)
        self.statusBar().addPermanentWidget(self._queue_label)
        self._gpu_label = QLabel()
        self.statusBar().addPermanentWidget(self._gpu_label)
        self._gpu_timer = QTimer(self, interval=_GPU_POLL_MS)
        self._gpu_timer.timeout.connect(self.refresh_gpu_status)
        self._gpu_timer.start()
        self.refresh_gpu_status()

        self._build_menus()

    @property
    def settings(self) -> QSettings:
        """The window's settings: its state and the recent datasets File ▸ Open recent lists."""
        return self._settings

    # -- pages -----------------------------------------------------------------

    def add_page(self, title: str, page: QWidget, icon: QIcon, tip: str = "") -> None:
        index = self._stack.addWidget(page)
        item = QListWidgetItem(icon, title)
        item.setToolTip(tip)
        item.setSizeHint(QSize(0, 36))
        self._nav.addItem(item)
        text = with_mnemonic(title, self._page_mnemonics)
        action = QAction(text, self, shortcut=QKeySequence(f"Ctrl+{index + 1}"))
        action.triggered.connect(lambda: self.show_page(index))
        self._page_menu.addAction(action)
        self.addAction(action)  # the shortcut works even where the menu bar is hidden or native

    def show_page(self, index: int) -> None:
        self._nav.setCurrentRow(index)

    def page_widget(self, index: int) -> QWidget:
        widget = self._stack.widget(index)
        assert widget is not None, f"there is no page {index}"
        return widget

    def current_page(self) -> int:
        return self._stack.currentIndex()

    def page_titles(self) -> list[str]:
        return [self._nav.item(i).text() for i in range(self._nav.count())]

    # -- window --------------------------------------------------------------------

    def _build_menus(self) -> None:
        """File, View, Go and Help with the platform's standard keys; what File's entries do is wired in
        ``app.main.build_window``, which knows the pages."""
        standard = QKeySequence.StandardKey
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = self._standard_action("&Open dataset…", standard.Open)
        self.open_action.setToolTip("Open a dataset file on the Data page")
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addSeparator()
        self.save_report_action = self._standard_action("&Save report…", standard.Save)
        self.save_report_action.setToolTip("Save the report the page shows (the Data page's dataset report)")
        self.save_report_action.setEnabled(False)
        file_menu.addAction(self.save_report_action)
        file_menu.addSeparator()
        quit_action = self._standard_action("&Quit", standard.Quit)
        quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        view_menu = self.menuBar().addMenu("&View")
        appearance.add_menu(view_menu, self._settings)
        self._page_menu = self.menuBar().addMenu("&Go")
        self._help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About LoRA Studio", self)
        about.setMenuRole(QAction.MenuRole.AboutRole)
        about.triggered.connect(lambda: AboutBox(self).open())
        self._help_menu.addAction(about)

    def _standard_action(self, text: str, key: QKeySequence.StandardKey) -> QAction:
        """An action with the platform's key for ``key``, also on the window so it works with the menu bar hidden."""
        action = QAction(text, self, shortcut=QKeySequence(key))
        self.addAction(action)
        return action

    def add_menu(self, title: str) -> QMenu:
        """A menu of its own before Help, e.g. the Jobs page's actions."""
        menu = QMenu(title, self)
        self.menuBar().insertMenu(self._help_menu.menuAction(), menu)
        return menu

    def set_queue_status(self, text: str) -> None:
        """The queue's state in the status bar, e.g. "1 running · 2 queued" (``app.notifications.hook_up``)."""
        self._queue_label.setText(text)

    def show_status_message(self, text: str, timeout_ms: int = 10_000) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    def refresh_gpu_status(self) -> None:
        self._gpu_label.setText(gpu_status_text())

    def restore_state(self) -> None:
        """Window geometry, splitter and last page as the user left them (QSettings, not user preferences)."""
        geometry = self._settings.value("window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1280, 800)
        splitter = self._settings.value("window/splitter")
        if splitter is not None:
            self._splitter.restoreState(splitter)
        # The page's title, so that adding a page does not move it; an index (older settings) still works.
        page = str(cast(int | str, self._settings.value("window/page", 0)))
        titles = self.page_titles()
        index = titles.index(page) if page in titles else int(page) if page.isdigit() else 0
        self.show_page(min(index, max(self._nav.count() - 1, 0)))

    def closeEvent(self, event: QCloseEvent) -> None:
        self._settings.setValue("window/geometry", self.saveGeometry())
        self._settings.setValue("window/splitter", self._splitter.saveState())
        self._settings.setValue("window/page", self.page_titles()[self.current_page()] if self._nav.count() else 0)
        self._gpu_timer.stop()
        super().closeEvent(event)
