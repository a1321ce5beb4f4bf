"""The event-loop lag probe both GUI benchmarks use (chart_points.py, event_loop_lag.py).

A timer asks to fire every ``PROBE_MS``; how late each tick comes is the time the loop was
busy elsewhere, or, on a busy machine, the time the OS gave other processes. The CPU this
process used between two ticks is how long the loop itself was busy: the lag an otherwise
idle machine would show.
"""

from __future__ import annotations

import statistics
import time

from PySide6.QtCore import QElapsedTimer, Qt, QTimer

PROBE_MS = 10


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class LagProbe:
    def __init__(self) -> None:
        self.lags: list[float] = []
        self.busy: list[float] = []
        self._clock = QElapsedTimer()
        self._timer = QTimer(interval=PROBE_MS, timerType=Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._clock.start()
        self._last, self._last_cpu = 0, time.process_time_ns()
        self._cpu_start, self._wall_start = time.process_time(), time.perf_counter()
        self._timer.start()

    def stop(self) -> dict:
        """Stop and summarise, in ms: lag p50/p99/max, busy p99/max; CPU as a share of one core."""
        self._timer.stop()
        seconds = time.perf_counter() - self._wall_start
        lags, busy = sorted(self.lags[1:]), sorted(self.busy[1:])
        return {
            "seconds": seconds,
            "ticks": len(lags),
            "p50": statistics.median(lags),
            "p99": percentile(lags, 0.99),
            "max": lags[-1],
            "busy_p99": percentile(busy, 0.99),
            "busy_max": busy[-1],
            "cpu": (time.process_time() - self._cpu_start) / seconds,
        }

    def _tick(self) -> None:
        now, cpu = self._clock.nsecsElapsed(), time.process_time_ns()
        self.lags.append(max(0.0, (now - self._last) / 1e6 - PROBE_MS))
        self.busy.append((cpu - self._last_cpu) / 1e6)
        self._last, self._last_cpu = now, cpu
