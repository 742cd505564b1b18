"""Streaming indicators: O(1) work per new candle, for paper and live trading.

Every indicator is a small recurrence on Python floats, one object each, fed once per candle for the
whole agent panel (the orchestrator owns one `StreamingIndicators` per symbol and every agent reads
its `FeatureRow`). The recurrences are talipp's (ATR, RSI, MACD, SMA, Bollinger), operation for
operation, so they give talipp's values bit for bit (a test holds them to it on real candles)
without talipp's per-update bookkeeping: that bookkeeping was most of the panel's time per candle.
Conventions match `market/indicators.py`, so that `StreamingIndicators.update` on bar i returns
`compute_features(...)` row i to float rounding (see the parity test):

- SMA keeps a running mean, `prev - (x[-n-1] - x) / n`, seeded with the mean of its first n inputs;
- EMA is seeded with the mean of its first n inputs, then `a·x + (1-a)·prev`, `a = 2 / (n + 1)`;
- ATR and RSI use Wilder's smoothing, `(prev·(n-1) + x) / n`; RSI is seeded from the first n - 1
  changes, then smoothed with the n-th (talipp's order of operations);
- the Bollinger deviation is the population one, summed afresh over its window each bar;
- the rolling VWAP, the rolling extremes and the swing tracker are short windows.
"""

from __future__ import annotations

import math
from collections import deque

import msgspec

from trdr_tui.core.errors import DataError
from trdr_tui.core.types import Candle
from trdr_tui.market.indicators import Features, IndicatorParams

NAN = math.nan


class FeatureRow(msgspec.Struct, gc=False):
    """The features of one bar (the same names as `Features`); NaN where not yet known.

    Built once per candle for the whole panel, so `StreamingIndicators.update` passes the fields by
    position, in this order (msgspec matches 29 keywords in ≈ 1.5 µs, positions in ≈ 0.3 µs); give them
    by name anywhere else. Untracked by the cyclic GC (`gc=False`): it holds numbers only."""

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


class _SMA:
    """Simple moving average as talipp keeps it: the mean of the first `period` inputs, then a
    running update `prev - (x[-period-1] - x) / period`. NaN until `period` inputs."""

    __slots__ = ("divisor", "period", "value", "window")

    def __init__(self, period: int) -> None:
        self.period = period
        self.divisor = float(period)
        self.window: deque[float] = deque(maxlen=period + 1)
        self.value = NAN

    def push(self, x: float) -> float:
        w = self.window
        w.append(x)
        n = len(w)
        if n > self.period:
            self.value = self.value - (w[0] - x) / self.divisor
        elif n == self.period:
            self.value = float(sum(w)) / self.period
        return self.value


class _EMA:
    """Exponential moving average: seeded with the mean of the first `period` inputs, then
    `a·x + (1-a)·prev`, `a = 2 / (period + 1)`. NaN until `period` inputs."""

    __slots__ = ("count", "keep", "mult", "period", "seed", "value")

    def __init__(self, period: int) -> None:
        self.period = period
        self.mult = 2.0 / (period + 1.0)
        self.keep = 1.0 - self.mult
        self.seed: list[float] = []
        self.count = 0
        self.value = NAN

    def push(self, x: float) -> float:
        if self.count >= self.period:
            self.value = self.mult * x + self.keep * self.value
            return self.value
        self.count += 1
        self.seed.append(x)
        if self.count == self.period:
            self.value = sum(self.seed) / self.period
            self.seed = []
        return self.value


class _ATR:
    """Wilder's average true range (the first bar's true range is its high - low), seeded with the
    mean of the first `period` true ranges. NaN until `period` bars."""

    __slots__ = ("count", "period", "prev_close", "seed", "value")

    def __init__(self, period: int) -> None:
        self.period = period
        self.count = 0
        self.prev_close = NAN
        self.seed: list[float] = []
        self.value = NAN

    def push(self, high: float, low: float, close: float) -> float:
        if self.count == 0:
            tr = high - low
        else:
            c2 = self.prev_close
            tr = max(high - low, abs(high - c2), abs(low - c2))
        self.prev_close = close
        self.count += 1
        p = self.period
        if self.count > p:
            self.value = (self.value * (p - 1) + tr) / p
        else:
            self.seed.append(tr)
            if self.count == p:
                self.value = sum(self.seed) / p
                self.seed = []
        return self.value


