"""SimExecutor and the order manager: fee tiers, slippage, limit fills, partial fills, expiry."""

from __future__ import annotations

import pytest

from trdr_tui.config import load_settings
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.types import Liquidity, OrderStatus, Side
from trdr_tui.exchange.fees import THIRTY_DAYS_NS, FeeSchedule, VolumeTracker
from trdr_tui.exchange.sim_executor import SimExecutor, SlippageModel
from trdr_tui.trading.orders import OrderManager, should_improve, smart_order_type
from trdr_tui.trading.portfolio import Portfolio
from trdr_tui.trading.risk import RiskLimits, RiskManager

HOUR = 3_600_000_000_000


def setup(cash: float = 100_000.0, **ex_kw: object) -> tuple[SimClock, SimExecutor, OrderManager, Portfolio]:
    clock = SimClock(0)
    pf = Portfolio("BTC-USD", cash)
    fees = ex_kw.pop("fees", FeeSchedule.from_config(load_settings().fees))
    ex = SimExecutor(clock, fees, **ex_kw)  # type: ignore[arg-type]
    om = OrderManager(symbol="BTC-USD", clock=clock, bus=EventBus(), portfolio=pf,
                      risk=RiskManager(RiskLimits.none(), pf), executor=ex, run_id="x",
                      max_duration_ns=72 * HOUR)
    return clock, ex, om, pf


def test_fee_tiers_by_30_day_volume() -> None:
    fees = FeeSchedule.from_config(load_settings().fees)
    assert fees.rate(Liquidity.TAKER) == 0.006 and fees.rate(Liquidity.MAKER) == 0.004  # default tier
    assert fees.rate(Liquidity.TAKER, 25_000) == 0.004
    assert fees.rate(Liquidity.MAKER, 2_000_000) == 0.0008
    assert fees.rate(Liquidity.TAKER, 500_000_000) == 0.0005
    vt = VolumeTracker(5_000.0)
    vt.add(0, 6_000.0)
    assert vt.volume(1) == 11_000.0
    assert vt.volume(THIRTY_DAYS_NS + 1) == 5_000.0  # the fill left the window


def test_market_order_pays_taker_and_slippage() -> None:
    _, ex, om, pf = setup(slippage=SlippageModel(half_spread=0.001, impact=0.1))
    ex.set_market(100.0, 100.0)
    om.place_market(Side.BUY, 10.0, price=100.0)
    f = pf.fills[-1]
    assert f.liquidity is Liquidity.TAKER
    assert f.price == pytest.approx(100.0 * (1 + 0.001 + 0.1 * 10 / 100))
    assert f.fee == pytest.approx(f.price * 10.0 * 0.006)


def test_simulated_volume_moves_the_fee_tier() -> None:
    _, ex, om, pf = setup(base_volume_usd=9_000.0)
    ex.set_market(1_000.0, 1e9)
    om.place_market(Side.BUY, 2.0, price=1_000.0)  # at 9,000 volume: 0.6 %
    om.place_market(Side.SELL, 2.0, price=1_000.0)  # 11,000 volume now: 0.4 %
    assert [round(f.fee / (f.price * f.size), 6) for f in pf.fills] == [0.006, 0.004]


def test_limit_fills_only_when_traded_through_with_maker_fee_and_volume_cap() -> None:
    _, ex, om, pf = setup(max_volume_share=0.10)
    order = om.place_limit(Side.BUY, 5.0, 100.0)
    assert order.status is OrderStatus.SUBMITTED and order.id in ex.resting
    ex.on_bar(high=105.0, low=100.0, close=102.0, volume=1_000.0)  # touched, not through
    assert not pf.fills
    ex.on_bar(high=101.0, low=99.0, close=100.5, volume=30.0)  # through: at most 3 units
    assert order.status is OrderStatus.PARTIAL and order.filled_size == pytest.approx(3.0)
    f = pf.fills[-1]
    assert (f.price, f.liquidity) == (100.0, Liquidity.MAKER) and f.fee == pytest.approx(300.0 * 0.004)
    ex.on_bar(high=101.0, low=99.0, close=100.5, volume=11.0)  # +1.1 → 82 % filled: the rest is cancelled
    assert order.status is OrderStatus.CANCELLED
    assert order.filled_size == pytest.approx(4.1)
    assert [t.to_status for t in order.history] == [OrderStatus.SUBMITTED, OrderStatus.PARTIAL,
                                                    OrderStatus.PARTIAL, OrderStatus.CANCELLED]
    assert "80%" in order.history[-1].reason and order.id not in ex.resting


def test_trailing_order_expires_after_max_duration() -> None:
    clock, _, om, _ = setup()
    order = om.place_trailing(Side.BUY, size=1.0, trail=0.02, price=100.0)
    clock.advance_to(71 * HOUR)
    om.expire(clock.now_ns())
    assert order.status is OrderStatus.ARMED
    clock.advance_to(72 * HOUR)
    om.expire(clock.now_ns())
    assert order.status is OrderStatus.EXPIRED and not om.trailing and not om.open
    assert order.history[-1].ts == 72 * HOUR


def test_cancel_armed_and_unknown_reports() -> None:
    from trdr_tui.core.engine_api import ExecutionReport
    from trdr_tui.core.errors import InvalidResponse

    _, _, om, _ = setup()
    order = om.place_trailing(Side.BUY, size=1.0, trail=0.02, price=100.0)
    om.cancel(order, "user")
    assert order.status is OrderStatus.CANCELLED and not om.trailing
    om.cancel(order)  # cancelling a closed order does nothing
    with pytest.raises(InvalidResponse):
        om.on_report(ExecutionReport(ts=0, order_id="nope", client_order_id="c", status=OrderStatus.FILLED))


