"""Start the studio: one QApplication, the error hooks, the main window."""

from __future__ import annotations

import sys

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QWidget

from app import appearance
from app.errors import ErrorReporter, offer_previous_crash
from app.icons import studio_icon
from app.jobs_page import JobsPage
from app.main_window import MainWindow
from app.notifications import hook_up
from app.session import Session
from backend.core import paths
from widgets.lazy_page import LazyPage

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

    def export() -> QWidget:
        from app.export_page import ExportPage

        return ExportPage(session, settings=settings)

    pages: dict[str, QWidget] = {
        "Data": LazyPage(data),
        "Model & training": LazyPage(training),
        "Jobs": jobs,
        "Monitor": LazyPage(monitor),
        "Evaluate": LazyPage(evaluate),
        "Export": LazyPage(export),
    }
    for title, icon, tip in PAGES:
        window.add_page(title, pages[title], studio_icon(icon), tip)
    titles = window.page_titles()
    session.show_page.connect(lambda title: window.show_page(titles.index(title)))
    hook_up(window, jobs)
    window.restore_state()
    return window


def start(argv: list[str]) -> tuple[QApplication, MainWindow, ErrorReporter]:
    """Everything up to a shown window, without entering the event loop (the start-up benchmark uses this)."""
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
