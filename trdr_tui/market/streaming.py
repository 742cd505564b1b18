"""Streaming indicators: O(1) work per new candle, for paper and live trading.

talipp computes ATR, RSI, MACD, the SMAs and the Bollinger bands; the rolling VWAP, the rolling
extremes and the swing tracker are small windows kept here (talipp has no rolling typical-price VWAP
and no look-ahead-free swing levels). Conventions match `market/indicators.py` exactly, so that
`StreamingIndicators.update` on bar i returns `compute_features(...)` row i (see the parity test).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import msgspec
from talipp.indicators import ATR, BB, MACD, RSI, SMA
from talipp.ohlcv import OHLCV

from trdr_tui.core.errors import DataError
from trdr_tui.core.types import Candle
from trdr_tui.market.indicators import Features, IndicatorParams

NAN = math.nan

_PURGE_EVERY = 4096  # talipp keeps every input; trim its lists now and then …
_KEEP = 1024  # … keeping far more than the longest window


class FeatureRow(msgspec.Struct, kw_only=True):
    """The features of one bar (the same names as `Features`); NaN where not yet known."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    atr: float = NAN
    atr_pct: float = NAN
    atr_pct_ma: float = NAN
    rsi: float = NAN
    rsi_slow: float = NAN
    rsi_max: float = NAN
    rsi_min: float = NAN
    close_max: float = NAN
    close_min: float = NAN
    macd: float = NAN
    macd_signal: float = NAN
    macd_hist: float = NAN
    sma_fast: float = NAN
    sma_slow: float = NAN
    vol_ma: float = NAN
    vwap: float = NAN
    bb_lower: float = NAN
    bb_mid: float = NAN
    bb_upper: float = NAN
    swing_high: float = NAN
    swing_low: float = NAN
    prev_swing_high: float = NAN
    prev_swing_low: float = NAN


def feature_row(features: Features, i: int) -> FeatureRow:
    """Row i of batch features as a FeatureRow (what a streaming agent would have seen at bar i)."""
    values = {name: float(getattr(features, name)[i]) for name in FeatureRow.__struct_fields__ if name != "ts"}
    return FeatureRow(ts=int(features.ts[i]), **values)


def _val(x: object) -> float:
    return NAN if x is None else float(x)  # type: ignore[arg-type]


def _out(ind: Any) -> float:
    """The latest output of a scalar talipp indicator, NaN before it has one."""
    x = ind.output_values[-1]
    return NAN if x is None else float(x)


class _Window:
    """The last `size` values with their max and min (NaN if any value in the window is NaN)."""

    __slots__ = ("nan_count", "size", "values")

    def __init__(self, size: int) -> None:
        self.size = size
        self.values: deque[float] = deque(maxlen=size)
        self.nan_count = 0

    def push(self, x: float) -> None:
        if len(self.values) == self.size and self.values[0] != self.values[0]:
            self.nan_count -= 1
        if x != x:
            self.nan_count += 1
        self.values.append(x)

    def full(self) -> bool:
        return len(self.values) == self.size and self.nan_count == 0

    def max(self) -> float:
        return max(self.values) if self.full() else NAN

    def min(self) -> float:
        return min(self.values) if self.full() else NAN


class _RollingVWAP:
    """Σ typical·volume / Σ volume over the last `period` bars, summed afresh (no drift)."""

    __slots__ = ("pv", "v")

    def __init__(self, period: int) -> None:
        self.pv: deque[float] = deque(maxlen=period)
        self.v: deque[float] = deque(maxlen=period)

    def push(self, high: float, low: float, close: float, volume: float) -> float:
        self.pv.append((high + low + close) / 3.0 * volume)
        self.v.append(volume)
        if len(self.v) < (self.v.maxlen or 0):
            return NAN
        total_v = sum(self.v)
        return sum(self.pv) / total_v if total_v != 0.0 else NAN


class _SwingTracker:
    """Confirms a swing high/low `lookback` bars after it, and keeps the last two of each."""

    __slots__ = ("highs", "lookback", "lows", "sh", "sl")

    def __init__(self, lookback: int) -> None:
        self.lookback = lookback
        self.highs: deque[float] = deque(maxlen=2 * lookback + 1)
        self.lows: deque[float] = deque(maxlen=2 * lookback + 1)
        self.sh: tuple[float, float] = (NAN, NAN)  # (last, previous)
        self.sl: tuple[float, float] = (NAN, NAN)

    def push(self, high: float, low: float) -> None:
        self.highs.append(high)
        self.lows.append(low)
        if len(self.highs) == self.highs.maxlen:
            center_h = self.highs[self.lookback]
            if center_h == max(self.highs):
                self.sh = (center_h, self.sh[0])
            center_l = self.lows[self.lookback]
            if center_l == min(self.lows):
                self.sl = (center_l, self.sl[0])


