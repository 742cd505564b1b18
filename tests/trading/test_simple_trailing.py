"""The `simple-trailing` preset through the full engine agrees with an independent plain loop and with
the figure other frameworks (backtesting.py, backtrader, vectorbt) produced on the real hourly file."""

from __future__ import annotations

import math
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.types import Liquidity, Side
from trdr_tui.engine.assembly import build_engine
from trdr_tui.trading.sizing import to_decimal

DOCUMENTED_FINAL_EQUITY = 15.6737165617  # from the issue: obtained with three other frameworks


def plain_loop(close: list[float], cash: float = 10_000.0, trail: float = 0.02, frac: float = 0.95,
               fee: float = 0.006) -> tuple[list[tuple[int, str, float, float]], float]:
    """The strategy written out longhand, independent of the engine."""
    fills: list[tuple[int, str, float, float]] = []
    units = 0.0
    lowest = close[0]
    highest = 0.0
    for i, c in enumerate(close):
        if units == 0.0:
            lowest = min(lowest, c)
            if c >= lowest * (1 + trail):
                units = frac * cash / c
                cash -= units * c * (1 + fee)
                highest = c
                fills.append((i, "BUY", c, units))
        else:
            highest = max(highest, c)
            if c <= highest * (1 - trail):
                cash += units * c * (1 - fee)
                fills.append((i, "SELL", c, units))
                units = 0.0
                lowest = c
    return fills, cash + units * close[-1]


async def test_simple_trailing_matches_reference_on_real_hourly_data(hourly: CandleArrays) -> None:
    engine = build_engine(load_settings(), mode="backtest", candles=hourly, preset="simple-trailing")
    await engine.run()
    rec = engine.record
    ref_fills, ref_final = plain_loop(hourly.close.tolist())

    assert len(rec.fills) == 1170
    assert len(rec.trades) == 585
    assert len(ref_fills) == 1170
    assert math.isclose(rec.final_equity, ref_final, rel_tol=1e-6)
    assert math.isclose(rec.final_equity, DOCUMENTED_FINAL_EQUITY, rel_tol=1e-6)
    assert round(rec.final_equity, 2) == 15.67

    # fill by fill: same bar (close time = bar open + 1h), side, price and size
    hour = 3_600_000_000_000
    for fill, (i, side, price, units) in zip(rec.fills, ref_fills, strict=True):
        assert fill.ts == int(hourly.ts[i]) + hour
        assert fill.side is Side(side)
        assert fill.price == price
        # the preset's sizes are on a 1e-12 step (exact ledger): within one step of the longhand units
        assert math.isclose(fill.size, units, rel_tol=1e-12, abs_tol=1e-12)
        assert to_decimal(fill.size) % Decimal("1e-12") == 0
        assert fill.liquidity is Liquidity.TAKER
        assert math.isclose(fill.fee, 0.006 * fill.price * fill.size, rel_tol=1e-12)
    assert len({f.ts for f in rec.fills}) == len(rec.fills)  # at most one fill per bar

    curve = rec.equity_curve()
    assert len(curve.equity) == len(hourly)
    assert curve.equity[-1] == rec.final_equity
    assert curve.equity[0] == 10_000.0
    assert math.isclose(rec.fees, sum(f.fee for f in rec.fills), rel_tol=1e-12)
    # equity change = realized + unrealized − fees
    pf = engine.portfolio
    change = rec.final_equity - 10_000.0
    assert math.isclose(change, pf.realized_pnl + pf.unrealized_pnl(float(hourly.close[-1])) - pf.fees,
                        rel_tol=1e-9, abs_tol=1e-6)
    assert rec.rejected_orders == 0
    # the exact ledger: flat at the end with no lot left, and its identity holds to the last digit
    last = to_decimal(float(hourly.close[-1]))
    assert pf.position_exact == 0 and pf.lots == []
    assert pf.equity_exact(last) - pf.initial_exact == pf.realized_exact + pf.unrealized_exact(last) - pf.fees_exact
    assert rec.final_equity == float(pf.cash_exact)


async def test_simple_trailing_is_deterministic(hourly: CandleArrays) -> None:
    part = hourly[:3000]
    results = []
    for _ in range(2):
        engine = build_engine(load_settings(), mode="backtest", candles=part, preset="simple-trailing")
        await engine.run()
        results.append(([(f.ts, f.price, f.size, f.fee) for f in engine.record.fills],
                        engine.record.equity_curve().equity.tobytes()))
    assert results[0] == results[1]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-0.04, 0.04), min_size=2, max_size=300), st.floats(10.0, 50_000.0))
def test_engine_matches_the_plain_loop_on_random_series(steps: list[float], start: float) -> None:
    import asyncio

    import numpy as np

    close = start * np.cumprod(1.0 + np.asarray(steps))
    n = len(close)
    ts = 1_500_000_000_000_000_000 + 3_600_000_000_000 * np.arange(n, dtype=np.int64)
    bars = CandleArrays(ts, close.copy(), close.copy(), close.copy(), close.copy(), np.ones(n))
    engine = build_engine(load_settings(), mode="backtest", candles=bars, preset="simple-trailing")
    asyncio.run(engine.run())
    ref_fills, ref_final = plain_loop(close.tolist())
    assert [(int(ts[i]) + 3_600_000_000_000, side, price) for i, side, price, _ in ref_fills] == \
        [(f.ts, f.side.value, f.price) for f in engine.record.fills]
    assert math.isclose(engine.record.final_equity, ref_final, rel_tol=1e-9)
    assert (engine.record.equity_curve().cash >= 0).all()
