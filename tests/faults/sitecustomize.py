"""Injected into a worker's PYTHONPATH by tests/test_faults.py (and bench/soak_worker.py for the queue soak): a
disk that fills after the first checkpoint.

Once a ``checkpoint-*`` folder exists in the job, ``os.write`` to the job's ``events.jsonl`` has
``LORA_STUDIO_TEST_FREE_BYTES`` bytes left: the write that crosses it is cut short (as a full disk cuts it),
later ones fail with ENOSPC. Deleting the worker's ``space.reserve`` gives its size back, as on a real disk.
Only the worker process (``backend/jobs/worker.py``) is affected; without the variable nothing is.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys

_real_write, _real_unlink = os.write, os.unlink
_free: list[int] = []


def _target(fd: int) -> str | None:
    if "LORA_STUDIO_TEST_FREE_BYTES" not in os.environ or not sys.argv or not sys.argv[0].endswith("worker.py"):
        return None
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return path if path.endswith("/events.jsonl") else None


def _write(fd: int, data, /) -> int:  # type: ignore[no-untyped-def]
    path = _target(fd)
    if path is not None:
        if not _free:
            checkpoints = os.path.join(os.path.dirname(path), "checkpoints")
            if os.path.isdir(checkpoints) and any(n.startswith("checkpoint-") for n in os.listdir(checkpoints)):
                _free.append(int(os.environ["LORA_STUDIO_TEST_FREE_BYTES"]))
        if _free:
            data = bytes(data)
            if _free[0] <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            if len(data) > _free[0]:
                written = _real_write(fd, data[: _free[0]])
                _free[0] = 0
                return written
            _free[0] -= len(data)
    return _real_write(fd, data)


def _unlink(path, *args, **kwargs):  # type: ignore[no-untyped-def]
    if _free and str(path).endswith("space.reserve"):
        with contextlib.suppress(OSError):
            _free[0] += os.stat(path).st_size
    return _real_unlink(path, *args, **kwargs)


os.write = _write
os.unlink = _unlink