class _RSI:
    """Wilder's RSI in talipp's order of operations: at `period + 1` inputs the averages are seeded
    with the mean gain and loss of the first `period - 1` changes, then every change (the n-th
    included) updates them as `(prev·(n-1) + x) / n`. NaN until `period + 1` inputs; 100 when the
    average loss is 0."""

    __slots__ = ("avg_gain", "avg_loss", "inputs", "keep", "period", "prev")

    def __init__(self, period: int) -> None:
        self.period = period
        self.keep = float(period - 1)  # the weight of the previous average (talipp multiplies by the int)
        self.inputs: list[float] = []
        self.prev = NAN
        self.avg_gain = NAN
        self.avg_loss = NAN

    def push(self, x: float) -> float:
        p = self.period
        avg_gain = self.avg_gain
        if avg_gain != avg_gain:  # still warming up
            inputs = self.inputs
            inputs.append(x)
            if len(inputs) < p + 1:
                self.prev = x
                return NAN
            init = [inputs[i] - inputs[i - 1] for i in range(1, p)]
            avg_gain = float(sum(c for c in init if c > 0)) / (p - 1)
            self.avg_loss = float(sum(-1 * c for c in init if c < 0)) / (p - 1)
            self.inputs = []
        change = x - self.prev
        self.prev = x
        # talipp's `float(avg * (p - 1) + gain) / p`: a float times an int is the float times the
        # int as a float, and float() of a float is itself, so these are the same operations
        keep = self.keep
        if change > 0:
            self.avg_gain = avg_gain = (avg_gain * keep + change) / p
            self.avg_loss = avg_loss = (self.avg_loss * keep + 0.0) / p
        else:
            self.avg_gain = avg_gain = (avg_gain * keep + 0.0) / p
            self.avg_loss = avg_loss = (self.avg_loss * keep + (-change if change < 0 else 0.0)) / p
        if avg_loss == 0:
            return 100.0
        return 100.0 - (100.0 / (1.0 + avg_gain / avg_loss))


class _MACD:
    """MACD = EMA(fast) - EMA(slow) once both have values; the signal line is the EMA of MACD and
    the histogram MACD - signal. Each NaN until known."""

    __slots__ = ("fast", "hist", "macd", "signal", "signal_line", "slow")

    def __init__(self, fast: int, slow: int, signal: int) -> None:
        self.fast, self.slow, self.signal_line = _EMA(fast), _EMA(slow), _EMA(signal)
        self.macd = self.signal = self.hist = NAN

    def push(self, x: float) -> None:
        f = self.fast.push(x)
        s = self.slow.push(x)
        if f != f or s != s:
            return
        self.macd = m = f - s
        self.signal = sig = self.signal_line.push(m)
        if sig == sig:
            self.hist = m - sig


class _Bollinger:
    """Bollinger bands: the SMA (`_SMA`, fed by the caller: `mid`) ± `mult` × the population standard
    deviation of the window, summed afresh each bar. NaN until `period` inputs."""

    __slots__ = ("lower", "mid", "mult", "period", "upper", "window")

    def __init__(self, period: int, mult: float) -> None:
        self.period = period
        self.mult = mult
        self.window: deque[float] = deque(maxlen=period)
        self.lower = self.mid = self.upper = NAN

    def push(self, x: float, mid: float) -> None:
        """Add `x`; `mid` is the `period`-bar `_SMA` of the inputs up to and including `x`."""
        w = self.window
        w.append(x)
        if len(w) < self.period:
            return
        mean = sum(w) / self.period
        sd = math.sqrt(sum([(item - mean) ** 2.0 for item in w]) / self.period)  # `** 2.0`: `** 2` without converting the int each time
        self.mid = mid
        self.lower = mid - self.mult * sd
        self.upper = mid + self.mult * sd


