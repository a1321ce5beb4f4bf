"""The Jobs page's table of jobs: one row a job, the progress drawn as a bar, queued jobs moved by dragging.

``job_table`` makes the view over a ``JobTableModel``: single selection, a drop takes a job id
(the model accepts nothing else), a context menu asked for, and columns sized to what they hold,
the message taking the rest.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QAbstractItemView, QHeaderView

from app.job_model import CREATED, ENDED, ETA, ID, KIND, NAME, PROGRESS, STATE, JobTableModel, ProgressDelegate
from widgets.placeholder_view import PlaceholderTableView


def job_table(model: JobTableModel, metrics: QFontMetrics) -> PlaceholderTableView:
    """A table view over ``model`` with its columns sized for text measured by ``metrics``."""
    table = PlaceholderTableView("No jobs yet. A job you start from the Model & training page waits here for its turn.")
    table.setModel(model)
    table.setItemDelegateForColumn(PROGRESS, ProgressDelegate(table))
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setDragEnabled(True)
    table.setAcceptDrops(True)
    table.setDropIndicatorShown(True)
    # DragDrop, not InternalMove, which takes drops only from a drag this view started; the model
    # accepts nothing but a job id anyway (and tests can drop one).
    table.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
    table.setDragDropOverwriteMode(False)
    table.setDefaultDropAction(Qt.DropAction.MoveAction)
    table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    table.setAccessibleName("Jobs")
    _size_columns(table, metrics)
    return table


def _size_columns(table: PlaceholderTableView, metrics: QFontMetrics) -> None:
    header = table.horizontalHeader()
    pad = metrics.height()
    icon = table.iconSize().width() if table.iconSize().isValid() else pad
    widths = {
        ID: metrics.horizontalAdvance("0000") + pad,
        NAME: metrics.horizontalAdvance("support-triage-7b-r64") + pad,
        KIND: metrics.horizontalAdvance("evaluate") + pad,
        STATE: metrics.horizontalAdvance("queued, runs next") + icon + 2 * pad,
        PROGRESS: metrics.horizontalAdvance("10,000 / 10,000") + 2 * pad,
        ETA: metrics.horizontalAdvance("10 h 59 min") + pad,
        CREATED: metrics.horizontalAdvance("Yesterday 00:00") + pad,
        ENDED: metrics.horizontalAdvance("Yesterday 00:00") + pad,
    }
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    for column, width in widths.items():
        header.resizeSection(column, width)
    header.setStretchLastSection(True)  # the message takes what is left
    header.setMinimumSectionSize(metrics.horizontalAdvance("ID") + pad)
