"""Deleting a job from the Jobs page: the question, which says what goes with the folder and what stays.

Deleting cannot be undone, so the question counts the checkpoints and sizes the folder first, and
names an adapter exported outside the folder, which is kept.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtWidgets import QAbstractButton, QMessageBox, QWidget

from backend.jobs.job import Job
from widgets.units import format_bytes


def folder_contents(job: Job) -> list[str]:
    """What deleting ``job`` removes, for the confirmation: "3 checkpoints (1.2 GiB)", ..."""
    root, layout = job.folder, job.layout
    if not root.is_dir():
        return []

    def size(path: Path) -> int:
        if path.is_file():
            return path.stat().st_size
        total = 0
        for folder, _dirs, files in os.walk(path):
            for name in files:
                try:
                    total += os.stat(os.path.join(folder, name)).st_size
                except OSError:
                    continue
        return total

    parts = []
    checkpoints = [p for p in layout.checkpoints.iterdir() if p.is_dir()] if layout.checkpoints.is_dir() else []
    if checkpoints:
        count = len(checkpoints)
        parts.append(f"{count} checkpoint{'s' if count > 1 else ''} ({format_bytes(size(layout.checkpoints))})")
    if layout.adapter.is_dir():
        parts.append(f"the trained adapter ({format_bytes(size(layout.adapter))})")
    if layout.events.is_file() or layout.log.is_file():
        parts.append("the charts' events and the worker's log")
    parts.append(f"{format_bytes(size(root))} in all")
    return parts


def delete_question(job: Job, parent: QWidget) -> tuple[QMessageBox, QAbstractButton]:
    """The (unopened) question whether to delete ``job`` and its folder, and its Delete button."""
    box = QMessageBox(
        QMessageBox.Icon.Warning,
        "Delete job",
        f"Delete job {job.id} “{job.name}” and its folder?",
        QMessageBox.StandardButton.Cancel,
        parent,
    )
    contents = folder_contents(job)
    lines = [f"This removes {job.folder}"]
    if contents:
        lines.append("with " + ", ".join(contents) + ".")
    else:
        lines.append("(the folder is already gone; only the queue's entry is removed).")
    if job.adapter_path and not Path(job.adapter_path).is_relative_to(job.folder):
        lines.append(f"Its adapter in {job.adapter_path} is outside the folder and is kept.")
    lines.append("This cannot be undone.")
    box.setInformativeText("\n".join(lines))
    delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.setEscapeButton(QMessageBox.StandardButton.Cancel)
    return box, delete
