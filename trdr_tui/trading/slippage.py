"""The slippage minimizer for trailing orders (PRD §3.4 `SlippageMinimizer`), off by default
(`[slippage] enabled`).

A trailing order's distance is set when it is placed (`OrderManager.tune_trail`, asked by the policy):

1. volatility and liquidity (PRD `calculateOptimalTrailDistance`):
   trail × (1 + σ / `volatility_reference`) × (2 − liquidity score), where σ is the standard deviation
   of the last `volatility_bars` close-to-close log returns and the liquidity score the last bar's
   volume over its average of `liquidity_bars` bars, capped at 1 (1: normal volume; unknown volume: 1);
2. high-volatility hours (PRD `selectOptimalExecutionTime`): × `high_volatility_widen` when the clock's
   UTC hour is one of `high_volatility_hours`;
3. clamped to [`trailing.min_distance`, `trailing.max_distance`];
4. stop clusters (PRD `adjustTrailForStopHunting`): the trigger the distance gives is compared with
   round numbers near the price (multiples of half a power of ten: 500 at 6,500, 5,000 at 15,000) and
   the highest high and lowest low of the last `swing_bars` bars; within `cluster_zone` of one, the
   trigger moves to `cluster_shift` beyond it on its own side (cluster × (1 ± shift)), so it does not
   sit just past the level where stops are hunted; then clamped again.

The policy caps the result where it must (the grid's `cap_trail`), so invariant 10 holds whatever the
minimizer says.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from trdr_tui.config import SlippageConfig
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.clock import Clock
from trdr_tui.core.types import Side

F64 = npt.NDArray[np.float64]
HOUR_NS = 3_600_000_000_000


def optimal_trail_distance(base: float, volatility: float, liquidity: float, reference: float) -> float:
    """PRD §3.4: base × (1 + volatility / reference) × (2 − liquidity); fractions, liquidity in [0, 1]."""
    return base * (1.0 + volatility / reference) * (2.0 - min(max(liquidity, 0.0), 1.0))


def volatility(close: F64, bars: int) -> float:
    """Standard deviation (ddof 0) of the last `bars` close-to-close log returns; 0.0 with fewer than 2."""
    c = close[-(bars + 1):]
    if c.shape[0] < 3:
        return 0.0
    return float(np.std(np.diff(np.log(c))))


def liquidity_score(volume: F64, bars: int) -> float:
    """The last bar's volume over the mean of the last `bars` volumes, capped at 1; 1.0 when unknown."""
    v = volume[-bars:]
    mean = float(v.mean()) if v.shape[0] else 0.0
    return min(float(v[-1]) / mean, 1.0) if mean > 0.0 else 1.0


def round_step(price: float) -> float:
    """The spacing of round numbers near `price`: half its power of ten (500 for 6,500)."""
    return 0.5 * 10.0 ** math.floor(math.log10(price))


def stop_clusters(price: float, high: F64, low: F64) -> list[float]:
    """Round numbers on either side of `price` and the recent swing extremes (max high, min low)."""
    step = round_step(price)
    below = math.floor(price / step) * step
    out = [below, below + step]
    if high.shape[0]:
        out += [float(high.max()), float(low.min())]
    return out


def avoid_clusters(trigger: float, clusters: list[float], zone: float, shift: float) -> float:
    """PRD §3.4: a trigger within `zone` of a cluster moves to cluster × (1 + shift) when above it,
    × (1 − shift) when below; the first cluster that matches decides."""
    for c in clusters:
        if c > 0.0 and abs(trigger - c) / c < zone:
            return c * (1.0 + shift) if trigger > c else c * (1.0 - shift)
    return trigger


class SlippageMinimizer:
    """Tunes a trailing distance from the recent bars (`recent_bars(n)`) and the clock (module doc)."""

    def __init__(self, cfg: SlippageConfig, recent_bars: Callable[[int], CandleArrays], clock: Clock, *,
                 min_trail: float, max_trail: float) -> None:
        self.cfg = cfg
        self.recent_bars = recent_bars
        self.clock = clock
        self.min_trail = min_trail
        self.max_trail = max_trail
        self._bars = max(cfg.volatility_bars + 1, cfg.liquidity_bars, cfg.swing_bars)

    def trail(self, side: Side, trail: float, price: float) -> float:
        """The distance (a fraction) for a trailing `side` order armed at `price` with base `trail`."""
        cfg = self.cfg
        bars = self.recent_bars(self._bars)
        sigma = volatility(bars.close, cfg.volatility_bars)
        score = liquidity_score(bars.volume, cfg.liquidity_bars)
        t = optimal_trail_distance(trail, sigma, score, cfg.volatility_reference)
        if (self.clock.now_ns() // HOUR_NS) % 24 in cfg.high_volatility_hours:
            t *= cfg.high_volatility_widen
        t = self._clamp(t)
        sign = 1.0 if side is Side.BUY else -1.0
        trigger = price * (1.0 + sign * t)
        swings = slice(-cfg.swing_bars, None)
        moved = avoid_clusters(trigger, stop_clusters(price, bars.high[swings], bars.low[swings]),
                               cfg.cluster_zone, cfg.cluster_shift)
        return self._clamp(sign * (moved / price - 1.0))

    def _clamp(self, t: float) -> float:
        return min(max(t, self.min_trail), self.max_trail)
