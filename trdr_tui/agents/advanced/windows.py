"""Rolling windows shared by the batch and the streaming path of the advanced agents.

Both paths reduce windows with the same functions: the batch path over the whole history, the
streaming path over the last `window` candles of the orchestrator's ring (`tail`), keeping only the
last value. One formula and one reduction order per window, so both paths agree bar by bar.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any

import numpy as np
import numpy.typing as npt

from trdr_tui.core.types import Candle

F64 = npt.NDArray[np.float64]
COLUMNS = ("open", "high", "low", "close", "volume")
Reducer = Callable[..., F64]


def roll(x: F64, window: int, reduce: Reducer, last: int | None = None) -> F64:
    """`reduce(x[i - window + 1 … i])` for every i, or for the `last` i only (shape (n,) or (last,));
    NaN before the first full window. `reduce` is a numpy reduction taking `axis=1` (np.max, np.min,
    np.sum, …)."""
    if last is not None:
        x = x[-(last + window - 1):]
    n = x.shape[0]
    out = np.full(n, np.nan)
    if n >= window:
        out[window - 1:] = reduce(np.lib.stride_tricks.sliding_window_view(x, window), axis=1)
    return out if last is None else out[-last:]


def tail(history: Sequence[Candle], window: int) -> dict[str, npt.NDArray[Any]] | None:
    """The last `window` candles' columns (shape (window,)) by name — open, high, low, close, volume
    as float64 and `ts` (bar open, ns) as int64 — or None while fewer exist."""
    m = len(history)
    if m < window:
        return None
    last = list(islice(history, m - window, m))
    rows = np.array([(c.open, c.high, c.low, c.close, c.volume) for c in last], dtype=np.float64)
    out: dict[str, npt.NDArray[Any]] = {name: np.ascontiguousarray(rows[:, j]) for j, name in enumerate(COLUMNS)}
    out["ts"] = np.array([c.ts for c in last], dtype=np.int64)
    return out
