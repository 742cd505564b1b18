"""Whole-history runs of the default (agent-driven) configuration: it keeps trading after a losing
stretch (rolling Kelly window), survives orders far larger than a bar's volume (IOC taker cap), and
is not frozen by the unsellable dust that partial fills leave."""

from __future__ import annotations

from tests.conftest import SHARED_DATA
from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.types import OrderStatus, Side
from trdr_tui.engine.assembly import build_engine
from trdr_tui.market.importer import load_candle_file

DAILY_2011 = SHARED_DATA / "btcusd_1d_2011-2025.csv"
DAY_NS = 86_400 * 1_000_000_000


async def test_default_config_keeps_buying_after_its_first_twenty_round_trips(hourly: CandleArrays) -> None:
    """With Kelly over every trade since the start, no edge after 20 round trips meant no buy ever again."""
    bars = hourly[:13_000]
    engine = build_engine(load_settings(), mode="backtest", candles=bars)
    await engine.run()
    trades = engine.record.trades
    assert len(trades) > 40
    buys = [f for f in engine.record.fills if f.side is Side.BUY]
    twentieth_exit = trades[19].exit_ts
    later = [f for f in buys if f.ts > twentieth_exit + 30 * DAY_NS]
    assert later, "no buy more than 30 days after the 20th round trip"


async def test_a_thin_history_with_large_orders_fills_partly_and_never_at_a_negative_price() -> None:
    """2011 daily bars trade a few hundred coins: 5 % of capital is many times a bar's volume."""
    bars = load_candle_file(DAILY_2011, "1d")
    engine = build_engine(load_settings(overrides={"timeframe": "1d"}), mode="backtest", candles=bars)
    await engine.run()
    fills = engine.record.fills
    assert fills and all(f.price > 0.0 and f.size > 0.0 for f in fills)
    # the grid's post-only limits fill at most a share of each bar's volume: partly, over several bars
    partial = [o for o in engine.record.orders if any(t.to_status is OrderStatus.PARTIAL for t in o.history)]
    assert partial, "expected limit orders filled partly by the bar volume"
    pf = engine.portfolio
    assert pf.position >= 0.0 and pf.cash >= 0.0
    # partial fills leave dust below the minimum order size; it must not freeze the grid (it once
    # stopped trading in 2011, 14 years before the data ends, holding 2e-9 BTC it could never sell)
    last_year = int(bars.ts[-1]) - 365 * DAY_NS
    assert any(f.side is Side.BUY and f.ts > last_year for f in fills)
