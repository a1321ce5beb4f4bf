"""Screenshots of every page with real data, for the README and docs (``make screenshots``).

    python -m app.screenshots [--out docs/screenshots] [--home DIR] [--steps 24]

It works in its own data folder (``--home``, kept between runs so a second run only takes
the pictures): imports SmolLM2, trains a real adapter on the sample support-triage data,
evaluates it against the base and exports it to GGUF, all through the queue and worker
processes as the GUI would. Then it opens the studio at 1280 x 800, shows each page with
that data, and saves ``QWidget.grab()`` of the whole window. A run from scratch takes a
few minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtCore import QCoreApplication

ROOT = Path(__file__).resolve().parent.parent
SIZE = (1280, 800)


def prepare(steps: int) -> None:
    """A queue with a finished training, evaluation and export, and one job waiting in line."""
    from backend.cli.demo import demo_spec
    from backend.core.task_specs import EvaluateSpec, ExportSpec
    from backend.jobs.queue import JobQueue
    from backend.jobs.runner import Runner
    from backend.models.store import import_default

    with JobQueue() as queue:
        trained = [job for job in queue.jobs("succeeded") if job.kind == "train"]
        if not trained:
            import_default()
            spec = demo_spec(steps)
            spec.name = "support-triage"
            spec.schedule.eval_every_steps = max(2, steps // 6)
            queue.add(spec)
            Runner(queue).run(once=True)
            trained = [job for job in queue.jobs("succeeded") if job.kind == "train"]
            if not trained:
                raise SystemExit("the training job did not succeed; see its worker.log in the jobs folder")
            adapter = trained[0].adapter_path
            queue.add(EvaluateSpec(name="support-triage-eval", adapter=adapter, max_prompts=8, max_new_tokens=48))
            queue.add(ExportSpec(name="support-triage", source=adapter, gguf_type="q8_0"))
            Runner(queue).run(once=True)
            waiting = demo_spec(steps)
            waiting.name = "support-triage-rank32"
            waiting.lora.r = 32
            queue.add(waiting)


def wait_until(app: QCoreApplication, condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)


def settle(app: QCoreApplication, seconds: float = 1.0) -> None:
    wait_until(app, lambda: False, seconds)


def shoot(out: Path, home: Path) -> list[Path]:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app import appearance
    from app.data_page import DataPage
    from app.jobs_page import JobsPage
    from app.main import build_window
    from app.session import Session
    from backend.core import paths
    from backend.jobs.queue import JobQueue
    from widgets.lazy_page import LazyPage

    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)  # widgets need a QApplication, not a QCoreApplication
    settings = QSettings(str(home / "screenshots.ini"), QSettings.Format.IniFormat)
    settings.clear()
    session = Session(home)
    window = build_window(settings, session)
    window.resize(*SIZE)
    window.show()
    pages = {title: window.page_widget(i) for i, title in enumerate(window.page_titles())}

    def page(title: str) -> object:
        widget = pages[title]
        return widget.page() if isinstance(widget, LazyPage) else widget

    with JobQueue() as queue:
        jobs = queue.jobs()
    train = next(job for job in jobs if job.kind == "train" and job.state == "succeeded")
    saved: list[Path] = []

    def save(title: str, name: str, settle_s: float = 1.5) -> None:
        window.show_page(window.page_titles().index(title))
        settle(app, settle_s)
        path = out / f"{name}.png"
        window.grab().save(str(path))
        saved.append(path)

    window.show_page(0)
    data = page("Data")
    assert isinstance(data, DataPage)
    data.open(paths.assets_dir() / "datasets" / "support_triage" / "train.jsonl")
    wait_until(app, lambda: not data.is_checking(), 60)
    settle(app, 0.5)
    wait_until(app, lambda: not data.is_measuring(), 180)
    save("Data", "1-data")
    save("Model & training", "2-model-training")
    jobs_page = page("Jobs")
    assert isinstance(jobs_page, JobsPage)
    jobs_page.select_job(train.id)
    save("Jobs", "3-jobs")
    save("Monitor", "4-monitor", settle_s=3.0)
    save("Evaluate", "5-evaluate", settle_s=3.0)
    save("Export", "6-export", settle_s=2.0)
    appearance.apply(app, "dark")
    save("Monitor", "7-monitor-dark", settle_s=2.0)
    window.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--home", type=Path, default=ROOT / ".screenshots-home")
    parser.add_argument("--steps", type=int, default=24, help="training steps of the pictured job")
    args = parser.parse_args()
    os.environ["LORA_STUDIO_HOME"] = str(args.home.resolve())
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    args.home.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    prepare(args.steps)
    for path in shoot(args.out, args.home.resolve()):
        print(path)


if __name__ == "__main__":
    main()
