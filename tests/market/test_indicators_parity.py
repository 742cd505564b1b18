"""Indicators: textbook values, no look-ahead, and streaming (talipp) = vectorized (numpy) on real data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from tests.agents.realdata import load_cdd_hourly
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import DataError
from trdr_tui.market import indicators as ind
from trdr_tui.market.streaming import FeatureRow, StreamingIndicators, _Window

# Wilder's RSI worked example (as published by StockCharts): closes and the RSI(14) from bar 15 on.
WILDER_CLOSES = [44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245, 45.8433, 46.0826,
                 45.8931, 46.0328, 45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116, 46.2222, 45.6439]
WILDER_RSI = [70.53, 66.32, 66.55, 69.41, 66.36, 57.97]


def _loop_wilder_rsi(close: list[float], n: int) -> list[float]:
    gains = [max(close[i] - close[i - 1], 0.0) for i in range(1, len(close))]
    losses = [max(close[i - 1] - close[i], 0.0) for i in range(1, len(close))]
    g, lo = sum(gains[:n]) / n, sum(losses[:n]) / n
    out = [100 - 100 / (1 + g / lo)]
    for k in range(n, len(gains)):
        g = (g * (n - 1) + gains[k]) / n
        lo = (lo * (n - 1) + losses[k]) / n
        out.append(100 - 100 / (1 + g / lo))
    return out


def test_rsi_matches_wilders_worked_example() -> None:
    r = ind.rsi(np.array(WILDER_CLOSES), 14)
    assert np.isnan(r[:14]).all()
    np.testing.assert_allclose(r[14:], WILDER_RSI, atol=0.005)


def test_rsi_is_wilder_not_one_rs_for_all_bars() -> None:
    """The PRD sketch gives every bar the last RS; Wilder's RSI moves bar by bar."""
    close = load_cdd_hourly().close[:500]
    r = ind.rsi(close, 14)
    np.testing.assert_allclose(r[14:], _loop_wilder_rsi(close.tolist(), 14), rtol=1e-12)
    assert np.unique(np.round(r[14:], 6)).size > 400


def test_atr_and_ema_match_plain_loops() -> None:
    b = load_cdd_hourly()[:300]
    h, lo, c = b.high.tolist(), b.low.tolist(), b.close.tolist()
    tr = [h[0] - lo[0]] + [max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])) for i in range(1, 300)]
    atr = [sum(tr[:14]) / 14]
    for x in tr[14:]:
        atr.append((atr[-1] * 13 + x) / 14)
    np.testing.assert_allclose(ind.atr(b.high, b.low, b.close, 14)[13:], atr, rtol=1e-12)
    ema = [sum(c[:12]) / 12]
    for x in c[12:]:
        ema.append(2 / 13 * x + (1 - 2 / 13) * ema[-1])
    np.testing.assert_allclose(ind.ema(b.close, 12)[11:], ema, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=300), st.floats(0.01, 0.99), st.floats(-10, 10))
def test_recursive_filter_equals_the_recursion(xs: list[float], alpha: float, y0: float) -> None:
    want, y = [], y0
    for x in xs:
        y = (1 - alpha) * y + alpha * x
        want.append(y)
    np.testing.assert_allclose(ind.recursive_filter(np.array(xs), alpha, y0), want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("period", [1, 2, 7, 8, 9, 15, 16, 20, 24, 50, 100, 127, 128, 129, 200])
def test_window_sum_has_the_bits_of_numpys_sum_over_each_window(period: int) -> None:
    """The rolling sums (SMA, Bollinger σ, VWAP) are added in numpy's own order: the same bits, -0.0 included
    (values with full mantissas, where another order of the additions changes the last bits)."""
    rng = np.random.default_rng(period)
    for x in (rng.lognormal(size=3000) * 1e4, rng.normal(size=period + 5) * 1e-3,
              np.where(rng.random(500) < 0.5, -0.0, 0.0), np.full(period, -0.0)):
        want = sliding_window_view(x, period).sum(axis=1)
        assert ind.window_sum(x, period).tobytes() == want.tobytes()
        w = sliding_window_view(x, period)
        sd = np.sqrt(((w - w.mean(axis=1)[:, None]) ** 2).sum(axis=1) / period)
        assert ind.rolling_std(x, period)[period - 1:].tobytes() == sd.tobytes()
        assert ind.sma(x, period)[period - 1:].tobytes() == w.mean(axis=1).tobytes()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), min_size=1, max_size=300),
       st.integers(1, 80))
