"""``lora-studio`` alone opens the window where there is a display, and prints the CLI's help where there is none."""

from __future__ import annotations

import os
import subprocess
import sys

from app.launcher import has_display


def test_without_a_display_the_bare_command_explains_and_shows_the_cli() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run(
        [sys.executable, "-m", "app.launcher"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert "No display found" in done.stderr and "usage: lora-studio" in done.stdout
    assert "PySide6" not in done.stderr


def test_a_chosen_qt_platform_counts_as_a_display(monkeypatch) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert has_display()
    monkeypatch.delenv("QT_QPA_PLATFORM")
    assert has_display() == (not sys.platform.startswith("linux"))
