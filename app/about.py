"""The About box: what is installed, asked of the backend so the GUI never imports torch."""

from __future__ import annotations

import json
import sys

import PySide6
from PySide6.QtCore import QProcess, qVersion
from PySide6.QtWidgets import QMessageBox, QWidget


class AboutBox(QMessageBox):
    """Shows Qt's versions at once and the ML stack's when the backend answers (a second or two)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(QMessageBox.Icon.Information, "About LoRA Studio", "", QMessageBox.StandardButton.Ok, parent)
        self._rows: dict[str, str] = {"Qt": qVersion(), "PySide6": PySide6.__version__}
        self._process = QProcess(self)
        self._process.finished.connect(self._backend_answered)
        self._process.start(sys.executable, ["-m", "backend.cli", "version", "--json"])
        self._rows["torch, CUDA, driver"] = "asking the backend…"
        self._render()

    def _backend_answered(self) -> None:
        raw = bytes(self._process.readAllStandardOutput().data()).decode(errors="replace")
        self._rows.pop("torch, CUDA, driver", None)
        try:
            versions = json.loads(raw)
        except json.JSONDecodeError:
            self._rows["backend"] = "did not answer; run 'lora-studio version' in a terminal"
        else:
            self._rows.update({k: str(v) for k, v in versions.items()})
        self._render()

    def _render(self) -> None:
        rows = "".join(f"<tr><td><b>{name}</b></td><td>{value}</td></tr>" for name, value in self._rows.items())
        self.setText(
            f"<h3>LoRA Studio</h3><p>Fine-tune open LLMs on your own data.</p><table cellspacing='6'>{rows}</table>"
        )
