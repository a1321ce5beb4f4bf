"""A column mapping tried on a file's first rows the way the import reads them, for the mapping dialog.

The dialog (``widgets.column_mapping``) knows nothing of the backend; it asks ``MappingTrier`` what a
mapping makes of the rows: each mapped cell's text as the importer reads that column (or why it cannot,
"'input' is an object, not text"), and how many rows the import accepts, imported in memory exactly as
an import with the mapping would (``backend.data.scan.Trial``: detection, the field audit, the
normalizer, duplicates). Its OK stays disabled while no row imports. The columns whose
values are not text are named up front, and a file in a layout that trains with another objective
(preference pairs, KTO labels) gets the check's own reason and advice (``backend.data.refusal``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from backend.data.formats import UNSUPPORTED, detect
from backend.data.refusal import Refusal
from backend.data.rules import Reject
from backend.data.scan import ImportOptions, Trial
from backend.data.turns import optional, required
from widgets.column_mapping import PREVIEW_ROWS, MappingTrial, PreviewCell

_REQUIRED = ("instruction", "response")


class MappingTrier:
    """Tries mappings on ``rows`` (the file's first rows, ``{column: value}``); the first ``PREVIEW_ROWS``
    are previewed."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.rows = [dict(row) for row in rows]
        self._detection = detect(self.rows)

    def __call__(self, mapping: Mapping[str, str]) -> MappingTrial:
        shown = self.rows[:PREVIEW_ROWS]
        cells = [{role: _cell(row, role, column) for role, column in mapping.items()} for row in shown]
        if not all(role in mapping for role in _REQUIRED):
            return MappingTrial(cells, 0, len(self.rows))
        trial = Trial(ImportOptions(format="columns", columns=dict(mapping))).add(self.rows)
        refused = next((p for p in trial.report.problems.kept if p.excluded), None)
        reason = ""
        if refused is not None:
            reason = f"row {refused.row}: {refused.message}" if refused.row else refused.message
        return MappingTrial(cells, trial.imported, len(self.rows), reason)

    def column_notes(self, columns: Sequence[str]) -> dict[str, str]:
        """The columns whose values are not text (objects, lists, true/false), each with what they hold."""
        notes = {}
        for column in columns:
            for row in self.rows[:PREVIEW_ROWS]:
                try:
                    optional(row, (column,))
                except Reject as exc:
                    notes[column] = exc.message.replace(f"'{column}' is ", "", 1)
                    break
        return notes

    def layout_advice(self) -> str:
        """Why a file in a layout that trains with another objective (preference pairs, KTO labels) needs that
        objective rather than a mapping, with the check's advice tried on these rows; empty for other files."""
        if self._detection.format not in UNSUPPORTED:
            return ""
        refusal = Refusal(self._detection)
        refusal.add(self.rows)
        return refusal.message


def _cell(row: Mapping[str, Any], role: str, column: str) -> PreviewCell:
    """What ``column`` gives the import as ``role``: its text, or why it can't (the importer's own words)."""
    try:
        text = required(dict(row), (column,)) if role in _REQUIRED else optional(dict(row), (column,))
    except Reject as exc:
        return PreviewCell(exc.message, problem=True)
    return PreviewCell(text or "")
