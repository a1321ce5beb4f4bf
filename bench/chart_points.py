"""How long the GUI event loop stalls while live charts take 100,000 points at 20 Hz.

    python bench/chart_points.py [--seconds 10] [--out bench/results/chart_points.md]

The bar (issue 6): the event loop never blocks for more than 50 ms while a job streams
metrics at 20 Hz. A probe timer asks to fire every 10 ms; how late each tick comes is the
time the loop was busy elsewhere (redraws, appends). Two runs, under the offscreen platform,
which paints into an in-memory backing store as a window does:

- fill: one loss chart (train loss smoothed, eval loss) takes 100,000 points in 20 Hz
  batches of 500, growing from empty to 100,000;
- stream: a Monitor page of six charts, each already holding 100,000 points, takes one point
  per chart at 20 Hz, as a long job does.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pyqtgraph
import PySide6
from PySide6.QtCore import QEventLoop, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication

from bench.lag_probe import PROBE_MS, LagProbe
from widgets.chart_grid import ChartGrid
from widgets.live_chart import LiveChart, Series, SeriesStyle, XAxis
from widgets.units import GIB, GIBIBYTES, LEARNING_RATE, PERCENT, TOKENS_PER_SECOND

FEED_MS = 50  # 20 Hz
POINTS = 100_000
BAR_MS = 50.0


def run(feed: Callable[[int], bool], seconds: float) -> dict:
    """Call ``feed(tick)`` every FEED_MS until it returns False or ``seconds`` pass; the probe's lags."""
    probe = LagProbe()
    feeder = QTimer(interval=FEED_MS, timerType=Qt.TimerType.PreciseTimer)
    loop = QEventLoop()
    ticks = [0]
    started = time.perf_counter()
    summary: dict = {}

    def on_feed() -> None:
        if not feed(ticks[0]) or time.perf_counter() - started > seconds:
            feeder.stop()
            summary.update(probe.stop())
            QTimer.singleShot(200, loop.quit)  # the last redraws finish before the charts close
            return
        ticks[0] += 1

    feeder.timeout.connect(on_feed)
    probe.start()
    feeder.start()
    loop.exec()
    return {**summary, "feeds": ticks[0]}


def settle() -> None:
    """Let a window just shown finish its first layout and paints, which are not what is measured."""
    loop = QEventLoop()
    QTimer.singleShot(500, loop.quit)
    loop.exec()


def idle(seconds: float) -> dict:
    """The probe alone: how late the timer fires on this machine with nothing to draw."""
    result = run(lambda tick: True, seconds)
    result["points"] = 0
    return result


def loss_chart() -> LiveChart:
    return LiveChart(
        "Loss",
        [Series("train", "Train loss"), Series("eval", "Eval loss", SeriesStyle.POINTS)],
        smoothing=True,
        log_scale_toggle=True,
    )


def fill(seconds: float) -> dict:
    chart = loss_chart()
    chart.resize(900, 420)
    chart.show()
    settle()
    batch = POINTS // round(seconds * 1000 / FEED_MS)
    rng = np.random.default_rng(0)

    def feed(tick: int) -> bool:
        start = tick * batch
        if start >= POINTS:
            return False
        steps = np.arange(start, start + batch, dtype=float)
        chart.extend("train", steps, 0.8 + 2 * np.exp(-steps / 20_000) + rng.normal(0, 0.05, batch))
        chart.append("eval", steps[-1], 0.9 + 2 * np.exp(-steps[-1] / 20_000))
        return True

    result = run(feed, seconds + 5)
    result["points"] = len(chart.raw_curve("train").getOriginalDataset()[0])
    chart.close()
    return result


def monitor_page() -> tuple[ChartGrid, list[tuple[LiveChart, str, Callable[[np.ndarray], np.ndarray]]]]:
    grid = ChartGrid(columns=2)
    rng = np.random.default_rng(1)
    loss = grid.add(loss_chart())
    rate = grid.add(LiveChart("Learning rate", [Series("lr", "Learning rate")], unit=LEARNING_RATE))
    norm = grid.add(LiveChart("Gradient norm", [Series("grad", "Gradient norm")], smoothing=True))
    speed = grid.add(LiveChart("Speed", [Series("tps", "Tokens/s")], unit=TOKENS_PER_SECOND, smoothing=True))
    memory = grid.add(
        LiveChart(
            "GPU memory",
            [Series("used", "Used"), Series("total", "Total", SeriesStyle.LIMIT)],
            unit=GIBIBYTES,
            x_axis=XAxis.ELAPSED,
        )
    )
    use = grid.add(LiveChart("GPU use", [Series("gpu", "GPU 0")], unit=PERCENT, x_axis=XAxis.ELAPSED, y_range=(0, 100)))
    series = [
        (loss, "train", lambda x: 0.8 + 2 * np.exp(-x / 20_000) + rng.normal(0, 0.05, len(x))),
        (rate, "lr", lambda x: 2e-4 * np.cos(x / POINTS * np.pi / 2)),
        (norm, "grad", lambda x: 1 + rng.gamma(2, 0.2, len(x))),
        (speed, "tps", lambda x: 2500 + rng.normal(0, 80, len(x))),
        (memory, "used", lambda x: 14 * GIB + rng.normal(0, 0.05 * GIB, len(x))),
        (memory, "total", lambda x: np.full(len(x), 24 * GIB)),
        (use, "gpu", lambda x: np.clip(93 + rng.normal(0, 4, len(x)), 0, 100)),
    ]
    return grid, series


