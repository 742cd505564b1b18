"""Funding changes across a paper restart: the schedule's position and the booked flows come back from
the checkpoint, so no scheduled event is applied twice or skipped; `Engine.fund` books, publishes and
checkpoints a change; a live engine refuses one made by hand."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from trdr_tui.config import Settings, load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.errors import InsufficientFunds, RejectError
from trdr_tui.core.events import FundingChange
from trdr_tui.core.timefmt import iso_utc
from trdr_tui.core.types import Fill, Liquidity, Side
from trdr_tui.engine.assembly import build_engine
from trdr_tui.engine.recovery import restore_latest
from trdr_tui.exchange.fees import FeeSchedule
from trdr_tui.exchange.sim_executor import SimExecutor
from trdr_tui.store.db import Store
from trdr_tui.store.orders import latest_checkpoint
from trdr_tui.trading.portfolio import Portfolio

HOUR = 3_600_000_000_000


def schedule(bars: CandleArrays, *events: tuple[int, float]) -> Settings:
    """Settings with a deposit/withdrawal at the close of bar i for each (i, amount)."""
    return load_settings(overrides={"funding": {"events": [
        {"at": iso_utc(int(bars.ts[i]) + HOUR), "amount": amount} for i, amount in events]}})


@pytest.mark.parametrize("gap", [0, 30])
async def test_a_paper_restart_applies_each_scheduled_event_once(hourly: CandleArrays, tmp_path: Path,
                                                                 gap: int) -> None:
    """Events at bars 30, 120 and 150; the first run stops after bar 99, the second starts at bar 100 + `gap`
    (with gap 30 the event of bar 120 falls while the bot is down: it is applied at the restart, not skipped)."""
    bars = hourly[:220]
    settings = schedule(bars, (30, 1_000.0), (120, 2_000.0), (150, -500.0))
    with Store(tmp_path / "f.duckdb") as store:
        first = build_engine(settings, mode="paper", candles=bars[:100], preset="simple-trailing", store=store,
                             run_id="p-1")
        await first.run()
        assert first.portfolio.contributed_exact == Decimal("1000")
        second = build_engine(settings, mode="paper", candles=bars[100 + gap:], preset="simple-trailing",
                              store=store, run_id="p-1")
        assert restore_latest(second, store, "p-1")
        seen: list[FundingChange] = []
        second.bus.subscribe("funding.BTC-USD", lambda _t, e: seen.append(e))
        await second.run()
        pf = second.portfolio
        assert pf.contributed_exact == Decimal("2500")  # 1,000 once, then 2,000 and −500
        assert [round(a) for _, a in pf.flows] == [1_000, 2_000, -500]
        assert [(e.amount, e.source, e.applied) for e in seen] == [(2_000.0, "schedule", True),
                                                                  (-500.0, "schedule", True)]
        state = latest_checkpoint(store, "p-1")
        assert state is not None and state[2]["funding"]["done"] == 3


async def test_each_funding_change_writes_a_checkpoint_with_the_ledger_and_the_position(
        hourly: CandleArrays, tmp_path: Path) -> None:
    """A crash right after an event loses nothing: the `funding` checkpoint holds the flow and the position."""
    bars = hourly[:60]
    settings = schedule(bars, (30, 1_000.0))
    with Store(tmp_path / "c.duckdb") as store:
        engine = build_engine(settings, mode="paper", candles=bars, preset="simple-trailing", store=store,
                              run_id="p-2")
        await engine.run()
        store.sync()
        rows = store.conn.execute("SELECT state FROM checkpoints WHERE run_id = 'p-2' AND type = 'funding'").fetchall()
        assert len(rows) == 1
        state = json.loads(rows[0][0])
        assert state["portfolio"]["contributed"] == "1000.0" and state["funding"]["done"] == 1


async def test_engine_fund_books_publishes_and_refuses_what_it_cannot(hourly: CandleArrays) -> None:
    bus = EventBus()
    engine = build_engine(load_settings(), mode="paper", candles=hourly[:50], preset="simple-trailing", bus=bus)
    await engine.run()
    seen: list[FundingChange] = []
    bus.subscribe("funding.BTC-USD", lambda _t, e: seen.append(e))
    cash = engine.portfolio.cash
    result = engine.fund(2_500.0)
    assert engine.portfolio.cash == pytest.approx(cash + 2_500.0) and result.amount == 2_500.0
    with pytest.raises(InsufficientFunds, match="free cash"):
        engine.fund(-1e9)
    assert engine.portfolio.cash == pytest.approx(cash + 2_500.0)
    assert [(e.amount, e.source, e.applied) for e in seen] == [(2_500.0, "manual", True), (-1e9, "manual", False)]
    assert "free cash" in seen[1].reason


async def test_a_live_engine_refuses_funding_by_hand(hourly: CandleArrays) -> None:
    settings = load_settings()
    clock = SimClock(int(hourly.ts[0]))
    executor = SimExecutor(clock, FeeSchedule.from_config(settings.fees))  # stands in for the exchange
    engine = build_engine(settings, mode="live", candles=hourly[:5], preset="simple-trailing", clock=clock,
                          executor=executor)
    with pytest.raises(RejectError, match="live run books no deposits"):
        engine.fund(1_000.0)
    assert engine.portfolio.contributed_exact == 0


def test_a_rebuild_from_fills_books_the_flows_between_them_in_time_order() -> None:
    """A withdrawal after a profitable sell, rebuilt: all flows first would take cash below zero."""
    pf = Portfolio("BTC-USD", "1000")
    buy = Fill(id="1", order_id="a", client_order_id="a", symbol="BTC-USD", side=Side.BUY, price=900.0, size=1.0,
               fee=0.0, liquidity=Liquidity.MAKER, ts=10)
    sell = Fill(id="2", order_id="b", client_order_id="b", symbol="BTC-USD", side=Side.SELL, price=1_900.0, size=1.0,
                fee=0.0, liquidity=Liquidity.MAKER, ts=20)
    pf.apply_fill(buy)
    pf.apply_fill(sell)
    pf.fund("-1500", 30)
    pf.rebuild_from_fills([buy, sell])
    assert pf.cash_exact == Decimal("500") and pf.contributed_exact == Decimal("-1500")
    assert pf.flows == [(30, -1500.0)]
