"""Answers side by side, with the words one column dropped or added against the first marked.

Takes plain data: a title and a list of ``(op, text)`` runs per column, where ``op`` is
``equal``, ``delete`` (shown struck out) or ``insert`` (shown highlighted). Colours come
from the palette, so the view reads the same in light and dark themes.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from PySide6.QtCore import QEvent
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QTextBrowser, QWidget

from widgets.palette import is_dark, mix, negative_color

Run = tuple[str, str]


@dataclass(frozen=True)
class Column:
    title: str
    runs: list[Run]


class SideBySideDiff(QTextBrowser):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self._prompt = ""
        self._reference: str | None = None
        self._columns: list[Column] = []
        self._names = ("the base model", "the adapter")
        self._render()

    def set_comparison(
        self,
        prompt: str,
        columns: list[Column],
        reference: str | None = None,
        names: tuple[str, str] = ("the base model", "the adapter"),
    ) -> None:
        """``names``: whose words the struck and the marked runs are, for the legend."""
        self._prompt, self._columns, self._reference, self._names = prompt, columns, reference, names
        self._render()

    def clear_comparison(self) -> None:
        self.set_comparison("", [])

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._render()
        super().changeEvent(event)

    def _render(self) -> None:
        palette = self.palette()
        if not self._columns:
            self.setHtml(f"<p style='color:{palette.color(QPalette.ColorRole.PlaceholderText).name()}'>"
                         "Choose a prompt to see the answers side by side.</p>")  # fmt: skip
            return
        base = palette.color(QPalette.ColorRole.Base)
        removed = mix(base, negative_color(palette), 0.35).name()
        added = mix(base, palette.color(QPalette.ColorRole.Highlight), 0.45 if is_dark(palette) else 0.3).name()
        width = 100 // len(self._columns)
        heads = "".join(f"<th width='{width}%' align='left'>{html.escape(c.title)}</th>" for c in self._columns)
        cells = "".join(
            f"<td width='{width}%' valign='top'>{_runs_html(c.runs, removed, added)}</td>" for c in self._columns
        )
        reference = f"<p><b>Reference answer</b><br>{_text(self._reference)}</p>" if self._reference is not None else ""
        self.setHtml(
            f"<p><b>Prompt</b><br>{_text(self._prompt)}</p>{reference}"
            f"<table width='100%' cellspacing='0' cellpadding='6' border='0'><tr>{heads}</tr><tr>{cells}</tr></table>"
            f"<p style='color:{palette.color(QPalette.ColorRole.PlaceholderText).name()}'>"
            f"<span style='background:{removed}'><s>struck</s></span>: words only "
            f"{html.escape(self._names[0])} wrote; <span style='background:{added}'>marked</span>: words only "
            f"{html.escape(self._names[1])} wrote.</p>"
        )


def _text(value: str) -> str:
    return html.escape(value).replace("\n", "<br>")


def _runs_html(runs: list[Run], removed: str, added: str) -> str:
    parts = []
    for op, text in runs:
        if op == "delete":
            parts.append(f"<span style='background:{removed}'><s>{_text(text)}</s></span>")
        elif op == "insert":
            parts.append(f"<span style='background:{added}'>{_text(text)}</span>")
        else:
            parts.append(_text(text))
    return "".join(parts)
