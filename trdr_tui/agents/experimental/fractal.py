"""FractalMemoryAgent: long memory (the Hurst exponent) and analog forecasting.

Hurst exponent by rescaled-range analysis (Hurst 1951; Mandelbrot & Wallis 1969): split the last
`hurst_span` log returns into chunks of n = 8, 16, 32, 64, 128 returns; in each chunk R is the
range of the cumulative deviations from the chunk's mean and S its (population) standard deviation;
H is the least-squares slope of log mean(R/S) on log n. H ≈ 0.5: no memory (R/S has a known upward
small-sample bias, about +0.05 at these sizes, Anis & Lloyd 1976); H > 0.55 persistent (trends
continue); H < 0.45 anti-persistent (moves revert).

Analog forecasting (Lorenz 1969's method of analogues; Farmer & Sidorowich 1987 for time series):
the last `pattern` log returns, z-normalised, are compared by Euclidean distance with every earlier
pattern of the last `search` bars whose next `horizon` bars are already known; the `k` nearest give
the forecast: the mean of the log returns that followed them over `horizon` bars.

Vote: the forecast's side when |forecast| ≥ `min_move` and at least `min_agree` of the analogs moved
that way; confidence 0.35 + 0.35 × agreement, + 0.2 when memory backs it (persistent and forecast
with the recent drift, or anti-persistent and against it). Otherwise HOLD.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from trdr_tui.agents.experimental.base import F64, Scores, WindowAgent, window_view
from trdr_tui.agents.protocol import BUY, HOLD, SELL
from trdr_tui.core.types import Urgency


def rescaled_range(chunks: F64) -> F64:
    """R/S of each row of `chunks` (shape (c, n)): the range of the cumulative deviations from the row's
    mean over its population standard deviation; shape (c,), NaN for a constant row."""
    dev = np.cumsum(chunks - chunks.mean(axis=1, keepdims=True), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray((dev.max(axis=1) - dev.min(axis=1)) / chunks.std(axis=1), dtype=np.float64)


def hurst_rs(returns: F64, ends: npt.NDArray[np.int64], span: int, sizes: tuple[int, ...]) -> F64:
    """Hurst exponent by R/S for each window of `span` returns of the 1-D series `returns` ending just
    before each index in `ends` (shape (m,)). For each size n the window's last span // n chunks of n
    returns are used; H is the least-squares slope of ln mean(R/S) on ln n. Shape (m,)."""
    logs = []
    for n in sizes:
        c = span // n
        starts = ends[:, None] - c * n + n * np.arange(c)[None, :]  # (m, c)
        runs = window_view(returns, n)
        if ends.shape[0] * c > runs.shape[0]:  # many windows: every chunk start once, then gather
            rs = rescaled_range(runs)[starts]
        else:
            rs = rescaled_range(runs[starts.ravel()]).reshape(starts.shape)
        logs.append(np.log(rs.mean(axis=1)))
    y = np.stack(logs, axis=1)
    x = np.log(np.asarray(sizes, dtype=np.float64))
    xc = x - x.mean()
    return np.asarray(((y - y.mean(axis=1, keepdims=True)) * xc).sum(axis=1) / float(xc @ xc), dtype=np.float64)


def zpatterns(returns: F64, length: int) -> F64:
    """Every run of `length` returns, z-normalised (population σ; a flat run becomes zeros), shape (m, length)."""
    runs = window_view(returns, length)
    sd = runs.std(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, (runs - runs.mean(axis=1, keepdims=True)) / sd, 0.0)


def analog_dots(z: F64, m: int, last: int, cand: int) -> F64:
    """Dot products of each window's target pattern with its candidates, shape (m, cand): window j's
    pattern p is row j + p of `z` (shape (m - 1 + last + 1, L)), its target p = last, its candidates
    p = 0 … cand - 1. For z-normalised patterns of length L, distance² = 2L − 2·dot."""
    candidates = np.lib.stride_tricks.sliding_window_view(z[:m - 1 + cand], cand, axis=0)  # (m, L, cand), a view
    return np.asarray(np.einsum("ml,mlc->mc", z[last:last + m], candidates), dtype=np.float64)


class FractalMemoryAgent(WindowAgent):
    id = "fractal_memory"
    name = "Fractal memory"
    version = "1.0.0"
    description = "Hurst exponent (R/S) for persistence vs mean reversion, plus the nearest historical analogs"

    hurst_span: ClassVar[int] = 256
    sizes: ClassVar[tuple[int, ...]] = (8, 16, 32, 64, 128)
    pattern: ClassVar[int] = 16
    horizon: ClassVar[int] = 12
    search: ClassVar[int] = 240
    k: ClassVar[int] = 5
    min_move: ClassVar[float] = 0.004
    min_agree: ClassVar[float] = 0.8
    window = max(search, hurst_span) + 1

    def scores(self, cols: dict[str, npt.NDArray[Any]]) -> Scores:
        close = cols["close"]
        m, w = close.shape
        L, h, nr = self.pattern, self.horizon, w - 1
        # In a batch the windows are consecutive rows of one history: every per-return quantity is
        # computed once on the series; window j's returns are r[j : j + nr].
        logc = np.log(close[0] if m == 1 else np.concatenate((close[0], close[1:, -1])))
        r = np.diff(logc)
        j = np.arange(m)
        hurst = hurst_rs(r, j + nr, self.hurst_span, self.sizes)
        # Pattern p of window j is row j + p of z (its returns p … p+L-1). The target is the last
        # (p = nr - L); the candidates are those whose next h returns are known: p = 0 … nr - L - h.
        last, cand = nr - L, nr - L - h + 1
        dots = analog_dots(zpatterns(r, L), m, last, cand)
        nearest = np.argpartition(-dots, self.k - 1, axis=1)[:, :self.k]
        after = window_view(r, h).sum(axis=1)  # after[t]: the log return over returns t … t+h-1
        follow = after[j[:, None] + nearest + L]
        forecast = follow.mean(axis=1)
        agree = np.mean(np.sign(follow) == np.sign(forecast)[:, None], axis=1)
        drift = logc[j + nr] - logc[j + nr - L]
        persistent, anti = hurst > 0.55, hurst < 0.45
        backed = (persistent & (np.sign(forecast) == np.sign(drift))) | (anti & (np.sign(forecast) == -np.sign(drift)))
        on = (np.abs(forecast) >= self.min_move) & (agree >= self.min_agree)
        action = np.where(on & (forecast > 0), BUY, np.where(on & (forecast < 0), SELL, HOLD)).astype(np.int8)
        conf = np.where(action != HOLD, 0.35 + 0.35 * agree + np.where(backed, 0.2, 0.0), self.hold_confidence)
        trail = np.full(m, self.clamp_trail(self.context.base_trail))
        dist = np.sqrt(np.maximum(2.0 * L - 2.0 * dots.max(axis=1), 0.0))
        return {"action": action, "confidence": conf, "trail": trail, "hurst": hurst, "forecast": forecast,
                "agree": agree, "nearest": dist}

    def words(self, s: Scores, j: int) -> tuple[str, Urgency]:
        hv, f, agree = float(s["hurst"][j]), float(s["forecast"][j]), float(s["agree"][j])
        memory = "persistent" if hv > 0.55 else "anti-persistent" if hv < 0.45 else "no memory"
        facts = (f"Hurst {hv:.2f} ({memory}, R/S); {self.k} nearest analogs of the last {self.pattern} returns "
                 f"(closest at distance {float(s['nearest'][j]):.2f}) were followed by {f * 100:+.2f}% over "
                 f"{self.horizon} bars, {agree * 100:.0f}% of them that way")
        action = int(s["action"][j])
        if action == BUY:
            return f"analogs point up: {facts}", Urgency.NORMAL
        if action == SELL:
            return f"analogs point down: {facts}", Urgency.NORMAL
        return f"no clear analog: {facts}", Urgency.NORMAL

