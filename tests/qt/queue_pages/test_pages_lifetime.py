"""The Jobs and Monitor pages can be made, fed, shown and dropped again and again without upsetting Qt at exit.

Crashes of this kind happen after the test that caused them, so this runs in its own process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import sys
from pathlib import Path
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.jobs_page import JobsPage
from app.monitor_page import MonitorPage
from app.notifications import JobNotifier
from app.session import Session
from backend.jobs.queue import JobQueue
from backend.core.events import EventSink, Metric, Progress
from tests.queue_support import add

home = Path(sys.argv[1])
queue = JobQueue(home / "queue.sqlite3", home / "jobs")
job = add(queue, home, "kept")
sink = EventSink(job.layout.events, None)
for step in range(1, 200):
    sink.emit(Progress(step=step, total_steps=200, epoch=0, elapsed_s=step))
    sink.emit(Metric(step=step, split="train", values={"loss": 1.0 / step}))
sink.close()
for _ in range(6):
    session = Session(home)
    jobs, monitor = JobsPage(session, start_runner=lambda q: None), MonitorPage(session)
    notifier = JobNotifier(parent=jobs)
    jobs.jobs_changed.connect(notifier.update)
    for page in (jobs, monitor):
        page.show()
    jobs.select_job(job.id)
    for _ in range(20):
        app.processEvents()
    box = jobs.delete_selected()
    box.close()
    for page in (jobs, monitor):
        page.close()
    app.processEvents()
print("done")
"""


def test_pages_are_dropped_without_crashing_qt(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LORA_STUDIO_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "done"
    problems = [line for line in result.stderr.splitlines() if "propagateSizeHints" not in line]
    assert not problems, "\n".join(problems)
