"""Trailing orders: the pure step function, the PRD §9.2 example through the order manager, the path model."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.types import Order, OrderStatus, OrderType, Side
from trdr_tui.exchange.fees import FeeSchedule
from trdr_tui.exchange.sim_executor import SimExecutor
from trdr_tui.trading.orders import OrderManager
from trdr_tui.trading.portfolio import Portfolio
from trdr_tui.trading.risk import RiskLimits, RiskManager
from trdr_tui.trading.trailing import TrailingState, initial_trigger, path_prices, trail_step, walk_path


def make_manager(cash: float = 1_000.0, position_price: float | None = 100.0) -> tuple[OrderManager, Portfolio]:
    clock = SimClock(1_000)
    pf = Portfolio("BTC-USD", cash)
    ex = SimExecutor(clock, FeeSchedule.flat(0.006))
    om = OrderManager(symbol="BTC-USD", clock=clock, bus=EventBus(), portfolio=pf,
                      risk=RiskManager(RiskLimits.none(), pf), executor=ex, run_id="t")
    if position_price is not None:  # hold 1 unit to sell
        ex.last_price = position_price
        om.place_market(Side.BUY, 1.0, price=position_price)
    return om, pf


def test_prd_9_2_trailing_sell_follows_price_up_and_fires_on_reversal() -> None:
    om, pf = make_manager()
    before = len(pf.fills)
    order = om.place_trailing(Side.SELL, size=1.0, trail=0.02, price=100.0)
    st = om.trailing[0]
    om.on_prices((105.0,))
    assert st.best == 105.0
    assert st.trigger == pytest.approx(102.9)  # 105 × 0.98
    assert order.status is OrderStatus.ARMED
    om.on_prices((102.5,))
    fills = pf.fills[before:]
    assert len(fills) == 1
    assert abs(fills[0].price - 102.5) < 0.01
    assert order.status is OrderStatus.FILLED
    assert not om.trailing


def test_trailing_buy_mirrors_sell() -> None:
    best, anchor, trigger, fired = trail_step(Side.BUY, 0.02, 100.0, 100.0, 95.0)
    assert (best, anchor) == (95.0, 95.0)
    assert trigger == pytest.approx(96.9)
    assert not fired
    assert trail_step(Side.BUY, 0.02, best, anchor, 96.9)[3]
    assert not trail_step(Side.BUY, 0.02, best, anchor, 96.8)[3]


def test_initial_triggers() -> None:
    assert initial_trigger(Side.SELL, 100.0, 0.02) == pytest.approx(98.0)
    assert initial_trigger(Side.BUY, 100.0, 0.02) == pytest.approx(102.0)


def test_improvement_threshold_reanchors_only_on_big_enough_moves() -> None:
    # 0.05 % up: best follows, the trigger stays on the old anchor
    best, anchor, trigger, _ = trail_step(Side.SELL, 0.02, 100.0, 100.0, 100.05, improvement=0.001)
    assert best == 100.05 and anchor == 100.0 and trigger == pytest.approx(98.0)
    # then 0.2 % above the anchor: re-anchored at the best
    best, anchor, trigger, _ = trail_step(Side.SELL, 0.02, best, anchor, 100.2, improvement=0.001)
    assert anchor == 100.2 and trigger == pytest.approx(100.2 * 0.98)


def test_ohlc_path_goes_to_the_nearer_extreme_first() -> None:
    assert path_prices(100, 101, 90, 95) == (100, 101, 90, 95)
    assert path_prices(100, 110, 99, 105) == (100, 99, 110, 105)


def test_path_fill_is_at_the_trigger_inside_the_bar_and_at_the_open_on_a_gap() -> None:
    order = Order(id="o", client_order_id="c", symbol="BTC-USD", side=Side.SELL, type=OrderType.TRAILING,
                  size=1.0, created_ts=0)
    st = TrailingState(order, 100.0, 0.02)
    # open 100 → high 104 (best 104, trigger 101.92) → low 95 → crossed inside: fill at the trigger
    assert walk_path(st, path_prices(100.0, 104.0, 95.0, 96.0)) == pytest.approx(104 * 0.98)
    st = TrailingState(order, 100.0, 0.02)
    # gap: the bar opens at 90, already below the trigger 98 → fill at the open
    assert walk_path(st, path_prices(90.0, 91.0, 89.0, 90.5)) == 90.0
    st = TrailingState(order, 100.0, 0.02)
    assert walk_path(st, (99.0,)) is None
    assert math.isclose(st.trigger, 98.0)


def test_trailing_state_rejects_bad_trail() -> None:
    om, _ = make_manager(position_price=None)
    with pytest.raises(ValueError, match="trail distance"):
        om.place_trailing(Side.BUY, size=1.0, trail=1.5, price=100.0)
    assert not om.orders and not om.trailing  # refused before anything was created


@given(st.sampled_from([Side.BUY, Side.SELL]), st.floats(0.001, 0.2), st.floats(0.0, 0.01),
       st.lists(st.floats(1.0, 1000.0), min_size=1, max_size=60))
def test_trailing_state_matches_the_pure_step_function(side: Side, trail: float, improvement: float,
                                                       prices: list[float]) -> None:
    order = Order(id="o", client_order_id="c", symbol="BTC-USD", side=side, type=OrderType.TRAILING, size=1.0,
                  created_ts=0)
    st_ = TrailingState(order, prices[0], trail, improvement=improvement)
    best = anchor = prices[0]
    for p in prices[1:]:
        best, anchor, trigger, fired = trail_step(side, trail, best, anchor, p, improvement)
        assert st_.update(p) == fired
        assert (st_.best, st_.anchor, st_.trigger) == (best, anchor, trigger)
        if fired:
            break