class StreamingIndicators:
    """Feed closed candles in time order; `update` returns that bar's FeatureRow."""

    def __init__(self, params: IndicatorParams | None = None) -> None:
        self.params = p = params or IndicatorParams()
        self._atr = ATR(p.atr_period)
        self._atr_ma = SMA(p.atr_ma_period)
        self._rsi = RSI(p.rsi_period)
        self._rsi_slow = RSI(p.rsi_slow_period)
        self._macd = MACD(p.macd_fast, p.macd_slow, p.macd_signal)
        self._sma_fast = SMA(p.sma_fast)
        self._sma_slow = SMA(p.sma_slow)
        self._vol_ma = SMA(p.volume_ma_period)
        self._bb = BB(p.bb_period, p.bb_mult)
        self._vwap = _RollingVWAP(p.vwap_period)
        self._rsi_win = _Window(p.extreme_window)
        self._close_win = _Window(p.extreme_window)
        self._swings = _SwingTracker(p.swing_lookback)
        self._talipp = (self._atr, self._atr_ma, self._rsi, self._rsi_slow, self._macd, self._sma_fast,
                        self._sma_slow, self._vol_ma, self._bb)
        self.count = 0
        self.last_ts: int | None = None

    def update(self, c: Candle) -> FeatureRow:
        """Add one closed candle. A bad candle raises DataError and changes nothing."""
        if self.last_ts is not None and c.ts <= self.last_ts:
            raise DataError(f"candle at {c.ts} is not after the previous one ({self.last_ts})",
                            where="market state", hint="feed closed candles once each, in time order")
        if not (c.low > 0.0 and c.volume >= 0.0 and math.isfinite(c.high + c.open + c.close + c.volume)
                and c.low <= min(c.open, c.close) and c.high >= max(c.open, c.close)):
            raise DataError(f"invalid candle at {c.ts}: {c!r}", where="market state",
                            hint="prices must be finite and positive with low ≤ open, close ≤ high; volume ≥ 0")
        self.last_ts = c.ts
        close = c.close
        # talipp outputs are read straight from `output_values` (a float, None before warm-up, or
        # a value object for MACD and Bollinger): the hot path avoids a Python call per read.
        self._atr.add(OHLCV(c.open, c.high, c.low, close, c.volume))
        a = _out(self._atr)
        atr_pct = a / close
        if a == a:
            self._atr_ma.add(atr_pct)
        atr_pct_ma = _out(self._atr_ma) if self._atr_ma.output_values else NAN
        self._rsi.add(close)
        r = _out(self._rsi)
        self._rsi_slow.add(close)
        self._macd.add(close)
        m = self._macd.output_values[-1]
        self._sma_fast.add(close)
        self._sma_slow.add(close)
        self._vol_ma.add(c.volume)
        self._bb.add(close)
        b = self._bb.output_values[-1]
        self._rsi_win.push(r)
        self._close_win.push(close)
        self._swings.push(c.high, c.low)
        vwap = self._vwap.push(c.high, c.low, close, c.volume)
        self.count += 1
        if self.count % _PURGE_EVERY == 0:
            self._purge()
        sh, sl = self._swings.sh, self._swings.sl
        return FeatureRow(
            ts=c.ts, open=c.open, high=c.high, low=c.low, close=close, volume=c.volume,
            atr=a, atr_pct=atr_pct, atr_pct_ma=atr_pct_ma, rsi=r, rsi_slow=_out(self._rsi_slow),
            rsi_max=self._rsi_win.max(), rsi_min=self._rsi_win.min(),
            close_max=self._close_win.max(), close_min=self._close_win.min(),
            macd=NAN if m is None else _val(m.macd),
            macd_signal=NAN if m is None else _val(m.signal),
            macd_hist=NAN if m is None else _val(m.histogram),
            sma_fast=_out(self._sma_fast), sma_slow=_out(self._sma_slow),
            vol_ma=_out(self._vol_ma), vwap=vwap,
            bb_lower=NAN if b is None else b.lb, bb_mid=NAN if b is None else b.cb,
            bb_upper=NAN if b is None else b.ub,
            swing_high=sh[0], prev_swing_high=sh[1], swing_low=sl[0], prev_swing_low=sl[1],
        )

    def _purge(self) -> None:
        for ind in self._talipp:
            excess = len(ind.input_values) - _KEEP
            if excess > 0:
                ind.purge_oldest(excess)
