"""Light and dark: an explicit choice repaints the whole application and is remembered."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QMenu

from app import appearance
from widgets.palette import is_dark


def test_dark_and_light_are_applied_and_remembered(qapp: QApplication, tmp_path: Path) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    appearance.install(qapp, settings)
    menu = QMenu()
    group = appearance.add_menu(menu, settings)
    actions = {action.data(): action for action in group.actions()}
    assert actions["system"].isChecked(), "the system's choice is the default"
    try:
        actions["dark"].trigger()
        assert is_dark(qapp.palette()) and qapp.style().name() == "fusion"
        assert appearance.saved_mode(settings) == "dark"
        assert qapp.palette().color(QPalette.ColorRole.Text).lightness() > 200

        actions["light"].trigger()
        assert not is_dark(qapp.palette()) and appearance.saved_mode(settings) == "light"
    finally:
        actions["system"].trigger()
    assert appearance.saved_mode(settings) == "system"
