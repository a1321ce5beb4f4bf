"""Start the studio: one QApplication, the error hooks, the main window."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from PySide6.QtCore import QSettings, SignalInstance
from PySide6.QtWidgets import QApplication, QWidget

from app import appearance, display_check
from app.errors import ErrorReporter, offer_previous_crash
from app.icons import studio_icon
from app.jobs_page import JobsPage
from app.main_window import MainWindow
from app.notifications import hook_up
from app.recent import RecentDatasets
from app.session import Session
from backend.core import paths
from widgets.lazy_page import LazyPage

if TYPE_CHECKING:
    from app.data_page import DataPage

PAGES = (
    (
        "Data",
        "data",
        "Drop a dataset file or folder to check it row by row, preview "
        "it as the model will see it, and measure it in tokens.",
    ),
    (
        "Model & training",
        "training",
        "Pick a base model, set the hyperparameters "
        "with plain-language help, and see whether the job fits your GPU before it starts.",
    ),
    (
        "Jobs",
        "jobs",
        "The queue: every job with its state, progress and log; cancel, pause, resume, retry, duplicate.",
    ),
    ("Monitor", "monitor", "Live loss, learning rate and GPU charts of the selected job."),
    (
        "Evaluate",
        "evaluate",
        "Compare the adapter with the base model on held-out data and your own prompts.",
    ),
    (
        "Adapters",
        "adapters",
        "Every registered adapter version: compare them, promote one to production through its "
        "release gates, roll back, tag, evaluate or export.",
    ),
    (
        "Export",
        "export",
        "Merge the adapter and export safetensors or GGUF for llama.cpp, Ollama and LM Studio.",
    ),
)


def build_window(settings: QSettings, session: Session | None = None) -> MainWindow:
    """The window with every page, wired through one Session (pages never hold each other).

    Only the Jobs page, which keeps the status bar's queue count, is built at once; the others
    are built (and their modules imported) the first time they are shown.
    """
    session = session or Session()
    session.keep_in(settings)  # the last session's dataset and job, before the pages that show them are built
    window = MainWindow(settings)
    jobs = JobsPage(session)

    def data() -> QWidget:
        from app.data_page import DataPage

        return DataPage(session, settings=settings)

    def training() -> QWidget:
        from app.training_page import TrainingPage

        return TrainingPage(session, settings=settings)

    def monitor() -> QWidget:
        from app.monitor_page import MonitorPage

        return MonitorPage(session)

    def evaluate() -> QWidget:
        from app.evaluate_page import EvaluatePage

        return EvaluatePage(session, settings=settings)

    def adapters() -> QWidget:
        from app.adapters_page import AdaptersPage

        return AdaptersPage(session)

    def export() -> QWidget:
        from app.export_page import ExportPage

        return ExportPage(session, settings=settings)

    pages: dict[str, QWidget] = {
        "Data": LazyPage(data),
        "Model & training": LazyPage(training),
        "Jobs": jobs,
        "Monitor": LazyPage(monitor),
        "Evaluate": LazyPage(evaluate),
        "Adapters": LazyPage(adapters),
        "Export": LazyPage(export),
    }
    for title, icon, tip in PAGES:
        window.add_page(title, pages[title], studio_icon(icon), tip)
    titles = window.page_titles()
    session.show_page.connect(lambda title: window.show_page(titles.index(title)))
    _wire_file_menu(window, cast(LazyPage, pages["Data"]), titles.index("Data"), settings)
    _wire_save_report(window, {titles.index(title): cast(LazyPage, pages[title]) for title in ("Data", "Evaluate")})
    job_menu = window.add_menu("&Job")
    actions = jobs.job_actions
    for group in (
        (actions.charts,),
        (actions.cancel, actions.pause, actions.resume),
        (actions.retry, actions.retry_checkpoint, actions.duplicate, actions.edit_copy),
        (actions.move_up, actions.move_down),
        (actions.open_folder, actions.delete),
    ):
        if not job_menu.isEmpty():
            job_menu.addSeparator()
        job_menu.addActions(list(group))
    hook_up(window, jobs)
    window.restore_state()
    return window


class ReportPage(Protocol):
    """A page that shows a report File ▸ Save report… can save: the Data page's dataset report, the Evaluate
    page's evaluation report."""

    report_changed: SignalInstance

    def has_report(self) -> bool: ...

    def save_report(self) -> None: ...


def _wire_file_menu(window: MainWindow, data: LazyPage, index: int, settings: QSettings) -> None:
    """File ▸ Open dataset… and Open recent act on the Data page, built when first needed."""

    def data_page() -> DataPage:
        window.show_page(index)
        return cast("DataPage", data.page())

    def open_recent(path: str) -> None:
        data_page().open(Path(path))

    def fill_recent() -> None:
        menu = window.recent_menu
        menu.clear()
        entries = RecentDatasets(settings).entries()
        names = Counter(entry.name for entry in entries)
        for entry in entries:
            # Two train.jsonl files are told apart by their folder.
            shown = entry.name if names[entry.name] == 1 else f"{entry.name} — {Path(entry.path).parent.name}"
            action = menu.addAction(shown.replace("&", "&&"))
            action.setToolTip(f"{entry.path}\n{entry.detail()}")
            action.setEnabled(entry.exists())
            action.triggered.connect(lambda _=False, path=entry.path: open_recent(path))
        if not entries:
            menu.addAction("No datasets opened yet").setEnabled(False)
        menu.setToolTipsVisible(True)

    window.open_action.triggered.connect(lambda: data_page().browse())
    window.recent_menu.aboutToShow.connect(fill_recent)
    fill_recent()


def _wire_save_report(window: MainWindow, pages: dict[int, LazyPage]) -> None:
    """File ▸ Save report… is enabled while the page shown shows a report (``ReportPage``), and saves that one."""

    def shown() -> ReportPage | None:
        lazy = pages.get(window.current_page())
        page = cast(ReportPage, lazy.page()) if lazy is not None and lazy.is_built() else None
        return page if page is not None and page.has_report() else None

    def follow() -> None:
        window.save_report_action.setEnabled(shown() is not None)

    def save() -> None:
        if (page := shown()) is not None:
            page.save_report()

    window.save_report_action.triggered.connect(save)
    window.page_changed.connect(follow)
    for lazy in pages.values():
        lazy.built.connect(lambda page: cast(ReportPage, page).report_changed.connect(follow))


def start(argv: list[str]) -> tuple[QApplication, MainWindow, ErrorReporter]:
    """Everything up to a shown window, without entering the event loop (the start-up benchmark uses this)."""
    display_check.warn_if_missing()  # Qt's xcb plugin aborts without a word on what to install
    app = QApplication(argv)
    app.setOrganizationName("LoRA Studio")
    app.setApplicationName("LoRA Studio")
    app.setWindowIcon(studio_icon("lora-studio"))
    settings = QSettings()
    appearance.install(app, settings)
    window = build_window(settings)
    crash_log = paths.data_home() / "logs" / "session.log"
    offer_previous_crash(window, crash_log)
    reporter = ErrorReporter(crash_log, window)
    reporter.install()
    window.show()
    return app, window, reporter


def main(argv: list[str] | None = None) -> int:
    app, _window, reporter = start(argv if argv is not None else sys.argv)
    try:
        return app.exec()
    finally:
        reporter.close()


if __name__ == "__main__":
    sys.exit(main())
