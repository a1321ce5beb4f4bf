"""``python -m backend.cli``: the command line, as the GUI and the queue's runner start it."""

import sys

from backend.cli.main import main

sys.exit(main())
