"""The streaming recurrences give talipp's values bit for bit, on real candles.

`market/streaming.py` replaced talipp objects with small recurrences (talipp's per-update bookkeeping
was most of the panel's time per candle). talipp stays the reference here: the same candles go
through talipp's ATR, RSI, MACD, SMA and Bollinger as the streaming path used them, and every
feature must be equal, not merely close (so streaming decisions cannot move).
"""

from __future__ import annotations

import math

import pytest
from talipp.indicators import ATR, BB, MACD, RSI, SMA
from talipp.ohlcv import OHLCV

from tests.agents.realdata import load_cdd_hourly
from trdr_tui.core.types import Candle
from trdr_tui.market.indicators import IndicatorParams
from trdr_tui.market.streaming import StreamingIndicators

TALIPP_FIELDS = ("atr", "atr_pct", "atr_pct_ma", "rsi", "rsi_slow", "macd", "macd_signal", "macd_hist", "sma_fast",
                 "sma_slow", "vol_ma", "bb_lower", "bb_mid", "bb_upper")


def _out(x: object) -> float:
    return math.nan if x is None else float(x)  # type: ignore[arg-type]


def talipp_rows(candles: list[Candle], p: IndicatorParams) -> list[dict[str, float]]:
    """The talipp-computed features of every candle, as the streaming path computed them before."""
    atr, atr_ma = ATR(p.atr_period), SMA(p.atr_ma_period)
    rsi, rsi_slow = RSI(p.rsi_period), RSI(p.rsi_slow_period)
    macd, bb = MACD(p.macd_fast, p.macd_slow, p.macd_signal), BB(p.bb_period, p.bb_mult)
    sma_fast, sma_slow, vol_ma = SMA(p.sma_fast), SMA(p.sma_slow), SMA(p.volume_ma_period)
    rows = []
    for c in candles:
        atr.add(OHLCV(c.open, c.high, c.low, c.close, c.volume))
        a = _out(atr.output_values[-1])
        if a == a:
            atr_ma.add(a / c.close)
        for ind, x in ((rsi, c.close), (rsi_slow, c.close), (macd, c.close), (bb, c.close), (sma_fast, c.close),
                       (sma_slow, c.close), (vol_ma, c.volume)):
            ind.add(x)
        m, b = macd.output_values[-1], bb.output_values[-1]
        rows.append({
            "atr": a, "atr_pct": a / c.close,
            "atr_pct_ma": _out(atr_ma.output_values[-1]) if atr_ma.output_values else math.nan,
            "rsi": _out(rsi.output_values[-1]), "rsi_slow": _out(rsi_slow.output_values[-1]),
            "macd": math.nan if m is None else _out(m.macd),
            "macd_signal": math.nan if m is None else _out(m.signal),
            "macd_hist": math.nan if m is None else _out(m.histogram),
            "sma_fast": _out(sma_fast.output_values[-1]), "sma_slow": _out(sma_slow.output_values[-1]),
            "vol_ma": _out(vol_ma.output_values[-1]),
            "bb_lower": math.nan if b is None else b.lb, "bb_mid": math.nan if b is None else b.cb,
            "bb_upper": math.nan if b is None else b.ub,
        })
    return rows


def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)


@pytest.mark.parametrize(("params", "start", "n"), [
    (IndicatorParams(), 0, 20_200),  # the whole file with the default periods
    (IndicatorParams(atr_period=3, atr_ma_period=7, rsi_period=2, rsi_slow_period=9, macd_fast=3, macd_slow=5,
                     macd_signal=2, sma_fast=1, sma_slow=4, volume_ma_period=2, bb_period=2, bb_mult=1.5),
     9_000, 2_000),  # short periods, from the middle of the file
], ids=["default", "short-periods"])
def test_streaming_recurrences_equal_talipp_bit_for_bit(params: IndicatorParams, start: int, n: int) -> None:
    bars = load_cdd_hourly()[start:start + n]
    candles = list(bars.candles())
    want = talipp_rows(candles, params)
    s = StreamingIndicators(params)
    for i, c in enumerate(candles):
        row = s.update(c)
        for name in TALIPP_FIELDS:
            assert _same(getattr(row, name), want[i][name]), (name, i, getattr(row, name), want[i][name])
    assert not math.isnan(row.atr_pct_ma) and not math.isnan(row.macd_hist) and not math.isnan(row.bb_upper)


@pytest.mark.parametrize("lookback", [1, 2, 5])
def test_swing_tracker_keeps_the_window_extremes_it_used_to_take_afresh(lookback: int) -> None:
    """The swing tracker keeps its window's max and min as bars come and go; the swings it confirms
    are those of taking `max` and `min` over the window every bar, also with many equal prices."""
    import random
    from collections import deque

    from trdr_tui.market.streaming import _SwingTracker

    rng = random.Random(lookback)
    tracker = _SwingTracker(lookback)
    highs: deque[float] = deque(maxlen=2 * lookback + 1)
    lows: deque[float] = deque(maxlen=2 * lookback + 1)
    sh = sl = (math.nan, math.nan)
    price = 100.0
    for _ in range(5000):
        price = max(1.0, price + rng.choice((-1.0, 0.0, 0.0, 1.0)))  # whole steps: plateaus and repeats
        high, low = price + rng.choice((0.0, 1.0)), price - rng.choice((0.0, 1.0))
        tracker.push(high, low)
        highs.append(high)
        lows.append(low)
        if len(highs) == highs.maxlen:
            if highs[lookback] == max(highs):
                sh = (highs[lookback], sh[0])
            if lows[lookback] == min(lows):
                sl = (lows[lookback], sl[0])
        assert repr((tracker.sh, tracker.sl)) == repr((sh, sl))  # repr: NaN equals NaN