def _slid_extremes(hi: float, lo: float, high: float, low: float, old_high: float, old_low: float,
                   highs: deque[float], lows: deque[float]) -> tuple[float, float]:
    """A full window's (max, min) after it slid by one bar: `high`/`low` came in (already appended to
    `highs`/`lows`), `old_high`/`old_low` left (NaN when none did); `hi`/`lo` were the extremes before
    (NaN: none yet). A scan of the window only when there is no extreme yet or the extreme just left."""
    if high > hi:  # the new value beats every value that stays
        hi = high
    elif hi != hi or old_high == hi:
        hi = max(highs)
    if low < lo:
        lo = low
    elif lo != lo or old_low == lo:
        lo = min(lows)
    return hi, lo


class _Window:
    """The last `size` values with their max and min (NaN if any value in the window is NaN).

    The extremes are kept as values enter and leave, and taken afresh over the window only when the
    one that leaves was an extreme: each bar the same floats as `max(window)` and `min(window)`
    (extremes are chosen, not computed), in O(1) on most bars."""

    __slots__ = ("hi", "lo", "nan_count", "size", "values")

    def __init__(self, size: int) -> None:
        self.size = size
        self.values: deque[float] = deque(maxlen=size)
        self.nan_count = 0
        self.hi = self.lo = NAN  # the extremes of the full window without NaN, else NaN

    def push(self, x: float) -> tuple[float, float]:
        """Add `x`; returns the window's (max, min), NaN until it holds `size` values and none is NaN."""
        values = self.values
        old = values[0] if len(values) == self.size else NAN  # the value that leaves, if one does
        if old != old and len(values) == self.size:
            self.nan_count -= 1
        if x != x:
            self.nan_count += 1
        values.append(x)
        if len(values) < self.size or self.nan_count:
            self.hi = self.lo = NAN
            return NAN, NAN
        self.hi, self.lo = hi, lo = _slid_extremes(self.hi, self.lo, x, x, old, old, values, values)
        return hi, lo


class _RollingVWAP:
    """Σ typical·volume / Σ volume over the last `period` bars, summed afresh (no drift)."""

    __slots__ = ("period", "pv", "v")

    def __init__(self, period: int) -> None:
        self.period = period
        self.pv: deque[float] = deque(maxlen=period)
        self.v: deque[float] = deque(maxlen=period)

    def push(self, high: float, low: float, close: float, volume: float) -> float:
        self.pv.append((high + low + close) / 3.0 * volume)
        v = self.v
        v.append(volume)
        if len(v) < self.period:
            return NAN
        total_v = sum(v)
        return sum(self.pv) / total_v if total_v != 0.0 else NAN


class _SwingTracker:
    """Confirms a swing high/low `lookback` bars after it, and keeps the last two of each."""

    __slots__ = ("hi", "highs", "lo", "lookback", "lows", "sh", "size", "sl")

    def __init__(self, lookback: int) -> None:
        self.lookback = lookback
        self.size = 2 * lookback + 1
        self.highs: deque[float] = deque(maxlen=self.size)
        self.lows: deque[float] = deque(maxlen=self.size)
        self.hi = self.lo = NAN  # max(highs) and min(lows) once the window is full, kept as `_Window` keeps them
        self.sh: tuple[float, float] = (NAN, NAN)  # (last, previous)
        self.sl: tuple[float, float] = (NAN, NAN)

    def push(self, high: float, low: float) -> None:
        """Add one bar (finite prices: the market state checks them)."""
        highs, lows = self.highs, self.lows
        full = len(highs) == self.size
        old_h = highs[0] if full else NAN  # the values that leave, if they do
        old_l = lows[0] if full else NAN
        highs.append(high)
        lows.append(low)
        if not full and len(highs) < self.size:
            return
        self.hi, self.lo = hi, lo = _slid_extremes(self.hi, self.lo, high, low, old_h, old_l, highs, lows)
        center_h = highs[self.lookback]
        if center_h == hi:
            self.sh = (center_h, self.sh[0])
        center_l = lows[self.lookback]
        if center_l == lo:
            self.sl = (center_l, self.sl[0])


