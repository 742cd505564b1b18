"""Wilder's average true range over whole arrays, shared by the vectorized indicators
(`market/indicators.py`) and the grid's ATR-scaled spacing (`trading/grid.py`).

Source: J. Welles Wilder Jr., *New Concepts in Technical Trading Systems* (1978), ch. "Volatility":
true range = max(high − low, |high − previous close|, |low − previous close|) (the first bar's is its
high − low); ATR is seeded with the mean of the first `period` true ranges, then smoothed as
`ATR[k] = (ATR[k−1]·(period − 1) + TR[k]) / period` (an EMA with `a = 1 / period`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from trdr_tui.core.smoothing import recursive_filter

F64 = npt.NDArray[np.float64]

__all__ = ["atr", "true_range"]


def true_range(high: F64, low: F64, close: F64) -> F64:
    """Each bar's true range (price units), shape (n,)."""
    tr = high - low
    if tr.shape[0] > 1:
        prev = close[:-1]
        tr[1:] = np.maximum(tr[1:], np.maximum(np.abs(high[1:] - prev), np.abs(low[1:] - prev)))
    return tr


def atr(high: F64, low: F64, close: F64, period: int = 14) -> F64:
    """Wilder's average true range (price units), shape (n,); NaN until `period` bars."""
    tr = true_range(high, low, close)
    n = tr.shape[0]
    out = np.full(n, np.nan, dtype=np.float64)
    if n < period:
        return out
    seed = float(np.mean(tr[:period]))
    out[period - 1] = seed
    out[period:] = recursive_filter(tr[period:], 1.0 / period, seed)
    return out
