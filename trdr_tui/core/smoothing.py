"""Exponential smoothing over whole arrays, shared by the vectorized indicators (`market/indicators.py`)
and the grid's trend gate (`trading/grid.py`)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

__all__ = ["recursive_filter"]


def recursive_filter(x: F64, alpha: float, y0: float) -> F64:
    """y[k] = (1 - alpha)·y[k-1] + alpha·x[k] with y[-1] = y0, without a Python loop per element.

    A doubling scan: after the step with shift s every y[k] holds the first 2s terms of its sum, so
    log2(n) whole-array steps finish it. Exact up to float rounding; no BLAS (no thread contention).
    """
    m = x.shape[0]
    if m == 0:
        return np.empty(0, dtype=np.float64)
    d = 1.0 - alpha
    y = alpha * x
    y[0] += d * y0
    shift = 1
    while shift < m:
        decay = d**shift
        if decay == 0.0:
            break  # older terms no longer change any value
        y[shift:] += decay * y[:-shift]  # the product is a new array: every add reads the previous step
        shift *= 2
    return y
