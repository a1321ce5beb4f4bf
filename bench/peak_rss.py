"""This process image's peak resident memory, for benches that run each phase in a child process.

VmHWM (Linux) counts from the process's own exec. ``ru_maxrss`` does not: Linux carries it over
from the parent through fork and exec, so a child started by a big parent would report the
parent's size. Elsewhere ``ru_maxrss`` is the best there is.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def peak_rss_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
