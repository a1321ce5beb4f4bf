"""Screenshots of every page with real data, for the README and docs (``make screenshots``).

    python -m app.screenshots [--out docs/screenshots] [--home DIR] [--steps 24] [--walk NAME]

It works in its own data folder (``--home``, kept between runs so a second run only takes
the pictures): imports SmolLM2, trains a real adapter on the sample support-triage data,
evaluates it against the base and exports it to GGUF, all through the queue and worker
processes as the GUI would. Then it opens the studio at 1280 x 800, shows each page with
that data, and saves ``QWidget.grab()`` of the whole window. A run from scratch takes a
few minutes on a 2-core CPU.

Walk-throughs (``WALKS``) are a task done in the window, one picture a step, with the menus and
dialogs it opens drawn where they stand over the window. ``make screenshots`` takes them after
the pages; ``--walk NAME`` takes one alone, in a fresh window that needs none of the prepared jobs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtGui import QPixmap
    from PySide6.QtWidgets import QApplication, QWidget

    from app.main_window import MainWindow

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
    register_versions(steps)


def register_versions(steps: int) -> None:
    """support-triage v1 (the job above, evaluated and promoted) and v2 (rank 8, half the steps), for the Adapters
    page: each a real training job registered as it finished, and a real evaluation of its version folder."""
    from backend.cli.demo import demo_spec
    from backend.core.task_specs import EvaluateSpec
    from backend.jobs.queue import JobQueue
    from backend.jobs.runner import Runner
    from backend.registry.registry import Registry

    registry = Registry()
    if len(registry.versions("support-triage")) >= 2:
        return
    with JobQueue() as queue:
        held = [job.id for job in queue.jobs("queued")]
        for job_id in held:  # the job left waiting for the Jobs page waits on
            queue.pause(job_id)
        second = demo_spec(max(2, steps // 2))
        second.name = "support-triage"
        second.lora.r = 8
        queue.add(second)
        Runner(queue).run(once=True)
        for version in registry.versions("support-triage"):
            if not version.problem and not registry.get("support-triage", version.version).evaluations:
                name = f"support-triage-v{version.version}-evaluation"
                queue.add(EvaluateSpec(name=name, adapter=version.folder, max_prompts=8, max_new_tokens=48))
        Runner(queue).run(once=True)
        for job_id in held:
            queue.resume(job_id)
    if registry.state("support-triage").production is None:
        registry.promote("support-triage", 1, reason="the first version that answers in the triage format")


def wait_until(app: QCoreApplication, condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)


def settle(app: QCoreApplication, seconds: float = 1.0) -> None:
    wait_until(app, lambda: False, seconds)


def grab_with_popups(window: QWidget) -> QPixmap:
    """The window as shown, with the menus and dialogs open over it painted where they stand: ``grab`` of the
    window alone leaves them out, as they are windows of their own."""
    from PySide6.QtGui import QPainter
    from PySide6.QtWidgets import QApplication, QDialog, QMenu

    picture = window.grab()
    origin = window.mapToGlobal(window.rect().topLeft())
    painter = QPainter(picture)
    for popup in QApplication.topLevelWidgets():
        if popup is not window and popup.isVisible() and isinstance(popup, QMenu | QDialog):
            painter.drawPixmap(popup.pos() - origin, popup.grab())
    painter.end()
    return picture


def walk_file_open(app: QApplication, window: MainWindow, out: Path) -> list[Path]:
    """File ▸ Open: the File menu with its keys, Open recent, the dataset dialog Ctrl+O opens, the dataset opened."""
    from PySide6.QtCore import QPoint, QTimer
    from PySide6.QtWidgets import QApplication, QFileDialog, QMenu

    from app.data_page import DataPage
    from app.recent import RecentDataset, RecentDatasets
    from backend.core import paths
    from widgets.lazy_page import LazyPage

    datasets = paths.assets_dir() / "datasets"
    sample = datasets / "support_triage" / "train.jsonl"
    recent = RecentDatasets(window.settings)
    for path, rows in ((datasets / "concise_answers" / "train.jsonl", 0), (sample, 360)):
        if recent.get(path) is None:
            recent.remember(RecentDataset(str(path), "messages", "OpenAI/ChatML messages", rows=rows, accepted=rows))
    saved: list[Path] = []

    def save(name: str) -> None:
        settle(app, 0.5)
        path = out / f"walk-file-open-{name}.png"
        grab_with_popups(window).save(str(path))
        saved.append(path)

    window.show_page(window.page_titles().index("Jobs"))
    settle(app, 1.0)
    bar = window.menuBar()
    file_menu = bar.actions()[0].menu()
    assert isinstance(file_menu, QMenu)
    file_menu.popup(bar.mapToGlobal(bar.actionGeometry(file_menu.menuAction()).bottomLeft()))
    file_menu.setActiveAction(window.open_action)
    save("1-menu")
    file_menu.setActiveAction(window.recent_menu.menuAction())
    anchor = file_menu.actionGeometry(window.recent_menu.menuAction()).topRight()
    window.recent_menu.popup(file_menu.mapToGlobal(anchor + QPoint(-4, 0)))
    save("2-recent")
    window.recent_menu.hide()
    file_menu.hide()

    def in_the_dialog() -> None:
        wait_until(app, lambda: isinstance(QApplication.activeModalWidget(), QFileDialog), 10)
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, QFileDialog), "Ctrl+O opened no file dialog"
        dialog.setDirectory(str(sample.parent))
        dialog.selectFile(str(sample))
        save("3-dialog")
        dialog.accept()

    QTimer.singleShot(0, in_the_dialog)
    window.open_action.trigger()  # what Ctrl+O does: the dialog runs until in_the_dialog accepts it
    data = window.page_widget(window.page_titles().index("Data"))
    page = data.page() if isinstance(data, LazyPage) else data
    assert isinstance(page, DataPage)
    wait_until(app, lambda: page.report is not None and not page.is_checking(), 60)
    save("4-opened")
    return saved


def hold_others() -> list[int]:
    """Pause the queued jobs of the prepared pictures (the one left waiting), so that a walk's runner runs only the
    walk's own jobs; their ids, for ``release``."""
    from backend.jobs.queue import JobQueue

    with JobQueue() as queue:
        held = [job.id for job in queue.jobs("queued") if not job.held]
        for job_id in held:
            queue.pause(job_id)
    return held


