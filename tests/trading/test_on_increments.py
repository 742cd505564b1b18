"""Every size and price handed to the executor and the ledger is on the product's increments: the
order manager floors sizes and rounds limit prices, the simulator floors IOC and partial-fill sizes
and rounds taker prices against the taker, and the exact ledger checks what it books."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trdr_tui.config import load_settings
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.errors import StateCorruption
from trdr_tui.core.types import Fill, Liquidity, OrderStatus, Side
from trdr_tui.exchange.fees import FeeSchedule
from trdr_tui.exchange.sim_executor import SimExecutor, SlippageModel
from trdr_tui.trading.orders import OrderManager
from trdr_tui.trading.portfolio import Portfolio
from trdr_tui.trading.risk import RiskLimits, RiskManager
from trdr_tui.trading.sizing import ProductSpec, to_decimal

BTC_USD = ProductSpec().increments  # 1e-8 BTC, 0.01 USD


def setup(cash: float = 100_000.0, **ex_kw: object) -> tuple[SimExecutor, OrderManager, Portfolio]:
    clock = SimClock(0)
    pf = Portfolio("BTC-USD", cash, increments=BTC_USD)
    ex = SimExecutor(clock, FeeSchedule.from_config(load_settings().fees), increments=BTC_USD,
                     **ex_kw)  # type: ignore[arg-type]
    om = OrderManager(symbol="BTC-USD", clock=clock, bus=EventBus(), portfolio=pf,
                      risk=RiskManager(RiskLimits.none(), pf), executor=ex, run_id="x", increments=BTC_USD)
    return ex, om, pf


def on_steps(f: Fill) -> bool:
    return to_decimal(f.size) % BTC_USD.base == 0 and to_decimal(f.price) % BTC_USD.price == 0


def test_ioc_partial_size_and_taker_price_land_on_increments() -> None:
    ex, om, pf = setup(slippage=SlippageModel(half_spread=0.001, impact=0.1), max_volume_share=0.1)
    ex.set_market(10_000.0, 0.123456789)  # cap: 0.0123456789 BTC, finer than a satoshi
    order = om.place_market(Side.BUY, 0.5, price=10_000.0)
    (f,) = pf.fills
    assert f.size == 0.01234567 and on_steps(f)  # floored
    raw = 10_000.0 * (1 + 0.001 + 0.1 * 0.01234567 / 0.123456789)
    assert f.price == pytest.approx(raw, abs=0.01) and f.price >= raw  # a BUY pays the tick above
    assert order.status is OrderStatus.CANCELLED and order.filled_size == 0.01234567
    assert pf.position_exact == Decimal("0.01234567")
    ex.set_market(10_000.0, 1e9)
    om.place_market(Side.SELL, pf.position, price=10_000.0)
    sell = pf.fills[-1]
    raw = 10_000.0 * (1 - 0.001 - 0.1 * 0.01234567 / 1e9)
    assert on_steps(sell) and raw - 0.01 < sell.price <= raw  # a SELL gets the tick below
    assert pf.position_exact == 0 and pf.lots == []


def test_ioc_share_below_one_step_fills_nothing() -> None:
    ex, om, pf = setup(max_volume_share=0.1)
    ex.set_market(10_000.0, 0.00000009)  # cap: 0.9 satoshi
    order = om.place_market(Side.BUY, 0.5, price=10_000.0)
    assert pf.fills == [] and order.status is OrderStatus.CANCELLED and "IOC" in order.history[-1].reason


def test_partial_maker_fills_are_on_increments_and_add_up_exactly() -> None:
    ex, om, pf = setup(max_volume_share=0.1)
    order = om.place_limit(Side.BUY, 0.3, 9_999.999)
    assert order.price == 9_999.99  # a BUY limit rounds down to the tick
    for _ in range(3):
        ex.on_bar(high=10_001.0, low=9_990.0, close=10_000.0, volume=1.00000003)  # 0.100000003 → 0.1
    assert [f.size for f in pf.fills] == [0.1, 0.1, 0.1] and all(on_steps(f) for f in pf.fills)
    assert order.status is OrderStatus.FILLED and order.filled_size == 0.3  # 0.1 + 0.1 + 0.1, exactly
    assert pf.position_exact == Decimal("0.3") and order.id not in ex.resting


def test_order_sizes_are_floored_and_a_size_under_one_step_is_refused() -> None:
    ex, om, pf = setup()
    ex.set_market(10_000.0, 1e9)
    order = om.place_market(Side.BUY, 0.123456789, price=10_000.0)
    assert order.size == 0.12345678 and pf.fills[-1].size == 0.12345678
    with pytest.raises(ValueError, match="size step"):
        om.place_market(Side.BUY, 0.000000009, price=10_000.0)


def test_quote_sized_trailing_buy_is_floored_as_it_fires() -> None:
    ex, om, pf = setup()
    ex.set_market(3.0, 1e9)
    order = om.place_trailing(Side.BUY, quote=100.0, trail=0.02, price=3.0)
    om.on_price(2.0)
    om.on_price(2.5)  # fires: 100 / 2.5 = 40 exactly, no rounding needed
    assert order.status is OrderStatus.FILLED and order.size == 40.0
    order = om.place_trailing(Side.BUY, quote=100.0, trail=0.02, price=3.0)
    om.on_price(2.0)
    om.on_price(2.99)  # 100 / 2.99 = 33.444816053… → 33.44481605
    assert order.size == 33.44481605 and pf.fills[-1].size == 33.44481605


def test_a_smart_limit_at_the_mid_is_on_the_tick() -> None:
    ex, om, _ = setup()
    om.smart_spread = 0.002
    om.book = (99.0, 100.005)  # mid 99.5025: wide spread → a SELL rests at the mid, rounded up
    ex.set_market(100.0, 1e9)
    om.place_market(Side.BUY, 1.0, price=100.0)  # something to sell
    order = om.place_trailing(Side.SELL, size=1.0, trail=0.02, price=100.0)
    om.on_price(101.0)
    om.on_price(98.0)
    assert order.price == 99.51 and order.id in ex.resting


def test_the_ledger_refuses_a_fill_off_the_increments_and_the_order_keeps_its_size() -> None:
    _, om, pf = setup()
    order = om.place_limit(Side.BUY, 1.0, 100.0)
    bad = Fill(id="f", order_id=order.id, client_order_id=order.client_order_id, symbol="BTC-USD", side=Side.BUY,
               price=100.001, size=0.5, fee=0.0, liquidity=Liquidity.MAKER, ts=0)
    with pytest.raises(StateCorruption, match="increments"):
        pf.apply_fill(bad)
    assert pf.fills == [] and order.filled_size == 0.0
