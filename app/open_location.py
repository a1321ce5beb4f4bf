"""Open a folder or file with the desktop's own application, and say where it is when nothing can.

``QDesktopServices.openUrl`` returns False where the system has no launcher (no ``xdg-open``, a minimal
window manager, a remote session): Open folder and Open full report would then do nothing visible.
``open_location`` shows the path instead, in a small dialog with a Copy button, so the person can paste
it into a terminal or a file manager.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget


def open_location(path: Path, parent: QWidget) -> bool:
    """Open ``path`` (a folder or a file) with the desktop's application; True if one took it, else the
    path is shown in a ``PathDialog``."""
    if QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
        return True
    PathDialog(path, parent).open()
    return False


class PathDialog(QDialog):
    """ "No application could open it; here is where it is": the path, selectable, with Copy and Close."""

    def __init__(self, path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Where it is")
        self.setObjectName("pathDialog")
        kind = "folder" if path.is_dir() else "file"
        explanation = QLabel(
            f"This system has no application set up to open the {kind}. Its path is below: copy it into "
            "a file manager or a terminal.",
            wordWrap=True,
        )
        self.path = QLineEdit(str(path), readOnly=True)
        self.path.setObjectName("path")
        self.path.setMinimumWidth(self.fontMetrics().averageCharWidth() * min(max(len(str(path)), 40), 100))
        self.path.selectAll()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("&Copy path")
        self.copy_button.setDefault(True)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self._copy)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(explanation)
        layout.addWidget(self.path)
        layout.addWidget(buttons)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def _copy(self) -> None:
        QGuiApplication.clipboard().setText(self.path.text())
        self.copy_button.setText("Copied")