def release(held: list[int]) -> None:
    from backend.jobs.queue import JobQueue

    with JobQueue() as queue:
        for job_id in held:
            queue.resume(job_id)


STANDIN_STEP_S = 1.0
"""The stand-in worker's pace in the cancel walk-through: slow enough to picture the job while it stops."""


def walk_cancel_running(app: QApplication, window: MainWindow, out: Path) -> list[Path]:
    """Select a running job and cancel it: a real runner (a thread of this process) starts the stand-in worker
    (``backend.jobs.standin``: the job protocol, checkpoints and all, without training), so the job truly runs."""
    import threading

    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from app.job_model import NAME
    from app.jobs_page import JobsPage
    from backend.cli.demo import demo_spec
    from backend.jobs.job import Job
    from backend.jobs.queue import JobQueue
    from backend.jobs.runner import Runner, RunnerSettings

    spec = demo_spec(40)
    spec.name = "support-triage-walk"
    spec.schedule.save_every_steps = 4
    held = hold_others()  # the stand-in runs only the walk's own job
    with JobQueue() as queue:
        added = queue.add(spec)
    if added.job is None:
        raise SystemExit(f"the walk's job was not queued: {[check.message for check in added.checks]}")
    job_id = added.job.id
    standin = (sys.executable, "-m", "backend.jobs.standin", "--step-s", str(STANDIN_STEP_S))

    def run_queue() -> None:
        with JobQueue() as own:  # a connection of the runner's own thread
            Runner(own, RunnerSettings(worker_command=standin)).run(once=True)

    runner = threading.Thread(target=run_queue, name="walk-runner")
    runner.start()
    saved: list[Path] = []

    def save(name: str, settle_s: float = 0.3) -> None:
        settle(app, settle_s)
        path = out / f"walk-cancel-running-{name}.png"
        grab_with_popups(window).save(str(path))
        saved.append(path)

    page = window.page_widget(window.page_titles().index("Jobs"))
    assert isinstance(page, JobsPage)
    window.show_page(window.page_titles().index("Jobs"))

    def shown() -> Job:
        return page.model.jobs()[page.model.row_of(job_id) or 0]

    wait_until(app, lambda: page.model.row_of(job_id) is not None and (shown().step or 0) >= 5, 60)
    row = page.model.row_of(job_id)
    assert row is not None, "the walk's job never showed"
    rect = page.table.visualRect(page.model.index(row, NAME))
    QTest.mouseClick(page.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())  # as a person selects it
    wait_until(app, lambda: page.job_actions.cancel.isEnabled(), 5)
    save("1-selected")
    menu = page.job_actions.context_menu(page)  # what a right-click on the row opens
    menu.popup(page.table.viewport().mapToGlobal(rect.center()))
    menu.setActiveAction(page.job_actions.cancel)
    save("2-menu")
    menu.hide()
    page.job_actions.cancel.trigger()  # the page shows the request at once; the worker stops within its step
    assert shown().label == "cancelling", shown().label
    save("3-cancelling", settle_s=0.0)
    wait_until(app, lambda: shown().state == "cancelled", 60)
    save("4-cancelled")
    runner.join(60)
    with JobQueue() as queue:
        queue.delete(job_id)  # a later run's pictures of the pages do not show it
    release(held)
    return saved


