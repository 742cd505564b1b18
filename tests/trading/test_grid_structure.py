"""The grid's structural options: stocked upper levels (a classic grid started at the price), a regime
exit only below the lowest level, and a rebuild after an exit only in an uptrend."""

from __future__ import annotations

import pytest

from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.types import Liquidity, OrderType, Side
from trdr_tui.engine.assembly import build_engine
from trdr_tui.trading.grid import GridPolicy

STRUCTURE = {"grid.seed_inventory": True, "grid.regime_exit": True, "grid.rebuild_in_uptrend": True,
             "risk.max_concurrent_trades": 4, "risk.max_position": 0.5, "sizing.base_fraction": 0.08}


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
