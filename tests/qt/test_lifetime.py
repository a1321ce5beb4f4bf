"""Every widget can be made, shown and dropped again and again without upsetting Qt at exit.

A lambda that holds ``self``, connected to a child's signal, made dropping an IssueList
crash at interpreter exit ("shared QObject was deleted directly", then heap corruption);
such crashes happen after the test that caused them, so this runs in its own process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.mapping_trial import MappingTrier
from widgets.column_mapping import ColumnMappingDialog
from widgets.drop_zone import DropZone
from widgets.example_preview import ExamplePreview
from widgets.issue_list import Issue, IssueList
from widgets.drop_overlay import DropOverlay
from widgets.recent_list import RecentItem, RecentList
from widgets.token_histogram import TokenHistogram, TokenLengths
from widgets.token_panel import TokenPanel

for _ in range(8):
    issues = IssueList()
    issues.set_issues([Issue("error", "x", example=0)])
    preview = ExamplePreview()
    preview.set_examples([[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]])
    preview.select_example(0)
    histogram = TokenHistogram()
    histogram.set_lengths(TokenLengths(edges=[0, 1, 2], counts=[1, 1], p50=1, p90=2, p99=2))
    panel = TokenPanel()
    panel.set_models([("Tiny", "tiny")], "tiny")
    panel.show_error("no model", "lora-studio models import default")
    recent = RecentList()
    recent.set_items([RecentItem("/data/a.jsonl", "a.jsonl", "3 of 3 rows usable")])
    host = DropZone(extensions=(".jsonl",))
    DropOverlay(host, extensions=(".jsonl",))
    made = [issues, preview, histogram, host, ColumnMappingDialog(["a", "b"], [{"a": 1, "b": 2}], MappingTrier([{"a": 1, "b": 2}])), panel, recent]
    for widget in made:
        widget.show()
    app.processEvents()
    for widget in made:
        widget.close()
print("done")
"""


def test_widgets_are_dropped_without_crashing_qt() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "done"
    problems = [line for line in result.stderr.splitlines() if "propagateSizeHints" not in line]
    assert not problems, "\n".join(problems)
