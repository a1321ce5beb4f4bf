"""How long the studio takes from process start to a window on screen.

    python bench/window_start.py [--runs 7] [--out bench/results/window_start.md]

The bar (issue 6): under 1.5 s, median of several runs. Each run is a fresh Python
process that goes through ``app.main.start`` (the code ``lora-studio gui`` runs, up to
the event loop) and stops the clock when the window's native surface is exposed and
a first frame has been painted. The clock starts at the process's creation time as the
kernel recorded it, so interpreter start-up and every import are included. Each run
has its own empty data folder and settings, as on a first start.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BAR_S = 1.5

CHILD = """
import time
import psutil
born = psutil.Process().create_time()
import sys
from app.main import start
app, window, reporter = start([sys.argv[0]])
handle = window.windowHandle()
while handle is None or not handle.isExposed():
    app.processEvents()
    handle = window.windowHandle()
window.repaint()
app.processEvents()
print(f"{time.time() - born:.4f}")
reporter.close()
"""


def one_run() -> float:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "LORA_STUDIO_HOME": home, "XDG_CONFIG_HOME": home}
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        done = subprocess.run(
            [sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    one_run()  # the first run after a build pays for cold file caches; a user's second start does not
    times = [one_run() for _ in range(args.runs)]
    load = os.getloadavg()
    median = statistics.median(times)
    lines = [
        "# Window start-up",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, Qt platform {os.environ.get('QT_QPA_PLATFORM', 'offscreen')}",
        f"- load average (1 min, at the end): {load[0]:.2f}",
        f"- runs: {args.runs} (after one warm-up run)",
        "",
        "| measure | seconds |",
        "|---|---|",
        f"| median | {median:.3f} |",
        f"| min | {min(times):.3f} |",
        f"| max | {max(times):.3f} |",
        "",
        f"Bar: median under {BAR_S} s: {'met' if median < BAR_S else 'NOT met'}.",
        "",
        "All runs: " + ", ".join(f"{t:.3f}" for t in times),
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        args.out.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