def tiny_adapter(folder: Path) -> Path:
    """The tests' tiny Llama and an adapter of it (``tests.tiny_models``, ``tests.adapters``), made in a child
    process so that torch stays out of this one; kept in ``folder`` for the next run."""
    adapter = folder / "adapter"
    if not adapter.is_dir():
        code = (
            "import sys; from pathlib import Path; from tests.tiny_models import build_tiny_model; "
            "from tests.adapters import make_adapter; home = Path(sys.argv[1]); "
            "make_adapter(build_tiny_model('llama', home / 'tiny-llama'), home / 'adapter', r=4, lora_alpha=8)"
        )
        subprocess.run([sys.executable, "-c", code, str(folder)], cwd=ROOT, check=True, capture_output=True)
    return adapter


def walk_export_after_merge(app: QApplication, window: MainWindow, out: Path) -> list[Path]:
    """Export after merge: a merged model made on the Export page, then a GGUF of the same adapter, which the page
    says (and the job shows) is converted from that finished merge instead of merging again. The jobs run in the
    runner the window starts, with the real worker, on the tests' tiny Llama: seconds, not minutes."""
    import os
    import signal

    from app.export_page import ExportPage
    from app.jobs_page import JobsPage
    from backend.core import paths
    from backend.jobs.queue import JobQueue
    from widgets.lazy_page import LazyPage

    adapter = tiny_adapter(paths.data_home() / "walk-export")
    held = hold_others()
    with JobQueue() as queue:
        runners_before = {runner.pid for runner in queue.runners()}
    titles = window.page_titles()
    window.show_page(titles.index("Export"))
    shown = window.page_widget(titles.index("Export"))
    page = shown.page() if isinstance(shown, LazyPage) else shown
    jobs = window.page_widget(titles.index("Jobs"))
    assert isinstance(page, ExportPage) and isinstance(jobs, JobsPage)
    saved: list[Path] = []

    def save(name: str) -> None:
        settle(app, 0.5)
        path = out / f"walk-export-after-merge-{name}.png"
        window.grab().save(str(path))
        saved.append(path)

    def run_and_wait() -> int:
        before = {job.id for job in jobs.model.jobs()}
        page.export()  # queued: the window starts a runner, as for any job
        wait_until(app, lambda: len(jobs.model.jobs()) > len(before), 10)
        (job_id,) = {job.id for job in jobs.model.jobs()} - before
        with JobQueue() as queue:  # as the runner records it: the page shows an end a few seconds sooner
            wait_until(app, lambda: getattr(queue.get(job_id), "state", "") not in ("queued", "running"), 300)
            job = queue.get(job_id)
        assert job is not None
        if job.state != "succeeded":
            raise SystemExit(f"the walk's {job.kind} job {job.state}: {job.message}")
        return job_id

    page.picker.select(str(adapter))
    page.gguf.setChecked(False)
    page.merged.setChecked(True)
    save("1-merge")
    merge_id = run_and_wait()
    save("2-merged")
    page.merged.setChecked(False)
    page.gguf.setChecked(True)
    page.gguf_type.setCurrentIndex(page.gguf_type.findData("f16"))
    save("3-gguf-from-the-merge")
    export_id = run_and_wait()
    save("4-exported")
    jobs.select_job(export_id)
    window.show_page(titles.index("Jobs"))
    save("5-export-job")
    with JobQueue() as queue:
        for runner in queue.runners():
            if runner.alive and runner.pid not in runners_before:
                os.kill(runner.pid, signal.SIGTERM)  # the runner the walk's jobs started; it stops between jobs
        for job_id in (export_id, merge_id):  # a later run's pictures of the pages do not show them
            queue.delete(job_id)
    release(held)
    return saved