def test_window_extreme_equals_the_max_and_min_over_each_window(xs: list[float], period: int) -> None:
    x = np.array(xs)
    period = min(period, len(xs))
    w = sliding_window_view(x, period)
    np.testing.assert_array_equal(ind.window_extreme(x, period, np.maximum), w.max(axis=1))
    np.testing.assert_array_equal(ind.window_extreme(x, period, np.minimum), w.min(axis=1))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.sampled_from([0.0, -0.0, 1.0, 2.0, float("nan")]), st.floats(-1e6, 1e6)), min_size=1,
                max_size=120), st.integers(1, 12))
def test_streaming_window_extremes_are_the_builtins_over_each_window(xs: list[float], size: int) -> None:
    """The streaming window keeps its extremes as values come and go: every bar they must be the very
    floats `max` and `min` pick over the window (ties, signed zeros and NaN included)."""
    w = _Window(size)
    for i, x in enumerate(xs):
        window = xs[max(0, i + 1 - size):i + 1]
        clean = len(window) == size and not any(v != v for v in window)
        want = (max(window), min(window)) if clean else (float("nan"), float("nan"))
        assert np.array(w.push(x)).tobytes() == np.array(want).tobytes(), (i, window)


def test_features_never_look_ahead() -> None:
    """Row i computed from bars[:i+1] equals row i computed from the whole history."""
    b = load_cdd_hourly()[:600]
    full = ind.compute_features(b)
    for i in (150, 151, 377, 599):
        part = ind.compute_features(b[: i + 1])
        for name in ind.FEATURE_NAMES:
            a, z = getattr(full, name)[i], getattr(part, name)[i]
            assert (np.isnan(a) and np.isnan(z)) or a == pytest.approx(z, rel=1e-12), (name, i)


def test_bad_candles_are_refused_with_the_row() -> None:
    b = load_cdd_hourly()[:50]
    close = b.close.copy()
    close[7] = np.nan
    with pytest.raises(DataError, match="row 7"):
        ind.compute_features(CandleArrays(b.ts, b.open, b.high, b.low, close, b.volume))
    ts = b.ts.copy()
    ts[9] = ts[8]
    with pytest.raises(DataError, match="row 9"):
        ind.compute_features(CandleArrays(ts, b.open, b.high, b.low, b.close, b.volume))


# The MACD family are differences of EMAs that cross zero, where a relative difference means nothing:
# they are compared relative to the price level they are differences of.
PRICE_SCALED = {"macd", "macd_signal", "macd_hist"}


def test_streaming_equals_vectorized_on_real_hourly_data() -> None:
    bars = load_cdd_hourly()
    batch = ind.compute_features(bars)
    s = StreamingIndicators()
    rows: list[FeatureRow] = [s.update(c) for c in bars.candles()]
    warm = ind.IndicatorParams().warmup
    assert len(rows) > 20_000
    for name in ind.FEATURE_NAMES:
        want = getattr(batch, name)
        got = np.array([getattr(r, name) for r in rows])
        np.testing.assert_array_equal(np.isnan(want), np.isnan(got), err_msg=f"{name}: NaN pattern differs")
        w, g = want[warm:], got[warm:]
        ok = ~np.isnan(w)
        assert ok.mean() > 0.99, name  # compared on (nearly) every bar after warm-up
        scale = bars.close[warm:][ok] if name in PRICE_SCALED else np.abs(w[ok])
        rel = np.abs(w[ok] - g[ok]) / np.maximum(scale, 1e-300)
        assert rel.max() <= 1e-9, f"{name}: max relative difference {rel.max():.3g}"


def test_streaming_refuses_bad_candles_and_changes_nothing() -> None:
    s = StreamingIndicators()
    bars = load_cdd_hourly()[:3]
    s.update(bars.candle(1))
    with pytest.raises(DataError, match="not after"):
        s.update(bars.candle(0))
    c = bars.candle(2)
    with pytest.raises(DataError, match="invalid candle"):
        s.update(type(c)(c.ts, c.open, c.high, c.low, float("nan"), c.volume))
    with pytest.raises(DataError, match="invalid candle"):
        s.update(type(c)(c.ts, c.open, c.low * 0.5, c.low, c.close, c.volume))  # high below low
    assert s.count == 1  # nothing was taken in
    s.update(c)
    assert s.count == 2