def test_quote_sized_buy_gets_its_size_at_the_trigger() -> None:
    _, _, om, pf = setup(fees=FeeSchedule.flat(0.006))
    order = om.place_trailing(Side.BUY, quote=950.0, trail=0.02, price=100.0)
    om.on_price(90.0)
    om.on_price(91.8)  # 90 × 1.02
    assert order.status is OrderStatus.FILLED
    assert order.size == pytest.approx(950.0 / 91.8) and pf.fills[-1].price == 91.8


def test_placement_helpers() -> None:
    assert smart_order_type(0.003, 0.002).value == "LIMIT"
    assert smart_order_type(0.001, 0.002).value == "MARKET"
    assert should_improve(Side.BUY, 100.0, 99.8, 0.001)
    assert not should_improve(Side.BUY, 100.0, 99.95, 0.001)
    assert should_improve(Side.SELL, 100.0, 100.2, 0.001)


def test_smart_placement_rests_a_fired_order_at_the_mid_when_the_spread_is_wide() -> None:
    _, ex, om, pf = setup()
    om.smart_spread = 0.002
    om.book = (99.0, 101.0)  # 2 % wide
    order = om.place_trailing(Side.BUY, size=1.0, trail=0.02, price=100.0)
    om.on_price(102.0)
    assert order.type.value == "LIMIT" and order.price == 100.0 and order.id in ex.resting
    assert not pf.fills
    ex.on_bar(high=101.0, low=99.5, close=100.0, volume=1_000.0)  # trades through the mid
    assert order.status is OrderStatus.FILLED and pf.fills[-1].liquidity is Liquidity.MAKER
    om.book = (99.95, 100.05)  # 0.1 %: tight, the next one goes at market
    sell = om.place_trailing(Side.SELL, size=1.0, trail=0.02, price=100.0)
    om.on_price(97.0)
    assert sell.type.value == "TRAILING" and pf.fills[-1].liquidity is Liquidity.TAKER


def test_a_smart_limit_that_never_fills_is_cancelled_at_its_time_limit() -> None:
    clock, ex, om, _ = setup()
    om.smart_spread = 0.002
    om.book = (99.0, 101.0)
    order = om.place_trailing(Side.BUY, size=1.0, trail=0.02, price=100.0)
    om.on_price(102.0)
    assert order.id in ex.resting
    clock.advance_to(72 * HOUR)
    om.expire(clock.now_ns())
    assert order.status is OrderStatus.CANCELLED and order.history[-1].reason == "time limit reached"
    assert order.id not in ex.resting


def test_market_order_is_ioc_capped_by_the_bar_volume() -> None:
    """An order four times the cap fills the capped share at the impacted price; the rest is cancelled."""
    _, ex, om, pf = setup(slippage=SlippageModel(half_spread=0.001, impact=0.1), max_volume_share=0.1)
    ex.set_market(100.0, 50.0)  # cap: 5 units
    order = om.place_market(Side.BUY, 20.0, price=100.0)
    assert [f.size for f in pf.fills] == [pytest.approx(5.0)]
    assert pf.fills[0].price == pytest.approx(100.0 * (1 + 0.001 + 0.1 * 5 / 50))
    assert order.status is OrderStatus.CANCELLED and order.filled_size == pytest.approx(5.0)
    assert "IOC" in order.history[-1].reason and order.id not in om.open
    assert pf.position == pytest.approx(5.0)


def test_market_order_in_a_bar_without_volume_fills_nothing() -> None:
    _, ex, om, pf = setup(slippage=SlippageModel(half_spread=0.001, impact=0.1))
    ex.set_market(100.0, 0.0)
    order = om.place_market(Side.BUY, 1.0, price=100.0)
    assert pf.fills == [] and order.status is OrderStatus.CANCELLED and pf.cash == 100_000.0


def test_no_simulated_price_is_negative_even_for_an_order_far_above_the_bar_volume() -> None:
    """Half-spread + impact × (size / volume) used to exceed 1 here and sell at a negative price."""
    _, ex, om, pf = setup(cash=200_000.0, slippage=SlippageModel(half_spread=0.001, impact=0.1))
    ex.set_market(100.0, 1e9)
    om.place_market(Side.BUY, 1_000.0, price=100.0)  # a position of 1,000 to sell
    ex.set_market(100.0, 1.0)
    om.place_market(Side.SELL, 1_000.0, price=100.0)
    assert len(pf.fills) == 2 and pf.fills[1].size == pytest.approx(0.1)
    assert pf.fills[1].price == pytest.approx(100.0 * (1 - 0.001 - 0.1 * 0.1 / 1.0))
    # the model alone, uncapped: the move is bounded, the price stays positive
    assert SlippageModel(0.001, 0.1).adjust(Side.SELL, 100.0, 1_000.0, 1.0) > 0.0


def test_ideal_executor_without_the_taker_cap_fills_everything() -> None:
    _, ex, om, pf = setup(taker_volume_cap=False)
    ex.set_market(100.0, 1.0)
    order = om.place_market(Side.BUY, 20.0, price=100.0)
    assert order.status is OrderStatus.FILLED and pf.fills[0].size == 20.0 and pf.fills[0].price == 100.0
