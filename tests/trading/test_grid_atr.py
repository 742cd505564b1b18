"""Volatility (ATR)-scaled grid spacing (`grid.spacing_method = "atr"`): Wilder's ATR, never below the
fee floor at any tier, proportional to the ATR between the clamps, and measured on closed bars only."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.volatility import atr
from trdr_tui.engine.assembly import build_engine
from trdr_tui.trading.grid import SWING_HISTORY_BARS, GridPolicy, atr_spacing

TIERS = [t.name for t in load_settings().fees.tiers]
ATR = {"grid.spacing_method": "atr", "grid.min_spacing": 0.0001}


def _bars(closes: list[float], ranges: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = np.asarray(closes, dtype=float)
    r = np.asarray(ranges, dtype=float)
    return c + r / 2, c - r / 2, c


def test_atr_is_wilders_seeded_mean_then_smoothed_true_range() -> None:
    high, low, close = (np.array([10.0, 11.0, 12.0, 11.5, 13.0]), np.array([9.0, 10.0, 10.5, 10.0, 11.0]),
                        np.array([9.5, 10.8, 11.0, 10.2, 12.5]))
    # true range: H−L, or the gap from the previous close when wider
    tr = [1.0, max(1.0, abs(11.0 - 9.5), abs(10.0 - 9.5)), max(1.5, abs(12.0 - 10.8), abs(10.5 - 10.8)),
          max(1.5, abs(11.5 - 11.0), abs(10.0 - 11.0)), max(2.0, abs(13.0 - 10.2), abs(11.0 - 10.2))]
    want = [np.nan, np.nan, sum(tr[:3]) / 3]
    for x in tr[3:]:
        want.append((want[-1] * 2 + x) / 3)
    np.testing.assert_allclose(atr(high, low, close, 3), want, rtol=1e-12)


@given(mult=st.floats(0.1, 100.0), scale=st.floats(0.5, 4.0))
def test_atr_spacing_scales_with_the_atr_and_stays_within_the_clamps(mult: float, scale: float) -> None:
    closes = [100.0 + 0.1 * np.sin(k / 5.0) for k in range(60)]  # the bar ranges exceed every gap: TR = H − L
    high, low, close = _bars(closes, [0.8 + 0.1 * (k % 4) for k in range(60)])
    wide_high, wide_low, _ = _bars(closes, [scale * (0.8 + 0.1 * (k % 4)) for k in range(60)])
    lo, hi = 0.0084, 0.05
    base = atr_spacing(high, low, close, bars=14, multiple=mult, min_spacing=lo, max_spacing=hi, default=0.015)
    wide = atr_spacing(wide_high, wide_low, close, bars=14, multiple=mult, min_spacing=lo, max_spacing=hi,
                       default=0.015)
    assert lo <= base <= hi and lo <= wide <= hi
    raw = mult * float(atr(high, low, close, 14)[-1]) / close[-1]
    assert base == pytest.approx(min(max(raw, lo), hi))
    if lo < raw < hi and lo < raw * scale < hi:  # between the clamps: proportional to the ATR
        assert wide / base == pytest.approx(scale, rel=1e-9)
    elif scale >= 1.0:
        assert wide >= base  # wider bars never narrow the grid


def test_atr_spacing_with_too_few_bars_is_the_configured_spacing_clamped() -> None:
    high, low, close = _bars([100.0] * 10, [1.0] * 10)
    assert atr_spacing(high, low, close, bars=14, multiple=3.0, min_spacing=0.0084, max_spacing=0.05,
                       default=0.015) == 0.015
    assert atr_spacing(high, low, close, bars=14, multiple=3.0, min_spacing=0.02, max_spacing=0.05,
                       default=0.015) == 0.02


@pytest.mark.parametrize("tier", TIERS)
async def test_atr_spacing_never_goes_below_the_fee_floor_at_any_tier(tier: str, hourly: CandleArrays) -> None:
    # a multiple of 0.1 asks for a spacing far below every tier's round-trip cost: the floor wins
    settings = load_settings(overrides={**ATR, "fees.tier": tier, "grid.atr_multiple": 0.1})
    engine = build_engine(settings, mode="backtest", candles=hourly[:800])
    policy = engine.policy
    assert isinstance(policy, GridPolicy)
    spacings: list[float] = []
    engine.bus.subscribe("grid.*", lambda _t, e: spacings.append(e.spacing))
    await engine.run()
    assert spacings
    assert min(spacings) >= policy.cost + settings.grid.fee_margin - 1e-15
    assert min(spacings) == pytest.approx(policy.floor)


async def test_each_build_reads_only_the_closed_bars_up_to_its_own(hourly: CandleArrays) -> None:
    """The spacing of every grid build equals `atr_spacing` of the 30 days of bars up to and including
    the bar that built it; wild bars after that (ranges ×5) change none of the earlier builds."""
    settings = load_settings(overrides={**ATR, "grid.atr_multiple": 4.0})
    bars = hourly[:2500]
    cut = 1800
    wild = CandleArrays(ts=bars.ts.copy(), open=bars.open.copy(), high=bars.high.copy(), low=bars.low.copy(),
                        close=bars.close.copy(), volume=bars.volume.copy())
    wild.high[cut:] = np.maximum(wild.open[cut:], wild.close[cut:]) * 1.05
    wild.low[cut:] = np.minimum(wild.open[cut:], wild.close[cut:]) * 0.95

    async def builds(candles: CandleArrays) -> list[tuple[int, float]]:
        engine = build_engine(settings, mode="backtest", candles=candles)
        policy = engine.policy
        assert isinstance(policy, GridPolicy)
        seen: list[tuple[int, float]] = []
        last: list[float | None] = [None]

        def on_grid(_topic: str, e: object) -> None:
            center = getattr(e, "center", None)
            if center and center != last[0]:
                seen.append((engine.run_state.bar_index, float(getattr(e, "spacing", 0.0))))
            last[0] = center

        engine.bus.subscribe("grid.*", on_grid)
        await engine.run()
        return seen

    calm, stormy = await builds(bars), await builds(wild)
    assert len(calm) >= 3
    for i, spacing in calm:
        w = bars[max(i + 1 - SWING_HISTORY_BARS, 0): i + 1]
        policy_floor = GridPolicy(settings).floor
        assert spacing == atr_spacing(w.high, w.low, w.close, bars=14, multiple=4.0, min_spacing=policy_floor,
                                      max_spacing=max(settings.grid.max_spacing, policy_floor),
                                      default=settings.grid.spacing)
    before = [b for b in calm if b[0] < cut]
    assert before and [b for b in stormy if b[0] < cut] == before
    assert [b for b in stormy if b[0] >= cut] != [b for b in calm if b[0] >= cut]  # the wild bars do matter
