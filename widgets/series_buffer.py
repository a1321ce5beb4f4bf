"""The points of one chart series in growing numpy arrays, and their smoothed curve.

A chart receives points one at a time, 20 a second, for hours: appending to a Python list and
converting it on every redraw costs O(n) per frame, so points go into arrays that double when
full, and the plot is handed views of them. The smoothed curve is extended by the new points
only; it is recomputed in full only when the smoothing weight changes or history is rewritten.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_INITIAL_CAPACITY = 1024


class SeriesBuffer:
    """Points with increasing x. A point at or before the last x rewrites history from there on:
    a job resumed from a checkpoint logs those steps again, and the chart shows the new run."""

    def __init__(self) -> None:
        self._x = np.empty(_INITIAL_CAPACITY)
        self._y = np.empty(_INITIAL_CAPACITY)
        self._count = 0
        self._smoothed = np.empty(_INITIAL_CAPACITY)
        self._smoothed_count = 0  # how many points _smoothed covers
        self._ema = EmaState()

    def __len__(self) -> int:
        return self._count

    @property
    def x(self) -> np.ndarray:
        return self._x[: self._count]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self._count]

    def last(self) -> tuple[float, float] | None:
        if not self._count:
            return None
        return float(self._x[self._count - 1]), float(self._y[self._count - 1])

    def append(self, x: float, y: float | None) -> bool:
        """Add one point; a missing or non-finite value is skipped. Whether it was kept."""
        if y is None or not math.isfinite(y) or not math.isfinite(x):
            return False
        if self._count and x <= self._x[self._count - 1]:
            self._truncate(int(np.searchsorted(self.x, x, side="left")))
        if self._count == len(self._x):
            self._grow(self._count + 1)
        self._x[self._count] = x
        self._y[self._count] = y
        self._count += 1
        return True

    def extend(self, xs: Sequence[float] | np.ndarray, ys: Sequence[float | None] | np.ndarray) -> None:
        """Add many points, in order, as ``append`` would one by one."""
        x = np.asarray(xs, dtype=float)
        y = ys.astype(float) if isinstance(ys, np.ndarray) else np.array([np.nan if v is None else v for v in ys])
        if x.shape != y.shape:
            raise ValueError(f"{len(x)} x values but {len(y)} y values")
        keep = np.isfinite(x) & np.isfinite(y)
        x, y = x[keep], y[keep]
        if not len(x):
            return
        if np.all(np.diff(x) > 0):  # the usual case, done in one copy
            if self._count and x[0] <= self._x[self._count - 1]:
                self._truncate(int(np.searchsorted(self.x, x[0], side="left")))
            self._grow(self._count + len(x))
            self._x[self._count : self._count + len(x)] = x
            self._y[self._count : self._count + len(x)] = y
            self._count += len(x)
            return
        for one_x, one_y in zip(x.tolist(), y.tolist(), strict=True):
            self.append(one_x, one_y)

    def clear(self) -> None:
        self._truncate(0)

    def smoothed(self, weight: float) -> np.ndarray:
        """The debiased exponential moving average of y with ``weight`` (0 = none, as TensorBoard does)."""
        if weight != self._ema.weight:
            self._ema = EmaState(weight)
            self._smoothed_count = 0
        if self._smoothed_count < self._count:
            if len(self._smoothed) < self._count:
                self._smoothed = _grown(self._smoothed, self._smoothed_count, len(self._x))
            new = self._ema.feed(self._y[self._smoothed_count : self._count])
            self._smoothed[self._smoothed_count : self._count] = new
            self._smoothed_count = self._count
        return self._smoothed[: self._count]

    def _truncate(self, count: int) -> None:
        self._count = count
        if self._smoothed_count > count:  # the EMA state is past the cut: start it again
            self._smoothed_count = 0
            self._ema = EmaState(self._ema.weight)

    def _grow(self, needed: int) -> None:
        if needed <= len(self._x):
            return
        capacity = max(needed, 2 * len(self._x))
        self._x = _grown(self._x, self._count, capacity)
        self._y = _grown(self._y, self._count, capacity)


def _grown(array: np.ndarray, used: int, capacity: int) -> np.ndarray:
    bigger = np.empty(capacity)
    bigger[:used] = array[:used]
    return bigger


class EmaState:
    """TensorBoard's smoothing: an exponential moving average started at zero and debiased, so the
    first points are not pulled towards zero and a constant series stays exactly constant."""

    def __init__(self, weight: float = 0.0) -> None:
        if not 0.0 <= weight < 1.0:
            raise ValueError(f"smoothing weight must be in [0, 1), not {weight}")
        self.weight = weight
        self._accumulated = 0.0
        self._count = 0

    def feed(self, values: np.ndarray) -> np.ndarray:
        """The smoothed values of the next ``values``, carrying the average across calls.

        Vectorised: the values are cut into rows short enough that w^-k cannot overflow; inside a
        row, a[i] = w^(i+1)·a0 + (1-w)·w^i·cumsum(x[k]·w^-k), and only the row starts a0 are
        carried in a Python loop, one step per row.
        """
        w, count = self.weight, len(values)
        if w == 0.0 or not count:
            return values.astype(float)
        width = max(1, min(count, 4096, int(100 / -math.log10(w))))
        rows = -(-count // width)
        padded = np.zeros(rows * width)
        padded[:count] = values
        grid = padded.reshape(rows, width)
        powers = w ** np.arange(width)
        local = (1 - w) * powers * np.cumsum(grid / powers, axis=1)  # each row's average, started at 0
        starts = np.empty(rows)
        carried, row_decay = self._accumulated, w**width
        for row in range(rows):
            starts[row] = carried
            carried = row_decay * carried + local[row, -1]
        accumulated = (local + np.outer(starts, w * powers)).ravel()[:count]
        self._accumulated = float(accumulated[-1])
        # Debiasing divides by 1 - w^n, which is 1 to float precision once w^n < 1e-17.
        debias = np.ones(count)
        biased = max(0, min(count, int(17 / -math.log10(w)) + 1 - self._count))
        debias[:biased] = 1 - w ** np.arange(self._count + 1, self._count + biased + 1)
        self._count += count
        return accumulated / debias
