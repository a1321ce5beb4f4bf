"""The ``lora-studio`` command: ``gui`` opens the studio; everything else is the headless CLI.

It lives in app/ because the backend may not import the GUI; Qt is imported only
when the window is really wanted, so headless commands start as fast as before.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["gui"]:
        from app.main import main as gui_main

        return gui_main([sys.argv[0], *args[1:]])
    from backend.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
