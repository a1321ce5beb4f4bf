"""The worker command of ``bench/queue_soak.py``: execs the worker its job's plan names, with its fault armed.

    python bench/soak_worker.py JOB_DIR [--resume]

``soak.json`` in the job folder says ``{"worker": "real"}`` for the training worker
(``backend.jobs.worker``) on a tiny model; without it the stand-in (``backend.jobs.standin``) runs.
While ``soak-disk-full`` is in the folder (the soak deletes it when the "user" frees space) the
real worker runs with ``tests/faults/sitecustomize.py`` on its path: its own ``os.write`` meets a
full disk once its first checkpoint is saved, so the worker's real code (EventSink, its reserve,
``classify``) meets the fault. ``exec`` keeps the pid and start time, which the runner recorded.
Standard library only: it runs once per attempt, before the worker's own start-up.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOOK = REPO / "tests" / "faults"
PLAN = "soak.json"
DISK_FULL = "soak-disk-full"
"""Holds the bytes the disk has left after the first checkpoint."""
STANDIN_STEP_S = "0.02"


def main(argv: list[str]) -> None:
    job = Path(argv[0])
    plan = json.loads((job / PLAN).read_text()) if (job / PLAN).is_file() else {}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if plan.get("worker") == "real":
        command = ["-m", "backend.jobs.worker"]
        if (job / DISK_FULL).is_file():
            env["PYTHONPATH"] = os.pathsep.join([str(HOOK), str(REPO)])
            env["LORA_STUDIO_TEST_FREE_BYTES"] = (job / DISK_FULL).read_text().strip()
    else:
        command = ["-m", "backend.jobs.standin", "--step-s", STANDIN_STEP_S]
    os.execve(sys.executable, [sys.executable, *command, *argv], env)


if __name__ == "__main__":
    main(sys.argv[1:])
