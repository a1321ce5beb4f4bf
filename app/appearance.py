"""Light and dark palettes: follow the system by default, or keep the one the user picked.

With "system", Qt's platform theme supplies the palette and switches it when the
desktop does. An explicit choice uses the Fusion style, the one style that draws
any palette the same way on every platform, with a palette made here. Widgets
take their colours from the palette (``widgets.palette``), so a switch is only a
repaint.
"""

from __future__ import annotations

from typing import Literal

from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction, QActionGroup, QColor, QPalette
from PySide6.QtWidgets import QApplication, QMenu

Mode = Literal["system", "light", "dark"]
MODES: dict[Mode, str] = {"system": "Follow the &system", "light": "&Light", "dark": "&Dark"}
_KEY = "appearance/mode"
_NATIVE_STYLE = "loraStudioNativeStyle"


def dark_palette() -> QPalette:
    """A neutral dark palette with enough contrast for long reading (text on base above 12:1)."""
    colors = {
        QPalette.ColorRole.Window: "#2b2d30",
        QPalette.ColorRole.WindowText: "#e6e6e6",
        QPalette.ColorRole.Base: "#1e1f22",
        QPalette.ColorRole.AlternateBase: "#26282b",
        QPalette.ColorRole.ToolTipBase: "#3c3f41",
        QPalette.ColorRole.ToolTipText: "#e6e6e6",
        QPalette.ColorRole.PlaceholderText: "#8c8f94",
        QPalette.ColorRole.Text: "#e6e6e6",
        QPalette.ColorRole.Button: "#35373b",
        QPalette.ColorRole.ButtonText: "#e6e6e6",
        QPalette.ColorRole.BrightText: "#ff6b6b",
        QPalette.ColorRole.Light: "#4a4d52",
        QPalette.ColorRole.Midlight: "#3f4246",
        QPalette.ColorRole.Mid: "#2f3134",
        QPalette.ColorRole.Dark: "#1a1b1e",
        QPalette.ColorRole.Shadow: "#0d0d0f",
        QPalette.ColorRole.Highlight: "#3574f0",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#6ea8ff",
        QPalette.ColorRole.LinkVisited: "#b18cff",
    }
    palette = QPalette()
    for role, color in colors.items():
        palette.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6f7277"))
    return palette


def apply(app: QApplication, mode: Mode) -> None:
    if mode == "system":
        app.setStyle(app.property(_NATIVE_STYLE) or app.style().name())
        app.setPalette(app.style().standardPalette())
        return
    app.setStyle("Fusion")
    app.setPalette(dark_palette() if mode == "dark" else app.style().standardPalette())


def saved_mode(settings: QSettings) -> Mode:
    value = settings.value(_KEY, "system")
    return value if value in MODES else "system"


def install(app: QApplication, settings: QSettings) -> None:
    """Remember the platform's own style (to return to it), then apply the saved mode."""
    if app.property(_NATIVE_STYLE) is None:
        app.setProperty(_NATIVE_STYLE, app.style().name())
    mode = saved_mode(settings)
    if mode != "system":
        apply(app, mode)


def add_menu(menu: QMenu, settings: QSettings) -> QActionGroup:
    """The Appearance submenu: picking a mode applies it at once and remembers it."""
    submenu = menu.addMenu("&Appearance")
    group = QActionGroup(submenu)
    current = saved_mode(settings)
    for mode, label in MODES.items():
        action = submenu.addAction(label)
        action.setCheckable(True)
        action.setChecked(mode == current)
        action.setData(mode)
        group.addAction(action)

    def chosen(action: QAction) -> None:
        mode = action.data()
        settings.setValue(_KEY, mode)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply(app, mode)

    group.triggered.connect(chosen)
    return group
