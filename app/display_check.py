"""Which system libraries Qt's X11 (xcb) platform plugin needs and this machine lacks, with the command that
installs them on each common Linux distribution.

Without them Qt aborts at start with only "no Qt platform plugin could be initialized", which does not say
what to install. ``warn_if_missing`` runs before the ``QApplication`` is made and prints the packages first.
It imports neither Qt nor the backend, so ``lora-studio doctor`` (issue 21) can run the same check. The
libraries are the ones PySide6's ``libqxcb.so`` and ``libQt6XcbQpa.so`` link against that its wheel does not
ship (``readelf -d``); they are looked up in the dynamic linker's cache (``ldconfig -p``, read once) and in
``LD_LIBRARY_PATH``, without loading anything.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

LDCONFIG = ("/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig")


@dataclass(frozen=True)
class Library:
    soname: str
    apt: str
    """The Debian and Ubuntu package."""
    dnf: str
    """The Fedora package."""
    pacman: str
    """The Arch Linux package."""


XCB_LIBRARIES = (
    Library("libxcb-cursor.so.0", "libxcb-cursor0", "xcb-util-cursor", "xcb-util-cursor"),
    Library("libxcb-icccm.so.4", "libxcb-icccm4", "xcb-util-wm", "xcb-util-wm"),
    Library("libxcb-image.so.0", "libxcb-image0", "xcb-util-image", "xcb-util-image"),
    Library("libxcb-keysyms.so.1", "libxcb-keysyms1", "xcb-util-keysyms", "xcb-util-keysyms"),
    Library("libxcb-render-util.so.0", "libxcb-render-util0", "xcb-util-renderutil", "xcb-util-renderutil"),
    Library("libxcb-util.so.1", "libxcb-util1", "xcb-util", "xcb-util"),
    Library("libxkbcommon-x11.so.0", "libxkbcommon-x11-0", "libxkbcommon-x11", "libxkbcommon-x11"),
    Library("libxkbcommon.so.0", "libxkbcommon0", "libxkbcommon", "libxkbcommon"),
    Library("libxcb-randr.so.0", "libxcb-randr0", "libxcb", "libxcb"),
    Library("libxcb-render.so.0", "libxcb-render0", "libxcb", "libxcb"),
    Library("libxcb-shape.so.0", "libxcb-shape0", "libxcb", "libxcb"),
    Library("libxcb-shm.so.0", "libxcb-shm0", "libxcb", "libxcb"),
    Library("libxcb-sync.so.1", "libxcb-sync1", "libxcb", "libxcb"),
    Library("libxcb-xfixes.so.0", "libxcb-xfixes0", "libxcb", "libxcb"),
    Library("libxcb-xkb.so.1", "libxcb-xkb1", "libxcb", "libxcb"),
    Library("libxcb.so.1", "libxcb1", "libxcb", "libxcb"),
    Library("libX11-xcb.so.1", "libx11-xcb1", "libX11-xcb", "libx11"),
    Library("libX11.so.6", "libx11-6", "libX11", "libx11"),
    Library("libGL.so.1", "libgl1", "libglvnd-glx", "libglvnd"),
    Library("libEGL.so.1", "libegl1", "libglvnd-egl", "libglvnd"),
    Library("libfontconfig.so.1", "libfontconfig1", "fontconfig", "fontconfig"),
    Library("libfreetype.so.6", "libfreetype6", "freetype", "freetype2"),
    Library("libglib-2.0.so.0", "libglib2.0-0", "glib2", "glib2"),
)


def wants_xcb(env: Mapping[str, str]) -> bool:
    """Whether Qt will start on X11 here: Linux, an X display, and the platform xcb or left for Qt to choose
    (which is Wayland when a Wayland session is there too)."""
    platform = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if not sys.platform.startswith("linux") or not env.get("DISPLAY"):
        return False
    return platform == "xcb" or (not platform and not env.get("WAYLAND_DISPLAY"))


def linker_cache() -> set[str] | None:
    """The sonames the dynamic linker finds: its cache, and the folders in ``LD_LIBRARY_PATH``; None when
    ``ldconfig`` is not there to ask (then nothing can be said)."""
    for command in LDCONFIG:
        try:
            listing = subprocess.run([command, "-p"], capture_output=True, text=True, timeout=5, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        found = {line.split()[0] for line in listing.splitlines()[1:] if line.strip()}
        for folder in filter(None, os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep)):
            if Path(folder).is_dir():
                found |= {entry.name for entry in Path(folder).iterdir()}
        return found
    return None


def missing_libraries(known: Callable[[], set[str] | None] = linker_cache) -> list[Library]:
    """The libraries of ``XCB_LIBRARIES`` the linker cannot find; none when it cannot be asked."""
    found = known()
    if found is None:
        return []
    return [library for library in XCB_LIBRARIES if library.soname not in found]


def install_advice(missing: Iterable[Library]) -> str:
    """What is missing and the command that installs it, for Debian/Ubuntu, Fedora and Arch."""
    missing = list(missing)
    names = ", ".join(library.soname for library in missing)

    def packages(of: Callable[[Library], str]) -> str:
        return " ".join(dict.fromkeys(of(library) for library in missing))

    return (
        "LoRA Studio's window needs system libraries that Qt's X11 (xcb) plugin loads, and this system lacks "
        f"{names}.\nInstall them with your distribution's package manager:\n"
        f"  Debian, Ubuntu:  sudo apt install {packages(lambda library: library.apt)}\n"
        f"  Fedora:          sudo dnf install {packages(lambda library: library.dnf)}\n"
        f"  Arch Linux:      sudo pacman -S {packages(lambda library: library.pacman)}\n"
        "Then start LoRA Studio again. Everything also works without the window: run `lora-studio --help`."
    )


def warn_if_missing(
    env: Mapping[str, str] = os.environ,
    known: Callable[[], set[str] | None] = linker_cache,
    stream: TextIO | None = None,
) -> list[Library]:
    """Before Qt starts on X11: print what is missing and how to install it (Qt's own abort follows, if any)."""
    if not wants_xcb(env):
        return []
    missing = missing_libraries(known)
    if missing:
        print(install_advice(missing), file=stream or sys.stderr, flush=True)
    return missing
