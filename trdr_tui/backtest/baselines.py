"""Baselines every result is compared with: buy-and-hold and a classic fixed grid.

Both run on the same bars, with the same starting capital and the same fee schedule as the bot,
so a user sees at a glance whether the bot earned its keep. Like the bot's, their final equity
marks any open position to the last close (no exit fee charged on it).

The fixed grid is the textbook static grid: `levels` geometric cells of width `spacing` centred on
the first close, never re-centred. Each cell owns an equal share of the capital and either waits to
buy at its lower edge or, holding coin, to sell at its upper edge (post-only limit orders: maker
fee). Cells above the start price begin holding coin bought at the first close (taker fee). Bars are
walked along the same intrabar path as the engine's default model: open → the extreme nearer the
open → the other extreme → close.
"""

from __future__ import annotations

import itertools
import math

import msgspec
import numpy as np

from trdr_tui.backtest.results import F64
from trdr_tui.core.arrays import CandleArrays


class BaselineResult(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    equity: F64
    fills: int
    round_trips: int
    fees_paid: float
    maker_fills: int = 0  # fills that rested as post-only limits (maker fee); the rest took liquidity


def buy_and_hold(candles: CandleArrays, capital: float, taker_fee: float) -> BaselineResult:
    """All in at the first bar's close paying the taker fee, then marked to market each bar."""
    if len(candles) == 0:
        return BaselineResult(name="buy_and_hold", equity=np.zeros(0), fills=0, round_trips=0, fees_paid=0.0)
    price0 = float(candles.close[0])
    units = capital / (price0 * (1.0 + taker_fee))
    fee = units * price0 * taker_fee
    equity = units * candles.close
    return BaselineResult(name="buy_and_hold", equity=equity.astype(np.float64), fills=1, round_trips=0,
                          fees_paid=float(fee))


def _path(o: float, h: float, lo: float, c: float) -> tuple[float, float, float, float]:
    """open → the extreme nearer the open → the other extreme → close."""
    if (h - o) <= (o - lo):
        return o, h, lo, c
    return o, lo, h, c


def fixed_grid(
    candles: CandleArrays,
    capital: float,
    *,
    spacing: float,
    levels: int,
    maker_fee: float,
    taker_fee: float,
) -> BaselineResult:
    """Simulate the classic static grid on the bars (see the module docstring)."""
    n = len(candles)
    if n == 0:
        return BaselineResult(name="fixed_grid", equity=np.zeros(0), fills=0, round_trips=0, fees_paid=0.0)
    if levels < 1 or spacing <= 0:
        raise ValueError("fixed grid needs levels ≥ 1 and spacing > 0")
    p0 = float(candles.close[0])
    step = 1.0 + spacing
    k = np.arange(levels + 1) - levels / 2.0
    edges = p0 * step ** k  # levels + 1 edges, levels cells
    lower, upper = edges[:-1], edges[1:]
    budget = capital / levels
    holding = lower >= p0  # cells wholly above the start price begin holding coin
    qty = np.where(holding, budget / (p0 * (1.0 + taker_fee)), budget / (lower * (1.0 + maker_fee)))
    fees = float((qty[holding] * p0 * taker_fee).sum())
    cash = capital - float((qty[holding] * p0 * (1.0 + taker_fee)).sum())
    fills = int(np.count_nonzero(holding))
    trips = 0
    coin = float(qty[holding].sum())
    equity = np.empty(n)

    # Only bars whose range (including the gap from the previous close) reaches a cell edge can
    # fill anything: find them vectorized, conservatively (the loop below checks exactly).
    prev_close = np.concatenate(([candles.open[0]], candles.close[:-1]))
    span_lo = np.minimum(candles.low, prev_close)
    span_hi = np.maximum(candles.high, prev_close)
    ls = math.log(step)
    lo_f = np.log(span_lo / edges[0]) / ls
    hi_f = np.log(span_hi / edges[0]) / ls
    touches = np.ceil(lo_f - 1e-9) <= np.floor(hi_f + 1e-9)
    touches &= (span_hi >= edges[0] * (1 - 1e-12)) & (span_lo <= edges[-1] * (1 + 1e-12))
    active = np.flatnonzero(touches)

    o_, h_, l_, c_ = (candles.open.tolist(), candles.high.tolist(), candles.low.tolist(), candles.close.tolist())
    pc_ = prev_close.tolist()
    lower_l, upper_l, qty_l = lower.tolist(), upper.tolist(), qty.tolist()
    hold_l = holding.tolist()
    close = candles.close
    start = 0
    for i in active.tolist():
        # bars before i: nothing filled, equity just moves with the price
        equity[start:i] = cash + coin * close[start:i]
        path = (pc_[i], *_path(o_[i], h_[i], l_[i], c_[i]))
        for seg, (a, b) in enumerate(itertools.pairwise(path)):
            gap = seg == 0  # previous close → open: a resting order fills at the open
            if b < a:  # falling: cells waiting to buy fill at their lower edge
                for j in range(levels):
                    if not hold_l[j] and b <= lower_l[j] < a:
                        px = b if gap else lower_l[j]
                        fee = qty_l[j] * px * maker_fee
                        cash -= qty_l[j] * px + fee
                        coin += qty_l[j]
                        fees += fee
                        fills += 1
                        hold_l[j] = True
            elif b > a:  # rising: cells holding coin sell at their upper edge
                for j in range(levels):
                    if hold_l[j] and a < upper_l[j] <= b:
                        px = b if gap else upper_l[j]
                        fee = qty_l[j] * px * maker_fee
                        cash += qty_l[j] * px - fee
                        coin -= qty_l[j]
                        fees += fee
                        fills += 1
                        trips += 1
                        hold_l[j] = False
        equity[i] = cash + coin * close[i]
        start = i + 1
    equity[start:] = cash + coin * close[start:]
    return BaselineResult(name="fixed_grid", equity=equity, fills=fills, round_trips=trips, fees_paid=fees,
                          maker_fills=fills - int(np.count_nonzero(holding)))
