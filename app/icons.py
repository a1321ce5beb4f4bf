"""The studio's icons: SVGs in assets/icons, sharp at any scale, readable on a selected row too."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from backend.core import paths

_SELECTED_SIZES = (16, 20, 24, 32, 40, 48, 64)
_COLOR = re.compile(r"#[0-9a-fA-F]{6}\b")


def icon_path(name: str) -> Path:
    return paths.assets_dir() / "icons" / f"{name}.svg"


def studio_icon(name: str) -> QIcon:
    """The SVG as drawn, and drawn all in white for a selected row, where the highlight is the accent colour."""
    path = icon_path(name)
    icon = QIcon(str(path))
    renderer = QSvgRenderer(QByteArray(_COLOR.sub("#ffffff", path.read_text(encoding="utf-8")).encode()))
    for size in _SELECTED_SIZES:
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        renderer.render(painter)
        painter.end()
        icon.addPixmap(pixmap, QIcon.Mode.Selected)
    return icon
