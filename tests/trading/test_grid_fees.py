"""The fee-aware grid's invariants (DESIGN invariant 10): no round trip planned below its cost, maker
orders on the levels with a paired take-profit, trails that cannot give back the spacing, no stop inside
the grid, capital per level worth its fees, the trend gate, and a drawdown halt that recovers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.types import Liquidity, OrderType, Side
from trdr_tui.engine.assembly import build_engine
from trdr_tui.trading.grid import (
    GridPolicy,
    cap_trail,
    configured_fee_rates,
    level_quote,
    round_trip_cost,
)
from trdr_tui.trading.portfolio import Portfolio
from trdr_tui.trading.risk import RiskLimits, RiskManager

TIERS = [t.name for t in load_settings().fees.tiers]


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("trailing_exits", [False, True])
@pytest.mark.parametrize("spacing", [0.0001, 0.005, 0.03])
def test_no_round_trip_is_planned_below_its_cost_at_any_tier(tier: str, trailing_exits: bool, spacing: float) -> None:
    settings = load_settings(overrides={"fees.tier": tier, "grid.trailing_exits": trailing_exits,
                                        "grid.auto_spacing": False, "grid.spacing": spacing,
                                        "grid.min_spacing": 0.0001})
    policy = GridPolicy(settings)
    maker, taker = configured_fee_rates(settings.fees)
    cost = maker + (taker if trailing_exits else maker) + 2 * settings.execution.half_spread
    assert policy.cost == pytest.approx(cost)
    assert policy.spacing >= cost + settings.grid.fee_margin - 1e-15  # a constant spacing is raised to the floor
    assert policy.spacing >= settings.grid.cost_multiple * cost - 1e-15  # fees take at most 1 / cost_multiple
    assert policy.spacing == pytest.approx(max(spacing, settings.grid.cost_multiple * cost,
                                               cost + settings.grid.fee_margin))


async def test_auto_spacing_never_goes_below_the_fee_floor(hourly: CandleArrays) -> None:
    # a tiny swing fraction asks for a spacing far below the cost: the floor wins
    settings = load_settings(overrides={"grid.swing_fraction": 0.01, "grid.min_spacing": 0.0001})
    engine = build_engine(settings, mode="backtest", candles=hourly[:800])
    policy = engine.policy
    assert isinstance(policy, GridPolicy)
    spacings: list[float] = []
    engine.bus.subscribe("grid.*", lambda _t, e: spacings.append(e.spacing))
    await engine.run()
    assert spacings and min(spacings) == pytest.approx(policy.floor)
    cost = round_trip_cost(0.004, 0.004, 0.0002)
    assert policy.floor == pytest.approx(max(settings.grid.cost_multiple * cost, cost + settings.grid.fee_margin))


async def test_levels_rest_as_maker_limits_and_each_buy_gets_a_take_profit_one_spacing_up(
        hourly: CandleArrays) -> None:
    engine = build_engine(load_settings(), mode="backtest", candles=hourly[:3000])
    await engine.run()
    rec = engine.record
    buys = [o for o in rec.orders if o.side is Side.BUY and o.filled_size > 0 and o.metadata["grid_leg"] == "level"]
    assert buys and all(o.type is OrderType.LIMIT and o.metadata["post_only"] for o in buys)
    stocks = [o for o in rec.orders if o.side is Side.BUY and o.filled_size > 0 and o.metadata["grid_leg"] == "stock"]
    maker_fills = [f for f in rec.fills if f.liquidity is Liquidity.MAKER]
    assert maker_fills
    for f in maker_fills:  # a maker fill pays the maker fee of the tier (0.40 %)
        assert f.fee == pytest.approx(f.price * f.size * 0.004)
    policy = engine.policy
    assert isinstance(policy, GridPolicy)
    tps = [o for o in rec.orders if o.metadata.get("grid_leg") == "exit"]
    assert tps and all(o.type is OrderType.LIMIT for o in tps)
    # a stocked lot is bought at market (taker), so its round trip costs taker + maker + 2 × half-spread
    stock_cost = 0.006 + 0.004 + 2 * 0.0002
    for tp in tps:  # one spacing above its level (or just above the market when that is higher)
        level_buys = [(b.created_ts, b.price, policy.floor) for b in buys
                      if b.metadata["grid_level"] == tp.metadata["grid_level"] and b.created_ts <= tp.created_ts]
        level_buys += [(s.created_ts, s.avg_fill_price, stock_cost) for s in stocks if s.created_ts <= tp.created_ts
                       and str(tp.metadata["grid_level"]) in str(s.metadata["grid_levels"]).split(",")]
        assert level_buys
        _, entry, gain = max(level_buys, key=lambda x: x[0])
        assert entry is not None and tp.price is not None
        assert tp.price >= entry * (1.0 + gain) * (1 - 1e-9)  # never a planned round trip below its cost


@given(trail=st.floats(0.0005, 0.2), spacing=st.floats(0.005, 0.1), cost=st.floats(0.0, 0.004))
def test_a_capped_trail_cannot_give_back_the_spacing(trail: float, spacing: float, cost: float) -> None:
    capped = cap_trail(trail, spacing, cost)
    assert capped <= trail
    level = 100.0
    target = level * (1.0 + spacing)
    # armed at the target, the trigger never sits below the level plus the round trip's cost
    assert target * (1.0 - capped) >= level * (1.0 + cost) * (1 - 1e-12)


def test_capital_per_level_earns_at_least_the_minimum_trip_profit() -> None:
    # 5 % of 1,000 = 50 USD at a net 0.5 % would earn 0.25 a trip: raised to earn 5
    quote = level_quote(1_000.0, 0.05, 0.005, 5.0)
    assert quote * 0.005 == pytest.approx(5.0)
    assert level_quote(100_000.0, 0.05, 0.005, 5.0) == 5_000.0  # already worth it
    assert level_quote(1_000.0, 0.05, 0.0, 5.0) == 0.0  # a trip that cannot earn gets no capital


async def test_the_stop_never_fires_inside_the_grid(hourly: CandleArrays) -> None:
    settings = load_settings(overrides={"grid.stop_buffer": 0.02, "grid.regime_exit": False})
    engine = build_engine(settings, mode="backtest", candles=hourly[4000:9000])  # into the 2018 fall
    policy = engine.policy
    assert isinstance(policy, GridPolicy)
    lowest: list[float] = []
    engine.bus.subscribe("grid.*", lambda _t, e: lowest.append(min((lv.price for lv in e.levels), default=0.0)))
    await engine.run()
    stops = [o for o in engine.record.orders if o.type is OrderType.MARKET and o.side is Side.SELL]
    assert stops, "the slice has a fall through the grid"
    for order in stops:
        assert "stop" in str(order.metadata["reason"])
        fill = order.avg_fill_price
        assert fill is not None
        # the grid in force when the stop fired: its lowest level minus costs and buffer is above the price
        assert any(fill < low * (1.0 - policy.cost - policy.cfg.stop_buffer) for low in lowest if low > 0)
    assert engine.settings.risk.stop_loss == 0.0  # no stop on the average entry (inside the grid)


async def test_no_new_grid_buys_in_a_confirmed_downtrend(hourly: CandleArrays) -> None:
    engine = build_engine(load_settings(), mode="backtest", candles=hourly[4000:9000])
    policy = engine.policy
    assert isinstance(policy, GridPolicy)
    gated: set[int] = set()
    closes = dict(zip((int(t) + 3_600_000_000_000 for t in hourly.ts[4000:9000]),
                      hourly.close[4000:9000].tolist(), strict=True))
    original = policy.on_bar

    def spy(ts: int, close: float, decision: object) -> None:
        original(ts, close, decision)  # type: ignore[arg-type]
        if policy.downtrend(close):
            gated.add(ts)

    policy.on_bar = spy  # type: ignore[method-assign]
    await engine.run()
    assert gated, "the slice has a confirmed downtrend"
    buys = [o for o in engine.record.orders if o.side is Side.BUY]
    assert buys and not [o for o in buys if o.created_ts in gated and o.created_ts in closes]


def test_the_drawdown_halt_recovers_after_its_cool_off_or_when_acknowledged() -> None:
    pf = Portfolio("BTC-USD", 10_000.0)
    risk = RiskManager(RiskLimits(max_drawdown=0.15, daily_loss_limit=None, stop_loss=None, max_position=None,
                                  max_concurrent_trades=None, halt_cooloff_hours=24.0), pf)
    seen: list[str] = []
    risk.halt_listeners.append(lambda h: seen.append("resumed" if h.resumed_ts else "halted"))
    hour = 3_600_000_000_000
    risk.on_mark(0, 10_000.0)
    risk.on_mark(hour, 8_400.0)  # 16 % below the peak
    assert risk.halted and risk.halted_at == hour and "max_drawdown" in risk.halt_reason
    assert risk.failed_checks(Side.BUY, 0.001, 100.0) == ["max_drawdown"]
    risk.on_mark(24 * hour, 8_300.0)  # 23 h later: still halted
    assert risk.halted
    risk.on_mark(25 * hour, 8_300.0)  # cool-off over: the peak is re-based to 8,300
    assert not risk.halted and risk.halts[-1].resumed_ts == 25 * hour
    assert "cool-off" in risk.halts[-1].resume_reason
    assert risk.failed_checks(Side.BUY, 0.001, 100.0) == []
    risk.on_mark(26 * hour, 7_000.0)  # 15.7 % below the new peak: a second halt
    assert risk.halted and risk.acknowledge_halt(27 * hour) and not risk.halted
    assert risk.halts[-1].resume_reason == "acknowledged by the operator"
    assert not risk.acknowledge_halt(28 * hour)
    assert seen == ["halted", "resumed", "halted", "resumed"]
