"""Vectorized indicators (numpy) over a whole history, for backtests and batch agent analysis.

Every function here has a streaming twin in `market/streaming.py` (recurrences, one candle at a time)
and follows the same conventions, so both paths give the same numbers after warm-up (a parity test
on real hourly data holds them to a relative difference of 1e-9):

- a value is NaN until its window is full;
- EMA is seeded with the simple mean of its first `period` inputs, then `a·x + (1-a)·prev`,
  `a = 2 / (period + 1)`;
- ATR and RSI use Wilder's smoothing (`a = 1 / period`): ATR is seeded with the mean of the first
  `period` true ranges (the first bar's true range is its high - low), RSI with the mean gain and
  loss of the first `period` changes. (The PRD's RSI sketch applies one RS to every bar; that is
  not RSI and is not used.)
- standard deviation (Bollinger) is the population one over the window;
- VWAP is rolling: Σ typical·volume / Σ volume over the last `period` bars, NaN with no volume;
- a swing high/low at bar j is known only at bar j + lookback (no look-ahead).

`compute_features` computes every feature the core agents read, once per dataset.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import DataError
from trdr_tui.core.smoothing import recursive_filter
from trdr_tui.core.volatility import atr

F64 = npt.NDArray[np.float64]

class IndicatorParams(msgspec.Struct, frozen=True, kw_only=True):
    """Periods of every feature; the same object configures the streaming and the batch path."""

    atr_period: int = 14
    atr_ma_period: int = 100
    rsi_period: int = 14
    rsi_slow_period: int = 56  # ≈ the 14-period RSI of a 4× longer timeframe
    extreme_window: int = 20  # rolling max/min of close and RSI (divergence)
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    sma_fast: int = 20
    sma_slow: int = 50
    volume_ma_period: int = 20
    vwap_period: int = 24
    bb_period: int = 20
    bb_mult: float = 2.0
    swing_lookback: int = 5

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if name == "bb_mult":
                if not (0 < value < 10):
                    raise ValueError(f"indicator parameter `bb_mult` must be in (0, 10), got {value}")
            elif not (1 <= value <= 10_000):
                raise ValueError(f"indicator parameter `{name}` must be between 1 and 10000, got {value}")
        if self.macd_fast >= self.macd_slow:
            raise ValueError("`macd_fast` must be shorter than `macd_slow`")

    @property
    def warmup(self) -> int:
        """Bars needed before every windowed feature has a value."""
        return max(
            self.atr_period + self.atr_ma_period - 1,
            self.rsi_slow_period + 1,
            self.rsi_period + self.extreme_window,
            self.macd_slow + self.macd_signal - 1,
            self.sma_slow,
            self.volume_ma_period,
            self.vwap_period,
            self.bb_period,
        )


# --- building blocks ----------------------------------------------------------------------------


def _nan(n: int) -> F64:
    return np.full(n, np.nan, dtype=np.float64)


def _first_finite(x: F64) -> int:
    idx = np.flatnonzero(np.isfinite(x))
    return int(idx[0]) if idx.size else x.shape[0]


PAIRWISE_BLOCK = 128  # numpy's PW_BLOCKSIZE: a float sum of up to this many terms is one block


def _pairwise(term: Callable[[int], F64], count: int) -> F64:
    """Σ term(k) over k < `count` (≤ PAIRWISE_BLOCK), element by element, added in the order numpy's
    pairwise summation adds `count` values within one block (`pairwise_sum` in numpy's
    loops_utils.h.src): from 0, left to right when fewer than 8; else 8 partial sums of every 8th term,
    combined as ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), then the rest left to right. So the
    results have the bits of numpy's `sum` over a row of `count` values, with `count` whole-array adds
    (a reduction along a short strided axis is several times slower)."""
    if count < 8:
        acc = term(0).copy()
        for k in range(1, count):
            acc += term(k)
    else:
        r = [term(j).copy() for j in range(8)]
        block = count - count % 8
        for k in range(8, block, 8):
            for j in range(8):
                r[j] += term(k + j)
        acc = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        for k in range(block, count):
            acc += term(k)
    acc += 0.0  # numpy starts from 0.0: a sum of negative zeros is +0.0
    return acc


def window_sum(x: F64, period: int) -> F64:
    """Σ x[j] … x[j + period − 1] for every window (n − period + 1 values; `period` ≤ n): the bits of
    `sliding_window_view(x, period).sum(axis=1)` (`_pairwise` up to PAIRWISE_BLOCK terms; that very
    reduction above)."""
    if period > PAIRWISE_BLOCK:
        return sliding_window_view(x, period).sum(axis=1)
    m = x.shape[0] - period + 1
    return _pairwise(lambda k: x[k:k + m], period)


def sma(x: F64, period: int) -> F64:
    """Simple moving average; NaN until `period` values (leading NaNs are skipped)."""
    n = x.shape[0]
    out = _nan(n)
    start = _first_finite(x)
    if n - start < period:
        return out
    out[start + period - 1:] = window_sum(x[start:], period) / period
    return out


def ema(x: F64, period: int) -> F64:
    """EMA seeded with the mean of the first `period` values (leading NaNs are skipped)."""
    n = x.shape[0]
    out = _nan(n)
    start = _first_finite(x)
    seed_at = start + period - 1
    if seed_at >= n:
        return out
    seed = float(np.mean(x[start:seed_at + 1]))
    out[seed_at] = seed
    out[seed_at + 1:] = recursive_filter(x[seed_at + 1:], 2.0 / (period + 1.0), seed)
    return out


def rsi(close: F64, period: int = 14) -> F64:
    """Wilder's RSI: 100 - 100 / (1 + avg gain / avg loss); 100 when the average loss is zero."""
    n = close.shape[0]
    out = _nan(n)
    if n < period + 1:
        return out
    change = np.diff(close)
    gain = np.where(change > 0, change, 0.0)
    loss = np.where(change < 0, -change, 0.0)
    g0 = float(np.mean(gain[:period]))
    l0 = float(np.mean(loss[:period]))
    avg_gain = np.concatenate(([g0], recursive_filter(gain[period:], 1.0 / period, g0)))
    avg_loss = np.concatenate(([l0], recursive_filter(loss[period:], 1.0 / period, l0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    out[period:] = np.where(avg_loss == 0.0, 100.0, value)
    return out


def macd(close: F64, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[F64, F64, F64]:
    """MACD line (EMA fast - EMA slow), its signal EMA and the histogram."""
    line = ema(close, fast) - ema(close, slow)
    sig = ema(line, signal)
    return line, sig, line - sig


def rolling_std(x: F64, period: int) -> F64:
    """Population standard deviation over the window (two-pass, no cancellation)."""
    n = x.shape[0]
    out = _nan(n)
    if n < period:
        return out
    if period > PAIRWISE_BLOCK:
        w = sliding_window_view(x, period)
        mean = w.mean(axis=1)
        out[period - 1:] = np.sqrt(((w - mean[:, None]) ** 2).sum(axis=1) / period)
        return out
    m = n - period + 1
    mean = window_sum(x, period) / period
    out[period - 1:] = np.sqrt(_pairwise(lambda k: (x[k:k + m] - mean) ** 2, period) / period)
    return out


def bollinger(close: F64, period: int = 20, mult: float = 2.0) -> tuple[F64, F64, F64]:
    """(lower, middle, upper) bands: SMA ± mult·σ."""
    mid = sma(close, period)
    sd = rolling_std(close, period)
    return mid - mult * sd, mid, mid + mult * sd


def vwap(high: F64, low: F64, close: F64, volume: F64, period: int = 24) -> F64:
    """Rolling VWAP of the typical price (H + L + C) / 3 over `period` bars."""
    n = close.shape[0]
    out = _nan(n)
    if n < period:
        return out
    typical = (high + low + close) / 3.0
    pv = window_sum(typical * volume, period)
    v = window_sum(volume, period)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[period - 1:] = np.where(v != 0.0, pv / v, np.nan)
    return out


def window_extreme(x: F64, period: int, pick: np.ufunc) -> F64:
    """`pick` (np.maximum / np.minimum) over every window of `period` consecutive values: out[j] is the
    extreme of x[j] … x[j + period − 1] (n − period + 1 values; `period` ≤ n). The values of a
    sliding-window max/min, NaN included (the extreme involves no rounding), in about log2(period)
    whole-array passes instead of a reduction along a strided axis: a doubling table, whose two
    overlapping power-of-two windows cover each window (a sparse table, Bender & Farach-Colton 2000)."""
    m = x
    span = 1
    while 2 * span <= period:
        m = pick(m[:-span], m[span:])  # m[j]: the extreme of x[j] … x[j + 2·span − 1]
        span *= 2
    k = period - span
    return pick(m[:m.shape[0] - k], m[k:]) if k else m.copy()


def rolling_max(x: F64, period: int) -> F64:
    out = _nan(x.shape[0])
    if x.shape[0] >= period:
        out[period - 1:] = window_extreme(x, period, np.maximum)
    return out


def rolling_min(x: F64, period: int) -> F64:
    out = _nan(x.shape[0])
    if x.shape[0] >= period:
        out[period - 1:] = window_extreme(x, period, np.minimum)
    return out


def swing_flags(high: F64, low: F64, lookback: int) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Bar j is a swing high when its high is the maximum of bars j-lookback … j+lookback (ties count)."""
    n = high.shape[0]
    width = 2 * lookback + 1
    is_high = np.zeros(n, dtype=bool)
    is_low = np.zeros(n, dtype=bool)
    if n >= width:
        is_high[lookback:n - lookback] = window_extreme(high, width, np.maximum) == high[lookback:n - lookback]
        is_low[lookback:n - lookback] = window_extreme(low, width, np.minimum) == low[lookback:n - lookback]
    return is_high, is_low


def confirmed_levels(prices: F64, flags: npt.NDArray[np.bool_], lookback: int) -> tuple[F64, F64]:
    """(last, previous) swing level known at each bar: a swing at j is known from bar j + lookback."""
    n = prices.shape[0]
    last = _nan(n)
    prev = _nan(n)
    centers = np.flatnonzero(flags)
    if centers.size == 0:
        return last, prev
    known_at = centers + lookback
    count = np.searchsorted(known_at, np.arange(n), side="right")  # swings known by each bar
    has_last = count >= 1
    has_prev = count >= 2
    last[has_last] = prices[centers[count[has_last] - 1]]
    prev[has_prev] = prices[centers[count[has_prev] - 2]]
    return last, prev


# --- the feature set the core agents read -------------------------------------------------------


class Features(msgspec.Struct, kw_only=True):
    """One array per feature, aligned with the candles (NaN during warm-up)."""

    ts: npt.NDArray[np.int64]
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    atr: F64
    atr_pct: F64
    atr_pct_ma: F64
    rsi: F64
    rsi_slow: F64
    rsi_max: F64
    rsi_min: F64
    close_max: F64
    close_min: F64
    macd: F64
    macd_signal: F64
    macd_hist: F64
    sma_fast: F64
    sma_slow: F64
    vol_ma: F64
    vwap: F64
    bb_lower: F64
    bb_mid: F64
    bb_upper: F64
    swing_high: F64
    swing_low: F64
    prev_swing_high: F64
    prev_swing_low: F64

    def __len__(self) -> int:
        return int(self.ts.shape[0])


FEATURE_NAMES: tuple[str, ...] = tuple(f for f in Features.__struct_fields__ if f != "ts")


def _check_bars(bars: CandleArrays) -> None:
    n = len(bars)
    for name in ("open", "high", "low", "close", "volume"):
        col = getattr(bars, name)
        if col.shape[0] != n:
            raise DataError(f"column '{name}' has {col.shape[0]} rows, ts has {n}", where="candles",
                            hint="build CandleArrays from one table")
        bad = np.flatnonzero(~np.isfinite(col))
        if bad.size:
            raise DataError(f"column '{name}' is not finite at row {int(bad[0])}", where="candles",
                            hint="drop or repair that bar before computing indicators")
    bad = np.flatnonzero((bars.low <= 0) | (bars.volume < 0) | (bars.low > np.minimum(bars.open, bars.close))
                         | (bars.high < np.maximum(bars.open, bars.close)))
    if bad.size:
        raise DataError(f"invalid bar at row {int(bad[0])}: prices must be positive with low ≤ open, close ≤ high "
                        "and volume ≥ 0", where="candles", hint="drop or repair that bar")
    if n > 1 and np.any(np.diff(bars.ts) <= 0):
        row = int(np.flatnonzero(np.diff(bars.ts) <= 0)[0]) + 1
        raise DataError(f"timestamps are not strictly increasing at row {row}", where="candles",
                        hint="sort the bars by time and remove duplicates")


def compute_features(bars: CandleArrays, params: IndicatorParams | None = None) -> Features:
    """Every feature for every bar, in one pass per indicator."""
    p = params or IndicatorParams()
    _check_bars(bars)
    h, lo, c, v = bars.high, bars.low, bars.close, bars.volume
    a = atr(h, lo, c, p.atr_period)
    atr_pct = a / c
    r = rsi(c, p.rsi_period)
    line, sig, hist = macd(c, p.macd_fast, p.macd_slow, p.macd_signal)
    bl, bm, bu = bollinger(c, p.bb_period, p.bb_mult)
    is_high, is_low = swing_flags(h, lo, p.swing_lookback)
    sh, psh = confirmed_levels(h, is_high, p.swing_lookback)
    sl, psl = confirmed_levels(lo, is_low, p.swing_lookback)
    return Features(
        ts=bars.ts, open=bars.open, high=h, low=lo, close=c, volume=v,
        atr=a, atr_pct=atr_pct, atr_pct_ma=sma(atr_pct, p.atr_ma_period),
        rsi=r, rsi_slow=rsi(c, p.rsi_slow_period),
        rsi_max=rolling_max(r, p.extreme_window), rsi_min=rolling_min(r, p.extreme_window),
        close_max=rolling_max(c, p.extreme_window), close_min=rolling_min(c, p.extreme_window),
        macd=line, macd_signal=sig, macd_hist=hist,
        sma_fast=sma(c, p.sma_fast), sma_slow=sma(c, p.sma_slow), vol_ma=sma(v, p.volume_ma_period),
        vwap=vwap(h, lo, c, v, p.vwap_period), bb_lower=bl, bb_mid=bm, bb_upper=bu,
        swing_high=sh, swing_low=sl, prev_swing_high=psh, prev_swing_low=psl,
    )