def stream(seconds: float) -> dict:
    grid, series = monitor_page()
    x = np.arange(POINTS, dtype=float)
    for chart, key, values in series:
        chart.extend(key, x, values(x))
    grid.resize(1400, 1000)
    grid.show()
    settle()

    def feed(tick: int) -> bool:
        step = np.array([POINTS + tick], dtype=float)
        for chart, key, values in series:
            chart.append(key, float(step[0]), float(values(step)[0]))
        return True

    result = run(feed, seconds)
    result["points"] = sum(len(chart.raw_curve(key).getOriginalDataset()[0]) for chart, key, _ in series)
    grid.close()
    return result


def machine() -> list[str]:
    """Lines saying where and with what the numbers were taken."""
    info = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "unknown CPU")
    qpa = os.environ["QT_QPA_PLATFORM"]
    return [
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"Machine: {platform.platform()}, {cpu}, {os.cpu_count()} CPUs; Qt platform `{qpa}`",
        f"Python {platform.python_version()}, PySide6 {PySide6.__version__}, pyqtgraph {pyqtgraph.__version__}, "
        f"numpy {np.__version__}",
    ]


def write_report(path: Path, results: dict[str, dict], loads: tuple[tuple[float, ...], tuple[float, ...]]) -> None:
    before, after = (" ".join(f"{v:.2f}" for v in load) for load in loads)
    lines = [
        "# Live charts: event-loop lag at 20 Hz with 100,000 points",
        "",
        "`python bench/chart_points.py`; its docstring describes the two runs.",
        "",
        *(f"- {line}" for line in machine()),
        f"- Load average (1, 5, 15 min) before: {before}; after: {after}",
        "",
        f"Lag: how late a timer asking to fire every {PROBE_MS} ms fires (wall clock, so it includes time the OS",
        "gave to other processes). Busy: the CPU time this process used between two probe ticks, the lag an",
        f"otherwise idle machine would show. Bar: the loop never blocks for more than {BAR_MS:.0f} ms. Times in ms.",
        "",
        "| run | points held | 20 Hz feeds | CPU (of one core) | lag p50 | lag p99 | lag max | busy p99 | busy max |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['points']:,} | {r['feeds']} | {r['cpu']:.0%} | {r['p50']:.1f} | {r['p99']:.1f} | "
            f"{r['max']:.1f} | {r['busy_p99']:.1f} | {r['busy_max']:.1f} |"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def binding_drops_none() -> bool:
    """Whether this PySide6 drops a reference to None on each call that returns nothing.

    PySide6 6.12.0 does on Python 3.11 (where None is not yet immortal): after some 16,000 such
    calls, a few seconds of drawing, the process aborts with "deallocating None".
    """
    before = sys.getrefcount(None)
    holder = QObject()
    for _ in range(1000):
        holder.setObjectName("probe")
    return sys.getrefcount(None) < before - 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each run feeds points")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "chart_points.md")
    args = parser.parse_args()
    _app = QApplication(sys.argv[:1])  # alive until the runs are done
    if binding_drops_none():
        sys.exit(
            f"PySide6 {PySide6.__version__} on Python {platform.python_version()} drops a reference to None on "
            "every call that returns nothing, and would abort this benchmark within seconds. "
            "Use PySide6 < 6.12 or Python >= 3.12."
        )
    before = os.getloadavg()
    results = {
        "idle (probe alone)": idle(args.seconds),
        "fill": fill(args.seconds),
        "stream": stream(args.seconds),
    }
    after = os.getloadavg()
    for name, r in results.items():
        lag = f"lag p99 {r['p99']:.1f}, max {r['max']:.1f}; busy p99 {r['busy_p99']:.1f}, max {r['busy_max']:.1f}"
        print(f"{name}: {r['points']:,} points, CPU {r['cpu']:.0%}; {lag} ms")
    write_report(args.out, results, (before, after))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
