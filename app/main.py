"""Start the studio: one QApplication, the error hooks, the main window."""

from __future__ import annotations

import sys

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QStyle

from app.data_page import DataPage
from app.errors import ErrorReporter, offer_previous_crash
from app.main_window import MainWindow
from app.pages import ComingPage
from backend import paths

PAGES = (
    (
        "Data",
        QStyle.StandardPixmap.SP_DirOpenIcon,
        "Drop a dataset file or folder to check it row by row, preview "
        "it as the model will see it, and measure it in tokens.",
    ),
    (
        "Model & training",
        QStyle.StandardPixmap.SP_ComputerIcon,
        "Pick a base model, set the hyperparameters "
        "with plain-language help, and see whether the job fits your GPU before it starts.",
    ),
    (
        "Jobs",
        QStyle.StandardPixmap.SP_FileDialogDetailedView,
        "The queue: every job with its state, progress and log; cancel, pause, resume, retry, duplicate.",
    ),
    ("Monitor", QStyle.StandardPixmap.SP_DesktopIcon, "Live loss, learning rate and GPU charts of the selected job."),
    (
        "Evaluate",
        QStyle.StandardPixmap.SP_DialogApplyButton,
        "Compare the adapter with the base model on held-out data and your own prompts.",
    ),
    (
        "Export",
        QStyle.StandardPixmap.SP_DialogSaveButton,
        "Merge the adapter and export safetensors or GGUF for llama.cpp, Ollama and LM Studio.",
    ),
)


def build_window(settings: QSettings) -> MainWindow:
    window = MainWindow(settings)
    for title, icon, text in PAGES:
        window.add_page(title, DataPage() if title == "Data" else ComingPage(title, text), icon)
    window.restore_state()
    return window


def main(argv: list[str] | None = None) -> int:
    app = QApplication(argv if argv is not None else sys.argv)
    app.setOrganizationName("LoRA Studio")
    app.setApplicationName("LoRA Studio")
    settings = QSettings()
    window = build_window(settings)
    crash_log = paths.data_home() / "logs" / "session.log"
    offer_previous_crash(window, crash_log)
    reporter = ErrorReporter(crash_log, window)
    reporter.install()
    window.show()
    try:
        return app.exec()
    finally:
        reporter.close()


if __name__ == "__main__":
    sys.exit(main())