class StreamingIndicators:
    """Feed closed candles in time order; `update` returns that bar's FeatureRow."""

    def __init__(self, params: IndicatorParams | None = None) -> None:
        self.params = p = params or IndicatorParams()
        self._atr = _ATR(p.atr_period)
        self._atr_ma = _SMA(p.atr_ma_period)
        self._rsi = _RSI(p.rsi_period)
        self._rsi_slow = _RSI(p.rsi_slow_period)
        self._macd = _MACD(p.macd_fast, p.macd_slow, p.macd_signal)
        self._sma_fast = _SMA(p.sma_fast)
        # the Bollinger mid is an SMA of the closes: the same one when the periods agree (the defaults)
        self._bb_sma = self._sma_fast if p.bb_period == p.sma_fast else _SMA(p.bb_period)
        self._sma_slow = _SMA(p.sma_slow)
        self._vol_ma = _SMA(p.volume_ma_period)
        self._bb = _Bollinger(p.bb_period, p.bb_mult)
        self._vwap = _RollingVWAP(p.vwap_period)
        self._rsi_win = _Window(p.extreme_window)
        self._close_win = _Window(p.extreme_window)
        self._swings = _SwingTracker(p.swing_lookback)
        self.count = 0
        self.last_ts: int | None = None

    def update(self, c: Candle) -> FeatureRow:
        """Add one closed candle. A bad candle raises DataError and changes nothing."""
        if self.last_ts is not None and c.ts <= self.last_ts:
            raise DataError(f"candle at {c.ts} is not after the previous one ({self.last_ts})",
                            where="market state", hint="feed closed candles once each, in time order")
        low, high = c.low, c.high
        if not (low > 0.0 and c.volume >= 0.0 and math.isfinite(high + c.open + c.close + c.volume)
                and low <= c.open and low <= c.close and high >= c.open and high >= c.close):
            raise DataError(f"invalid candle at {c.ts}: {c!r}", where="market state",
                            hint="prices must be finite and positive with low ≤ open, close ≤ high; volume ≥ 0")
        self.last_ts = c.ts
        close = c.close
        a = self._atr.push(high, low, close)
        atr_pct = a / close
        atr_pct_ma = self._atr_ma.push(atr_pct) if a == a else self._atr_ma.value
        r = self._rsi.push(close)
        rsi_slow = self._rsi_slow.push(close)
        macd = self._macd
        macd.push(close)
        sma_fast = self._sma_fast.push(close)
        bb_sma = self._bb_sma
        bb = self._bb
        bb.push(close, sma_fast if bb_sma is self._sma_fast else bb_sma.push(close))
        rsi_max, rsi_min = self._rsi_win.push(r)
        close_max, close_min = self._close_win.push(close)
        swings = self._swings
        swings.push(high, low)
        vwap = self._vwap.push(high, low, close, c.volume)
        self.count += 1
        sh, sl = swings.sh, swings.sl
        volume = c.volume
        return FeatureRow(  # by position, in FeatureRow's field order (see its doc)
            c.ts, c.open, high, low, close, volume,  # ts, open, high, low, close, volume
            a, atr_pct, atr_pct_ma, r, rsi_slow,  # atr, atr_pct, atr_pct_ma, rsi, rsi_slow
            rsi_max, rsi_min, close_max, close_min,  # rsi_max, rsi_min, close_max, close_min
            macd.macd, macd.signal, macd.hist,  # macd, macd_signal, macd_hist
            sma_fast, self._sma_slow.push(close), self._vol_ma.push(volume), vwap,
            # ^ sma_fast, sma_slow, vol_ma, vwap
            bb.lower, bb.mid, bb.upper,  # bb_lower, bb_mid, bb_upper
            sh[0], sl[0], sh[1], sl[1],  # swing_high, swing_low, prev_swing_high, prev_swing_low
        )
