"""The start-up check for the system libraries Qt's xcb plugin needs: which are missing, what installs them,
and that it stays silent where Qt will not use X11."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.display_check import (
    XCB_LIBRARIES,
    install_advice,
    linker_cache,
    missing_libraries,
    warn_if_missing,
)

ALL = {library.soname for library in XCB_LIBRARIES}
X11 = {"DISPLAY": ":0"}


def test_only_the_libraries_the_linker_cannot_find_are_missing() -> None:
    assert missing_libraries(lambda: set(ALL)) == []
    missing = missing_libraries(lambda: ALL - {"libxcb-cursor.so.0", "libxcb-icccm.so.4"})
    assert [library.soname for library in missing] == ["libxcb-cursor.so.0", "libxcb-icccm.so.4"]
    assert missing_libraries(lambda: None) == [], "no ldconfig to ask: nothing is claimed missing"


def test_the_advice_names_the_libraries_and_one_command_per_distribution() -> None:
    missing = missing_libraries(lambda: ALL - {"libxcb-cursor.so.0", "libxcb-shape.so.0", "libxcb-xfixes.so.0"})
    advice = install_advice(missing)
    assert "libxcb-cursor.so.0, libxcb-shape.so.0, libxcb-xfixes.so.0" in advice
    assert "sudo apt install libxcb-cursor0 libxcb-shape0 libxcb-xfixes0\n" in advice
    assert "sudo dnf install xcb-util-cursor libxcb\n" in advice, "one package named once"
    assert "sudo pacman -S xcb-util-cursor libxcb\n" in advice


@pytest.mark.parametrize(
    ("env", "checked"),
    [
        ({**X11, "QT_QPA_PLATFORM": "xcb"}, True),
        (X11, True),  # Qt chooses xcb on an X display
        ({**X11, "WAYLAND_DISPLAY": "wayland-0"}, False),  # ... and Wayland in a Wayland session
        ({**X11, "QT_QPA_PLATFORM": "offscreen"}, False),
        ({**X11, "QT_QPA_PLATFORM": "wayland;xcb"}, False),
        ({"QT_QPA_PLATFORM": "xcb"}, False),  # no display: Qt says so itself
        ({}, False),
    ],
)
def test_the_check_runs_only_where_qt_starts_on_x11(env: dict[str, str], checked: bool) -> None:
    asked: list[bool] = []

    def known() -> set[str]:
        asked.append(True)
        return ALL - {"libxcb-cursor.so.0"}

    out = io.StringIO()
    missing = warn_if_missing(env, known, out)
    assert bool(asked) == checked and bool(missing) == checked
    assert ("sudo apt install libxcb-cursor0" in out.getvalue()) == checked


def test_the_linker_cache_lists_the_c_library() -> None:
    found = linker_cache()
    assert found is None or "libc.so.6" in found


def test_the_window_starts_offscreen_without_a_word_about_libraries(tmp_path: Path) -> None:
    """A real start of the window (offscreen, with an X display set) prints nothing about missing libraries."""
    code = "import sys; from app.main import start; app, window, reporter = start([sys.argv[0]]); reporter.close()"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "DISPLAY": ":97",
        "LORA_STUDIO_HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "needs system libraries" not in done.stderr
