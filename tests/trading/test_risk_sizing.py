"""Risk limits (E006 with the failed checks, no way around them) and sizing (Decimal increments, minimums)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from trdr_tui.config import load_settings
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.errors import RiskLimitExceeded
from trdr_tui.core.events import RiskRejection
from trdr_tui.core.types import Fill, Liquidity, Side, Trade
from trdr_tui.exchange.fees import FeeSchedule
from trdr_tui.exchange.sim_executor import SimExecutor
from trdr_tui.trading.orders import OrderManager
from trdr_tui.trading.portfolio import Portfolio
from trdr_tui.trading.risk import RiskLimits, RiskManager
from trdr_tui.trading.sizing import Increments, ProductSpec, Sizer, kelly_fraction, to_decimal, trade_stats


def buy(pf: Portfolio, n: int, price: float, size: float) -> None:
    pf.apply_fill(Fill(id=f"f{n}", order_id=f"o{n}", client_order_id=f"c{n}", symbol="BTC-USD", side=Side.BUY,
                       price=price, size=size, fee=0.0, liquidity=Liquidity.TAKER, ts=n))


def test_limits_from_settings_follow_the_risk_profile() -> None:
    lim = RiskLimits.from_settings(load_settings(overrides={"risk_tolerance": "conservative"}))
    assert lim.max_drawdown == 0.10 and lim.max_concurrent_trades == 2 and lim.max_position == 0.5
    lim = RiskLimits.from_settings(load_settings())
    assert lim.max_drawdown == 0.15 and lim.max_concurrent_trades == 3


def test_each_check_by_name() -> None:
    pf = Portfolio("BTC-USD", 10_000.0)
    risk = RiskManager(RiskLimits(max_drawdown=0.15, daily_loss_limit=0.05, max_position=0.25,
                                  max_concurrent_trades=2), pf)
    assert risk.failed_checks(Side.BUY, 0.02, 100_000.0) == []  # 2,000 = 20 % of equity
    assert risk.failed_checks(Side.BUY, 0.03, 100_000.0) == ["max_position"]
    assert risk.failed_checks(Side.BUY, 0.01, 100_000.0, open_entries=2) == ["max_concurrent"]
    assert risk.failed_checks(Side.SELL, 0.01, 100_000.0) == ["position_size"]  # nothing to sell
    assert risk.failed_checks(Side.BUY, 0.0, 100_000.0) == ["position_size"]
    # a 20 % drawdown: buys halt, sells still pass
    buy(pf, 1, 100.0, 25.0)  # 2,500 in BTC
    pf.mark(100.0)
    risk.on_mark(0, pf.equity(100.0))
    price = 20.0  # position worth 500: equity 8,000 → −20 %
    failed = risk.failed_checks(Side.BUY, 0.1, price)
    assert "max_drawdown" in failed and "daily_loss" in failed
    assert risk.failed_checks(Side.SELL, 25.0, price) == []
    with pytest.raises(RiskLimitExceeded) as err:
        risk.check(Side.BUY, 0.1, price)
    assert err.value.code == "E006" and set(err.value.failed_checks) == set(failed)
    # next UTC day: the daily window restarts from that day's equity
    risk.on_mark(86_400_000_000_000, pf.equity(price))
    assert "daily_loss" not in risk.failed_checks(Side.BUY, 0.1, price)


def test_stop_loss_rule() -> None:
    pf = Portfolio("BTC-USD", 1_000.0)
    risk = RiskManager(RiskLimits(stop_loss=0.02), pf)
    assert not risk.stop_loss_hit(50.0)  # flat
    buy(pf, 1, 100.0, 1.0)
    assert not risk.stop_loss_hit(98.01)
    assert risk.stop_loss_hit(98.0)


def test_order_manager_cannot_place_past_the_risk_manager() -> None:
    clock = SimClock(0)
    pf = Portfolio("BTC-USD", 10_000.0)
    bus = EventBus()
    seen: list[RiskRejection] = []
    bus.subscribe("risk.rejected", lambda _t, e: seen.append(e))
    ex = SimExecutor(clock, FeeSchedule.flat(0.006))
    om = OrderManager(symbol="BTC-USD", clock=clock, bus=bus, portfolio=pf,
                      risk=RiskManager(RiskLimits(max_position=0.25), pf), executor=ex, run_id="r")
    ex.last_price = 100.0
    for place in (lambda: om.place_market(Side.BUY, 30.0, price=100.0),
                  lambda: om.place_limit(Side.BUY, 30.0, 100.0),
                  lambda: om.place_trailing(Side.BUY, size=30.0, trail=0.02, price=100.0),
                  lambda: om.place_trailing(Side.BUY, quote=3_000.0, trail=0.02, price=100.0)):
        with pytest.raises(RiskLimitExceeded):
            place()
    assert not om.orders and pf.cash == 10_000.0
    assert [r.failed_checks for r in seen] == [("max_position",)] * 4 and len(om.rejections) == 4


def test_armed_buy_is_checked_again_when_it_fires() -> None:
    clock = SimClock(0)
    pf = Portfolio("BTC-USD", 10_000.0)
    ex = SimExecutor(clock, FeeSchedule.flat(0.006))
    risk = RiskManager(RiskLimits(max_drawdown=0.10, daily_loss_limit=None, max_position=None,
                                  max_concurrent_trades=None), pf)
    om = OrderManager(symbol="BTC-USD", clock=clock, bus=EventBus(), portfolio=pf, risk=risk, executor=ex,
                      run_id="r")
    order = om.place_trailing(Side.BUY, size=1.0, trail=0.02, price=100.0)
    risk.on_mark(0, 20_000.0)  # a peak of 20,000 marked: equity is now 50 % below it
    om.on_price(103.0)
    assert order.status.value == "CANCELLED" and "max_drawdown" in order.history[-1].reason
    assert pf.position == 0.0 and om.rejections[-1].failed_checks == ("max_drawdown",)


def test_sizes_are_floored_to_the_increment_and_refused_below_minimum() -> None:
    spec = ProductSpec(base_increment="0.0001", base_min_size="0.001", quote_min_size="1")
    assert spec.round_size(0.123456789) == Decimal("0.1234")
    assert spec.round_size(0.0009999) is None
    assert spec.round_price(100.006, Side.BUY) == Decimal("100.00")
    assert spec.round_price(100.001, Side.SELL) == Decimal("100.01")
    sizer = Sizer(spec)
    # 400 USD at 20,000 → 0.02
    assert sizer.level_size(quote=400.0, available=10_000.0, price=20_000.0, now_ns=1) == Decimal("0.0200")
    # the risk cap wins when smaller, and so does the cash available
    assert sizer.level_size(quote=400.0, available=10_000.0, price=20_000.0, now_ns=1,
                            risk_limit=0.015) == Decimal("0.0150")
    assert sizer.level_size(quote=400.0, available=300.0, price=20_000.0, now_ns=1) == Decimal("0.0150")
    # below the minimum: no order
    assert sizer.level_size(quote=7.5, available=10_000.0, price=20_000.0, now_ns=1) is None
    assert sizer.level_size(quote=0.0, available=10_000.0, price=20_000.0, now_ns=1) is None


def test_float_to_decimal_is_the_shortest_repr() -> None:
    assert to_decimal(0.1) == Decimal("0.1") and to_decimal(np.float64(0.1)) == Decimal("0.1")
    assert to_decimal(0.01 + 0.06 + 0.1) == Decimal("0.16999999999999998")  # float noise stays visible
    assert to_decimal(3) == Decimal(3) and to_decimal(Decimal("1.50")).as_tuple() == Decimal("1.50").as_tuple()


def test_increments_round_sizes_and_prices_to_their_own_steps() -> None:
    inc = Increments(base=Decimal("0.00000001"), price=Decimal("0.5"))
    assert inc.floor_size(0.123456789) == Decimal("0.12345678")
    assert inc.floor_size(0.01 + 0.06 + 0.1) == Decimal("0.17")  # noise under a step snaps to it
    assert str(inc.floor_size(0.25)) == "0.25000000"  # quantized to the step
    assert inc.round_price(100.4, Side.BUY) == Decimal("100.0")
    assert inc.round_price(100.1, Side.SELL) == Decimal("100.5")
    assert Increments(base=Decimal(0), price=Decimal(0)).floor_size(0.3) == Decimal("0.3")  # no step, no rounding


def test_the_price_tick_wins_over_the_quote_increment() -> None:
    assert ProductSpec().increments.price == Decimal("0.01")
    tick = ProductSpec(quote_increment="0.01", price_increment="0.5")
    assert tick.round_price(100.4, Side.BUY) == Decimal("100.0") and tick.round_price(100.1, Side.SELL) == Decimal("100.5")
    assert ProductSpec(price_increment="0").increments.price == Decimal("0.01")


def test_sizes_from_numpy_floats_round_like_python_floats() -> None:
    spec = ProductSpec(base_increment="0.0001", base_min_size="0.001")
    assert spec.round_size(np.float64(0.123456789)) == spec.round_size(0.123456789) == Decimal("0.1234")
    assert spec.meets_minimums(Decimal("0.01"), np.float64(100.0))


def trade(pnl: float) -> Trade:
    return Trade(symbol="BTC-USD", entry_order_id="a", exit_order_id="b", entry_ts=0, exit_ts=1, entry_price=1.0,
                 exit_price=1.0, size=1.0, pnl=pnl, fees=0.0)


def test_kelly_caps_the_size() -> None:
    assert kelly_fraction(0.6, 1.0) == pytest.approx(0.2)
    assert kelly_fraction(0.3, 1.0) == 0.0
    trades = [trade(10.0)] * 12 + [trade(-10.0)] * 8  # W 0.6, R 1 → Kelly 0.2, half-Kelly 0.1
    assert trade_stats(trades) == pytest.approx((0.6, 1.0))
    assert trade_stats(trades[:19]) is None
    sizer = Sizer(ProductSpec(), kelly_safety=0.5)
    # 500 of 1,000 asked → capped at 10 % = 100 USD → 1 unit at 100
    assert sizer.level_size(quote=500.0, available=1_000.0, price=100.0, now_ns=1, trades=trades) == Decimal("1")
    losing = [trade(-1.0)] * 15 + [trade(1.0)] * 5
    assert sizer.level_size(quote=500.0, available=1_000.0, price=100.0, now_ns=1, trades=losing) is None


DAY_NS = 86_400 * 1_000_000_000


def closed_at(pnl: float, day: float) -> Trade:
    ts = int(day * DAY_NS)
    return Trade(symbol="BTC-USD", entry_order_id="a", exit_order_id="b", entry_ts=ts - 1, exit_ts=ts,
                 entry_price=1.0, exit_price=1.0, size=1.0, pnl=pnl, fees=0.0)


def test_losing_streak_pauses_buys_until_it_ages_out_of_the_kelly_window() -> None:
    """20 losers within a month stop buying (a cool-off); 30 days after the last one, buying resumes."""
    sizer = Sizer(ProductSpec(), kelly_safety=0.5, kelly_lookback_days=30, kelly_min_trades=20)
    losers = [closed_at(-5.0, 1.0 + k * 0.5) for k in range(20)]  # day 1 … day 10.5
    size = {"quote": 500.0, "available": 10_000.0, "price": 100.0, "trades": losers}
    assert sizer.level_size(**size, now_ns=int(11 * DAY_NS)) is None  # evidence says no edge
    assert sizer.level_size(**size, now_ns=int(30.5 * DAY_NS)) is None  # all 20 still within 30 days
    # at day 31.5 the loser closed on day 1 has aged out: 19 left, too few to cap, buying resumes
    assert sizer.kelly_cap(losers, int(31.5 * DAY_NS)) is None
    assert sizer.level_size(**size, now_ns=int(31.5 * DAY_NS)) == Decimal("5")  # 500 at 100


def test_all_losers_in_the_window_cap_to_nothing_and_all_winners_do_not_cap() -> None:
    sizer = Sizer(ProductSpec(), kelly_min_trades=20)
    now = int(10 * DAY_NS)
    assert sizer.kelly_cap([closed_at(-1.0, 5.0)] * 20, now) == 0.0
    assert sizer.kelly_cap([closed_at(1.0, 5.0)] * 20, now) == pytest.approx(0.5)  # Kelly 1 × half
    # trades closed after `now` (not yet known at that time) are not evidence
    assert sizer.kelly_cap([closed_at(-1.0, 11.0)] * 20, now) is None


def test_kelly_window_settings_are_read_and_checked() -> None:
    s = load_settings()
    assert s.sizing.kelly_lookback_days == 30 and s.sizing.kelly_min_trades == 20
    with pytest.raises(Exception, match="kelly_lookback_days"):
        load_settings(overrides={"sizing.kelly_lookback_days": 0})


def test_the_position_cap_counts_buy_orders_still_resting() -> None:
    """Three BUY limits of a quarter of equity each, resting at once, must not add up past a 25 % cap
    (before, each was checked against the filled position alone and all three filled: 75 %)."""
    clock = SimClock(0)
    pf = Portfolio("BTC-USD", 10_000.0)
    ex = SimExecutor(clock, FeeSchedule.flat(0.006, 0.004))
    risk = RiskManager(RiskLimits(max_drawdown=None, daily_loss_limit=None, max_position=0.25,
                                  max_concurrent_trades=None), pf)
    om = OrderManager(symbol="BTC-USD", clock=clock, bus=EventBus(), portfolio=pf, risk=risk, executor=ex,
                      run_id="r")
    om.place_limit(Side.BUY, 0.6, 4_000.0)  # 2,400 USD of 10,000: within the cap
    for limit in (3_950.0, 3_900.0):
        with pytest.raises(RiskLimitExceeded) as refused:
            om.place_limit(Side.BUY, 0.6, limit)
        assert refused.value.failed_checks == ["max_position"]
    ex.on_bar(4_010.0, 3_800.0, 3_850.0, 1_000.0)  # the resting one fills
    assert pf.position == pytest.approx(0.6) and pf.position * 3_850.0 <= 0.25 * pf.equity(3_850.0)
    with pytest.raises(RiskLimitExceeded):  # the filled position now counts instead
        om.place_limit(Side.BUY, 0.6, 3_800.0)
