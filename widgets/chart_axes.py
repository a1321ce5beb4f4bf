"""Axes for the live charts: whole training steps, time since the job started, values on a log scale.

pyqtgraph's default ticks suit continuous numbers; a step axis should never read "2.5", and
seconds read better as "1 h 30 min" than as "5400" (and, unlike "1:30", cannot be taken for
a time of day). On a log scale pyqtgraph labels only powers of ten and their multiples, to one
digit: a loss falling from 2.5 to 0.8 got a single label, "2".
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

# Tick intervals a person counts in, in seconds.
_DURATIONS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


class StepAxis(pg.AxisItem):
    """Optimizer steps: whole numbers with thousands separators."""

    def __init__(self) -> None:
        super().__init__("bottom")

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:
        levels = [level for level in super().tickSpacing(minVal, maxVal, size) if level[0] >= 1]
        return levels or [(1.0, 0.0)]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [f"{value * scale:,.0f}" for value in values]


class ElapsedAxis(pg.AxisItem):
    """Seconds since the job started, ticked at round durations: "45 s", "2 min", "1 h 30 min"."""

    def __init__(self) -> None:
        super().__init__("bottom")

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:
        span = abs(maxVal - minVal)
        if span == 0:
            return []
        # As pyqtgraph does: at least 2.25 intervals, more on a longer axis.
        widest = span / max(2.25, 2.25 * self._tickDensity * math.sqrt(size / 300))
        fitting = [d for d in _DURATIONS if d <= widest]
        major = float(fitting[-1]) if fitting else 1.0
        if widest > 2 * _DURATIONS[-1]:  # runs of days: whole days
            major = _DURATIONS[-1] * math.floor(widest / _DURATIONS[-1])
        return [(major, 0.0)]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [duration_text(value * scale) for value in values]


def duration_text(seconds: float) -> str:
    """A tick label: "0", "45 s", "1 min 15 s", "2 h", "1 d 6 h"."""
    total = round(seconds)
    if total == 0:
        return "0"
    sign = "−" if total < 0 else ""
    total = abs(total)
    parts = []
    for name, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size} {name}")
            total %= size
    return sign + " ".join(parts[:2])


class ValueAxis(pg.AxisItem):
    """The left axis; on a log scale spanning less than ten times, ticks at round values as on a linear one."""

    def __init__(self) -> None:
        super().__init__("left")

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, list[float]]]:
        if not self.logMode or abs(maxVal - minVal) >= 1:
            return super().tickValues(minVal, maxVal, size)
        low, high = sorted((10**minVal, 10**maxVal))
        values: list[float] = []
        for spacing, _offset in self.tickSpacing(low, high, size):  # the coarsest with three labels
            values = [v for v in np.arange(math.ceil(low / spacing) * spacing, high, spacing).tolist() if v > 0]
            if len(values) >= 3:
                break
        if not values:
            return []
        # pyqtgraph spaces labels by the tick spacing in axis (log) units: near the middle value, that is
        middle = values[len(values) // 2]
        return [(math.log10(1 + spacing / middle), np.log10(values).tolist())]

    def logTickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [f"{10**value * scale:.3g}" for value in values]
