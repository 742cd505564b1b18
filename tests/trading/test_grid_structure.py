"""The grid's structural options: stocked upper levels (a classic grid started at the price), a regime
exit only below the lowest level, and a rebuild after an exit only in an uptrend."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.types import Liquidity, OrderType, Side
from trdr_tui.engine.assembly import build_engine
from trdr_tui.trading.grid import GridPolicy
from trdr_tui.trading.portfolio import Portfolio
from trdr_tui.trading.risk import RiskLimits, RiskManager

STRUCTURE = {"grid.seed_inventory": True, "grid.regime_exit": True, "grid.rebuild_in_uptrend": True}


async def test_stocked_levels_hold_one_market_buy_split_evenly_each_with_a_take_profit(hourly: CandleArrays) -> None:
    engine = build_engine(load_settings(overrides=STRUCTURE), mode="backtest", candles=hourly[:800])
    policy = engine.policy
    assert isinstance(policy, GridPolicy)
    stocked: list[tuple[float, list[tuple[int, float]], float]] = []  # (center, [(level, lot)], fill size)
    original = policy._on_fill

    def spy(order, fill, trade):  # type: ignore[no-untyped-def]
        before = {lv.index: lv.lot for lv in policy.levels}
        original(order, fill, trade)
        if order.metadata.get("grid_leg") == "stock":
            assert policy.center is not None
            stocked.append((policy.center, [(lv.index, lv.lot - before[lv.index]) for lv in policy.levels],
                            fill.size))

    policy.orders.fill_listeners[policy.orders.fill_listeners.index(original)] = spy
    await engine.run()
    assert stocked, "the grid was built and stocked"
    center, added, size = stocked[0]
    prices = {lv.index: lv.price for lv in policy.levels} if policy.center == center else None
    got = [lot for _k, lot in added if lot > 0]
    n = policy.cfg.levels // 2  # the levels from the center up, without the top one
    assert len(got) == n and all(lot == pytest.approx(size / n) for lot in got)
    assert [k for k, lot in added if lot > 0] == list(range(n, 2 * n))
    stock_orders = [o for o in engine.record.orders if o.metadata.get("grid_leg") == "stock"]
    assert all(o.type is OrderType.MARKET and o.side is Side.BUY for o in stock_orders)
    # every stocked level's lot is offered by a post-only take-profit one spacing above its level
    exits = [o for o in engine.record.orders if o.metadata.get("grid_leg") == "exit"]
    assert exits and all(o.type is OrderType.LIMIT for o in exits)
    if prices is not None:
        for o in exits:
            k = int(o.metadata["grid_level"])  # type: ignore[arg-type]
            assert o.price is not None and o.price >= prices[k] * (1.0 + policy.spacing) * (1 - 1e-9)
    assert all(f.liquidity is Liquidity.MAKER for f in engine.record.fills
               if engine.record.orders and f.order_id in {o.id for o in exits})


async def test_a_regime_exit_fires_only_below_the_lowest_level_by_costs(hourly: CandleArrays) -> None:
    engine = build_engine(load_settings(overrides=STRUCTURE), mode="backtest", candles=hourly[4000:9000])
    policy = engine.policy
    assert isinstance(policy, GridPolicy)
    exits: list[tuple[float, float, bool]] = []  # (close, lowest level, downtrend)
    original = policy._start_exit

    def spy(ts: int, close: float, reason: str) -> None:
        exits.append((close, policy.levels[0].price, policy.downtrend(close)))
        original(ts, close, reason)

    policy._start_exit = spy  # type: ignore[method-assign]
    await engine.run()
    assert exits, "the slice has falls through the grid"
    for close, lowest, down in exits:
        assert close < lowest * (1.0 - policy.cost)  # never inside the grid
        assert down


async def test_after_an_exit_the_grid_is_rebuilt_only_in_an_uptrend(hourly: CandleArrays) -> None:
    engine = build_engine(load_settings(overrides=STRUCTURE), mode="backtest", candles=hourly[4000:9000])
    policy = engine.policy
    assert isinstance(policy, GridPolicy)
    builds: list[tuple[bool, bool]] = []  # (after an exit, fast EMA above the slow one)
    original = policy.build

    def spy(center: float, ts: int) -> None:
        builds.append((policy.await_uptrend, policy._uptrend()))
        original(center, ts)

    policy.build = spy  # type: ignore[method-assign]
    after_exit = {"n": 0}
    start_exit = policy._start_exit

    def count(ts: int, close: float, reason: str) -> None:
        after_exit["n"] += 1
        start_exit(ts, close, reason)

    policy._start_exit = count  # type: ignore[method-assign]
    await engine.run()
    assert after_exit["n"] > 0
    rebuilt = [up for pending, up in builds if pending]
    assert rebuilt and all(rebuilt)


@pytest.mark.parametrize("max_drawdown", [0.10, 0.15, 0.25])
def test_the_position_cap_shrinks_with_the_drawdown_budget_left(max_drawdown: float) -> None:
    pf = Portfolio("BTC-USD", 10_000.0)  # all cash: equity 10,000
    peak = 10_000.0 / (1.0 - max_drawdown / 2)  # half the drawdown budget is spent
    risk = RiskManager(RiskLimits(max_drawdown=max_drawdown, daily_loss_limit=None, max_position=0.5,
                                  drawdown_scaling=True), pf)
    risk.on_mark(0, peak)
    assert risk.position_cap(peak) == pytest.approx(0.5)  # at the peak: max_position
    caps = [risk.position_cap(peak * (1.0 - d)) for d in np.linspace(0.0, max_drawdown, 11)]
    assert all(a > b for a, b in itertools.pairwise(caps))  # strictly less the deeper the drawdown
    assert caps[-1] == pytest.approx(0.0, abs=1e-12)  # nothing at the drawdown limit
    assert risk.position_cap(peak * (1.0 - max_drawdown - 0.05)) == 0.0  # nor beyond
    # the BUY check enforces the cap the sizing reads (CPPI: m × cushion / equity)
    cap = risk.position_cap(10_000.0)
    assert cap == pytest.approx(0.5 / max_drawdown * (1.0 - (1.0 - max_drawdown) * peak / 10_000.0))
    assert risk.failed_checks(Side.BUY, cap * 10_000.0 / 100.0 * 0.99, 100.0) == []
    assert risk.failed_checks(Side.BUY, cap * 10_000.0 / 100.0 * 1.01, 100.0) == ["max_position"]
    limit = risk.position_limit(100.0)
    assert limit is not None and limit == pytest.approx(cap * 10_000.0 / 100.0)


def test_without_drawdown_scaling_the_cap_is_max_position() -> None:
    pf = Portfolio("BTC-USD", 10_000.0)
    risk = RiskManager(RiskLimits(max_drawdown=0.15, max_position=0.25), pf)
    risk.on_mark(0, 10_000.0)
    assert risk.position_cap(9_000.0) == 0.25