WALKS: dict[str, Callable[[QApplication, MainWindow, Path], list[Path]]] = {
    "file-open": walk_file_open,
    "cancel-running": walk_cancel_running,
    "export-after-merge": walk_export_after_merge,
}
"""Each walk-through by name: it drives the window as a person would and returns the pictures it saved."""


def open_window(home: Path) -> tuple[QApplication, MainWindow]:
    """The studio's window at the pictures' size, on the data in ``home``, with settings of its own."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.main import build_window
    from app.session import Session

    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)  # widgets need a QApplication, not a QCoreApplication
    settings = QSettings(str(home / "screenshots.ini"), QSettings.Format.IniFormat)
    settings.clear()
    window = build_window(settings, Session(home))
    window.resize(*SIZE)
    window.show()
    return app, window


def shoot(out: Path, home: Path) -> list[Path]:
    from app import appearance
    from app.adapters_page import AdaptersPage
    from app.data_page import DataPage
    from app.jobs_page import JobsPage
    from backend.core import paths
    from backend.jobs.queue import JobQueue
    from widgets.lazy_page import LazyPage

    app, window = open_window(home)
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
    adapters = page("Adapters")
    assert isinstance(adapters, AdaptersPage)
    window.show_page(window.page_titles().index("Adapters"))
    wait_until(app, lambda: adapters.model.rowCount() >= 2, 10)
    adapters.select(("support-triage", 1))
    save("Adapters", "8-adapters")
    adapters.select(("support-triage", 1), ("support-triage", 2))
    save("Adapters", "9-adapters-compare")
    appearance.apply(app, "dark")
    save("Monitor", "7-monitor-dark", settle_s=2.0)
    appearance.apply(app, "system")
    for walk in WALKS.values():
        saved += walk(app, window, out)
    window.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--home", type=Path, default=ROOT / ".screenshots-home")
    parser.add_argument("--steps", type=int, default=24, help="training steps of the pictured job")
    parser.add_argument("--walk", choices=sorted(WALKS), help="take this walk-through alone, without the pages")
    args = parser.parse_args()
    os.environ["LORA_STUDIO_HOME"] = str(args.home.resolve())
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    args.home.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.walk:
        app, window = open_window(args.home.resolve())
        saved = WALKS[args.walk](app, window, args.out)
        window.close()
    else:
        prepare(args.steps)
        saved = shoot(args.out, args.home.resolve())
    for path in saved:
        print(path)


if __name__ == "__main__":
    main()
