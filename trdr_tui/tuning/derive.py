"""Self-tuning from three inputs (PRD §3.5): symbol, capital, risk tolerance → every other value.

Inputs besides the three: market statistics of the last 30 days of bars, the fee tier and the risk
profile (`trdr_tui.config.RISK_PROFILES`). Each derived value carries its formula and inputs, which
`trdr tune --explain` prints.

Market statistics over the window (the last `WINDOW_DAYS` days before the last bar):

- average swing: mean of |p[k+1] − p[k]| / p[k] over the alternating swing pivots of the window
  (`trdr_tui.trading.grid.swing_pivots`, lookback `grid.swing_lookback`), as the grid measures it;
- volatility ratio: standard deviation of bar log returns over the last 7 days ÷ the same over
  the whole window (1.0 = as usual, 2.0 = twice as restless as the month).

Derived (PRD §3.5 `initializeFromMinimalConfig`):

- round-trip cost = entry fee + exit fee + 2 × half-spread with the fees of the orders the grid uses:
  a post-only BUY at the level (maker) and a post-only take-profit (maker; taker with
  `grid.trailing_exits`); spacing floor = max(`grid.cost_multiple` × cost, cost + `grid.fee_margin`,
  `grid.min_spacing`). Both come
  from `trdr_tui.trading.grid.fee_floor`, the function the grid itself uses;
- grid spacing = min(max(swing_fraction × average swing, floor), max(max_spacing, floor)); with
  `grid.spacing_method = "atr"`, atr_multiple × ATR(atr_bars) / close of the window's last bar in place
  of swing_fraction × average swing (Wilder's ATR, `trdr_tui.trading.grid.atr_spacing`, as the grid
  computes it);
- trail distance = clamp(trail base × volatility ratio, min_distance, min(max_distance, spacing / 2)):
  the trail never gives back more than half the spacing;
- position size (capital per grid level) = capital × risk.max_position / grid.levels with stocked
  levels (`grid.seed_inventory`), else capital × sizing.base_fraction;
- max concurrent trades = floor(max drawdown / 0.05), at least 1;
- max drawdown and confidence threshold: the risk profile's.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np

from trdr_tui.config import DRAWDOWN_PER_CONCURRENT_TRADE, RISK_PROFILES, Settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import DataError
from trdr_tui.core.volatility import atr
from trdr_tui.trading.grid import atr_spacing, fee_floor, swing_pivots

WINDOW_DAYS = 30
SHORT_DAYS = 7
DAY_NS = 86_400_000_000_000


class Derived(msgspec.Struct, frozen=True, kw_only=True):
    key: str            # dotted config key, or `market.*` / `sizing.position_size_usd` for statistics
    value: float
    formula: str
    inputs: dict[str, Any]


class MarketStats(msgspec.Struct, frozen=True, kw_only=True):
    average_swing: float
    volatility_ratio: float
    bars: int
    start_ts: int
    end_ts: int


def market_stats(bars: CandleArrays, lookback: int) -> MarketStats:
    """Statistics of the last 30 days of `bars` (see the module docstring). Raises DataError when
    the window holds too few bars or swings to measure."""
    if len(bars) == 0:
        raise DataError("no bars to derive parameters from", hint="import candles first: trdr data import FILE")
    end = int(bars.ts[-1])
    w = bars[int(np.searchsorted(bars.ts, end - WINDOW_DAYS * DAY_NS, side="right")):]
    pivots = swing_pivots(w.high, w.low, lookback)
    if len(pivots) < 3:
        raise DataError(f"the last {WINDOW_DAYS} days ({len(w)} bars) show fewer than 3 swing pivots",
                        hint="derive from more or finer bars")
    p = np.asarray(pivots)
    swing = float(np.mean(np.abs(np.diff(p)) / p[:-1]))
    r = np.diff(np.log(w.close))
    short = r[np.asarray(w.ts[1:]) > end - SHORT_DAYS * DAY_NS]
    whole = float(r.std(ddof=1)) if r.shape[0] > 1 else 0.0
    ratio = float(short.std(ddof=1)) / whole if short.shape[0] > 1 and whole > 0 else 1.0
    return MarketStats(average_swing=swing, volatility_ratio=ratio, bars=len(w), start_ts=int(w.ts[0]), end_ts=end)


def derive(settings: Settings, bars: CandleArrays) -> list[Derived]:
    """Every self-tuned value with its formula and inputs (see the module docstring)."""
    stats = market_stats(bars, settings.grid.swing_lookback)
    profile = RISK_PROFILES[settings.risk_tolerance]
    g, tr = settings.grid, settings.trailing
    fees = fee_floor(settings)
    cost, floor = fees.cost, fees.floor
    raw = g.swing_fraction * stats.average_swing
    top = max(g.max_spacing, floor)
    spacing = min(max(raw, floor), top)
    spacing_rows = [
        Derived(key="grid.spacing", value=spacing,
                formula="min(max(swing_fraction × average_swing, spacing_floor), max(max_spacing, spacing_floor))",
                inputs={"swing_fraction": g.swing_fraction, "average_swing": stats.average_swing,
                        "spacing_floor": floor, "max_spacing": g.max_spacing})]
    if g.spacing_method == "atr":
        w = bars[int(np.searchsorted(bars.ts, stats.start_ts)):]
        if len(w) < g.atr_bars:
            raise DataError(f"the last {WINDOW_DAYS} days hold {len(w)} bars, fewer than grid.atr_bars "
                            f"({g.atr_bars})", hint="derive from more or finer bars, or lower grid.atr_bars")
        atr_fraction = float(atr(w.high, w.low, w.close, g.atr_bars)[-1] / w.close[-1])
        spacing = atr_spacing(w.high, w.low, w.close, bars=g.atr_bars, multiple=g.atr_multiple, min_spacing=floor,
                              max_spacing=top, default=g.spacing)
        spacing_rows = [
            Derived(key="market.atr_fraction", value=atr_fraction,
                    formula=f"Wilder's ATR({g.atr_bars} bars) / close, at the last bar",
                    inputs={"bars": len(w), "atr_bars": g.atr_bars}),
            Derived(key="grid.spacing", value=spacing,
                    formula="min(max(atr_multiple × atr_fraction, spacing_floor), max(max_spacing, spacing_floor))",
                    inputs={"atr_multiple": g.atr_multiple, "atr_fraction": atr_fraction,
                            "spacing_floor": floor, "max_spacing": g.max_spacing})]
    trail_raw = profile.trail_base * stats.volatility_ratio
    trail_cap = min(tr.max_distance, spacing / 2)
    trail = min(max(trail_raw, tr.min_distance), trail_cap)
    conc = max(1, math.floor(round(profile.max_drawdown / DRAWDOWN_PER_CONCURRENT_TRADE, 9)))
    return [
        Derived(key="market.average_swing", value=stats.average_swing,
                formula=f"mean |Δpivot| / pivot over the last {WINDOW_DAYS} days",
                inputs={"bars": stats.bars, "swing_lookback": g.swing_lookback}),
        Derived(key="market.volatility_ratio", value=stats.volatility_ratio,
                formula=f"σ(log returns, {SHORT_DAYS} d) / σ(log returns, {WINDOW_DAYS} d)", inputs={"bars": stats.bars}),
        Derived(key="fees.round_trip_cost", value=cost,
                formula=f"entry fee (maker: post-only level) + exit fee ({fees.exit_order}) + 2 × half_spread",
                inputs={"tier": settings.fees.tier, "maker": fees.maker, "taker": fees.taker,
                        "entry_fee": fees.entry_fee, "exit_fee": fees.exit_fee, "half_spread": fees.half_spread}),
        Derived(key="grid.spacing_floor", value=floor,
                formula="max(cost_multiple × round_trip_cost, round_trip_cost + fee_margin, min_spacing)",
                inputs={"round_trip_cost": cost, "cost_multiple": fees.cost_multiple, "fee_margin": fees.fee_margin,
                        "min_spacing": fees.min_spacing}),
        *spacing_rows,
        Derived(key="trailing.distance", value=trail,
                formula="clamp(trail_base × volatility_ratio, min_distance, min(max_distance, spacing / 2))",
                inputs={"trail_base": profile.trail_base, "volatility_ratio": stats.volatility_ratio,
                        "min_distance": tr.min_distance, "max_distance": tr.max_distance, "spacing": spacing}),
        Derived(key="sizing.position_size_usd", value=settings.capital * settings.risk.max_position / g.levels,
                formula="capital × max_position / levels (stocked grid)",
                inputs={"capital": settings.capital, "max_position": settings.risk.max_position, "levels": g.levels})
        if g.seed_inventory else
        Derived(key="sizing.position_size_usd", value=settings.capital * settings.sizing.base_fraction,
                formula="capital × base_fraction",
                inputs={"capital": settings.capital, "base_fraction": settings.sizing.base_fraction}),
        Derived(key="risk.max_concurrent_trades", value=float(conc),
                formula=f"max(1, floor(max_drawdown / {DRAWDOWN_PER_CONCURRENT_TRADE}))",
                inputs={"max_drawdown": profile.max_drawdown}),
        Derived(key="risk.max_drawdown", value=profile.max_drawdown, formula="risk profile",
                inputs={"risk_tolerance": settings.risk_tolerance}),
        Derived(key="agents.min_confidence", value=profile.min_confidence, formula="risk profile",
                inputs={"risk_tolerance": settings.risk_tolerance}),
    ]
