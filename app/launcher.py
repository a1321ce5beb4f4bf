"""The ``lora-studio`` command: the studio window, or the headless CLI when given a command.

``lora-studio`` alone (or ``lora-studio gui``) opens the window; ``lora-studio COMMAND …``
is the CLI of ``backend/cli/main.py``. It lives in app/ because the backend may not import the
GUI; Qt is imported only when the window is really wanted, so headless commands start as
fast as before, and on a machine with no display the bare command prints the CLI's help.
"""

from __future__ import annotations

import os
import sys


def has_display() -> bool:
    """Whether a window can open: always on Windows and macOS; on Linux, an X or Wayland server or a Qt platform."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["gui"] or (not args and has_display()):
        from app.main import main as gui_main

        return gui_main([sys.argv[0], *args[1:]])
    from backend.cli.main import main as cli_main

    if not args:
        print("No display found, so the studio window cannot open here; the command line does everything:\n",
              file=sys.stderr, flush=True)  # fmt: skip
    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
