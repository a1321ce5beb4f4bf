"""One OpenMP setting for every process of ours that runs torch on the CPU.

Threads that spin-wait at OpenMP barriers make a busy machine (a GUI, a second
job, a browser) up to ten times slower on the CPU, because a spinning thread holds
the core its partner needs; passive waiting costs nothing measurable on an idle
machine. OpenMP reads the variable once, when torch is first imported, so call
this before that.
"""

from __future__ import annotations

import os


def prefer_passive_waits() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
