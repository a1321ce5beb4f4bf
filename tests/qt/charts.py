"""Reading back what a chart holds, for the tests of the pages that draw them."""

from __future__ import annotations

import numpy as np


def drawn_x(curve: object) -> np.ndarray:
    """The x values a chart curve holds (before downsampling)."""
    x, _y = curve.getOriginalDataset()  # type: ignore[attr-defined]
    return np.array([]) if x is None else x
