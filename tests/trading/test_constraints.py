"""Time constraints (PRD §3.3.1): blackout windows, absolute expiry, a resting limit's maximum duration."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import HOURLY_CDD
from trdr_tui.backtest.runner import run_engine
from trdr_tui.config import Blackout, TimeConstraintsConfig, load_settings
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.errors import ConfigError, RiskLimitExceeded
from trdr_tui.core.types import Fill, Liquidity, OrderStatus, Side
from trdr_tui.exchange.fees import FeeSchedule
from trdr_tui.exchange.sim_executor import SimExecutor
from trdr_tui.market.importer import load_candle_file
from trdr_tui.trading.constraints import TimeConstraints, Window
from trdr_tui.trading.orders import OrderManager
from trdr_tui.trading.portfolio import Portfolio
from trdr_tui.trading.risk import RiskLimits, RiskManager

HOUR = 3_600_000_000_000


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 1_000_000_000


def constraints(**kw: object) -> TimeConstraints:
    cfg = {"limit_max_duration_hours": 0.0, "blackouts": (), "expires_at": "", **kw}
    tc = TimeConstraints.from_config(TimeConstraintsConfig(**cfg))  # type: ignore[arg-type]
    assert tc is not None
    return tc


def manager(tc: TimeConstraints, start: str = "2019-01-07T12:00") -> tuple[SimClock, OrderManager, Portfolio]:
    clock = SimClock(ns(start))
    pf = Portfolio("BTC-USD", 100_000.0)
    ex = SimExecutor(clock, FeeSchedule.from_config(load_settings().fees))
    om = OrderManager(symbol="BTC-USD", clock=clock, bus=EventBus(), portfolio=pf,
                      risk=RiskManager(RiskLimits.none(), pf), executor=ex, run_id="t")
    om.set_constraints(tc)
    return clock, om, pf


def test_a_weekday_window_past_midnight() -> None:
    w = Window(Blackout(start="22:00", end="02:00", days=("fri",)))
    assert w.contains(ns("2019-01-04T23:30"))  # Friday night
    assert w.contains(ns("2019-01-05T01:59"))  # after midnight: Saturday, the window started Friday
    assert not w.contains(ns("2019-01-05T02:00"))  # the end is exclusive
    assert not w.contains(ns("2019-01-05T23:00"))  # Saturday is not a start day
    assert not w.contains(ns("2019-01-03T23:00"))  # Thursday neither


def test_no_nothing_configured_means_no_constraints() -> None:
    cfg = load_settings().time_constraints
    assert TimeConstraints.from_config(cfg) is None


@pytest.mark.parametrize(("window", "message"), [
    ({"start": "25:00", "end": "01:00"}, "`start` must be a UTC time of day"),
    ({"start": "9:00", "end": "10:00"}, "`start` must be a UTC time of day"),
    ({"start": "10:00", "end": "10:00"}, "give a window of some length"),
    ({"start": "10:00", "end": "11:00", "days": ["monday"]}, "is not one of mon"),
])
def test_bad_windows_are_refused_with_where_and_what(window: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(overrides={"time_constraints": {"blackouts": [window]}})
    text = str(err.value)
    assert message in text and "time_constraints.blackouts.0" in text


def test_a_bad_expiry_is_refused() -> None:
    with pytest.raises(ConfigError, match="ISO 8601"):
        load_settings(overrides={"time_constraints": {"expires_at": "next tuesday"}})


def test_a_blackout_refuses_buys_cancels_open_ones_and_lets_sells_through() -> None:
    tc = constraints(blackouts=(Blackout(start="14:00", end="16:00"),))
    clock, om, pf = manager(tc)
    pf.apply_fill(Fill(id="f0", order_id="o0", client_order_id="c0", symbol="BTC-USD", side=Side.BUY,
                       price=4_000.0, size=0.5, fee=0.0, liquidity=Liquidity.TAKER, ts=clock.now_ns()))
    buy = om.place_limit(Side.BUY, 0.1, 3_000.0)
    trailing = om.place_trailing(Side.BUY, size=0.1, trail=0.02, price=4_000.0)
    om.expire(clock.now_ns())
    assert buy.status is OrderStatus.SUBMITTED and trailing.status is OrderStatus.ARMED
    clock.advance_to(ns("2019-01-07T14:00"))
    om.expire(clock.now_ns())  # the window starts: open BUYs cancelled, with the window as the reason
    assert buy.status is OrderStatus.CANCELLED and trailing.status is OrderStatus.CANCELLED
    assert "blackout 14:00-16:00 UTC" in buy.history[-1].reason
    with pytest.raises(RiskLimitExceeded, match="blackout"):
        om.place_limit(Side.BUY, 0.1, 3_000.0)
    assert om.rejections[-1].failed_checks == ("blackout 14:00-16:00 UTC (daily)",)
    om.place_trailing(Side.SELL, size=0.1, trail=0.02, price=4_000.0)  # a SELL is never held back
    clock.advance_to(ns("2019-01-07T16:00"))
    om.expire(clock.now_ns())
    assert om.place_limit(Side.BUY, 0.1, 3_000.0).status is OrderStatus.SUBMITTED


def test_an_armed_buy_that_fires_in_a_blackout_is_cancelled() -> None:
    tc = constraints(blackouts=(Blackout(start="14:00", end="16:00"),))
    _clock, om, _ = manager(tc, start="2019-01-07T14:30")
    tc.windows = []  # armed before the window was configured …
    order = om.place_trailing(Side.BUY, size=0.1, trail=0.01, price=4_000.0)
    tc.windows = [Window(Blackout(start="14:00", end="16:00"))]
    om.on_price(3_900.0)
    om.on_price(4_000.0)  # … fires inside it: refused as it fires
    assert order.status is OrderStatus.CANCELLED and "blackout" in order.history[-1].reason


def test_after_the_expiry_no_buys_ever() -> None:
    tc = constraints(expires_at="2019-01-08T00:00:00Z")
    clock, om, _ = manager(tc)
    buy = om.place_limit(Side.BUY, 0.1, 3_000.0)
    clock.advance_to(ns("2019-01-08T00:00"))
    om.expire(clock.now_ns())
    assert buy.status is OrderStatus.CANCELLED and buy.history[-1].reason == "expired"
    clock.advance_to(ns("2019-03-01T00:00"))
    with pytest.raises(RiskLimitExceeded, match="expired"):
        om.place_trailing(Side.BUY, quote=100.0, trail=0.02, price=4_000.0)


def test_a_resting_limit_older_than_its_maximum_duration_is_cancelled() -> None:
    tc = constraints(limit_max_duration_hours=2.0)
    clock, om, _ = manager(tc)
    old = om.place_limit(Side.BUY, 0.1, 3_000.0)
    clock.advance_to(clock.now_ns() + HOUR)
    young = om.place_limit(Side.BUY, 0.1, 2_900.0)
    clock.advance_to(clock.now_ns() + HOUR)
    om.expire(clock.now_ns())
    assert old.status is OrderStatus.CANCELLED and old.history[-1].reason == "time limit reached"
    assert young.status is OrderStatus.SUBMITTED


@pytest.mark.slow
def test_backtest_on_real_candles_places_no_buy_in_a_blackout_nor_after_expiry() -> None:
    bars = load_candle_file(HOURLY_CDD)[:4000]  # 2017-07-01 … 2017-12-14
    settings = load_settings(overrides={"time_constraints": {
        "blackouts": [{"start": "12:00", "end": "18:00"}], "expires_at": "2017-11-01T00:00:00Z",
        "limit_max_duration_hours": 24.0}})
    run, engine = run_engine(settings, bars)
    orders = engine.record.orders
    buys = [o for o in orders if o.side is Side.BUY]
    assert buys, "the grid placed BUYs outside the windows"
    for o in buys:
        hour = (o.created_ts // HOUR) % 24
        assert not 12 <= hour < 18, f"BUY {o.id} placed at hour {hour}"
        assert o.created_ts < ns("2017-11-01T00:00")
    reasons = [o.history[-1].reason for o in orders if o.status is OrderStatus.CANCELLED]
    assert any(r.startswith("blackout 12:00-18:00") for r in reasons)
    assert "time limit reached" in reasons
    assert any(o.side is Side.SELL and o.created_ts >= ns("2017-11-01T00:00") for o in orders) \
        or engine.portfolio.position == 0.0  # after the expiry the lots can still be sold
    assert run.fills.size.shape[0] > 0
