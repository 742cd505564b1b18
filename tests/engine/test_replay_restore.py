"""ReplayFeed input checks and the crash-only restore path (checkpoint → reconcile)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import ConfigError, DataError
from trdr_tui.core.types import OrderStatus, Side
from trdr_tui.engine.assembly import build_engine
from trdr_tui.engine.recovery import restore_latest
from trdr_tui.market.replay import ReplayFeed
from trdr_tui.store.db import Store


async def test_replay_yields_every_candle_in_order(hourly: CandleArrays) -> None:
    feed = ReplayFeed(hourly[:25], speed=1e6)
    got = [c async for c in feed]
    assert [c.ts for c in got] == hourly.ts[:25].tolist()
    assert got[3].close == float(hourly.close[3])
    assert feed.timeframe_ns == 3_600_000_000_000 and len(feed) == 25


def test_replay_refuses_bad_input(hourly: CandleArrays) -> None:
    bars = hourly[:5]
    shuffled = CandleArrays(bars.ts[::-1].copy(), bars.open, bars.high, bars.low, bars.close, bars.volume)
    with pytest.raises(DataError, match="ascending"):
        ReplayFeed(shuffled)
    with pytest.raises(ConfigError, match="speed"):
        ReplayFeed(bars, speed=0)
    with pytest.raises(ConfigError, match="no candles"):
        build_engine(load_settings(), mode="backtest", candles=CandleArrays.empty(), preset="simple-trailing")


async def test_restart_restores_the_ledger_and_reconciles_open_limit_orders(hourly: CandleArrays,
                                                                             tmp_path: Any) -> None:
    bars = hourly[:200]
    with Store(tmp_path / "r.duckdb") as store:
        first = build_engine(load_settings(), mode="paper", candles=bars[:100], preset="simple-trailing",
                             store=store, run_id="live-1")
        await first.run()
        first.executor.set_market(float(bars.close[99]), 1e9)  # type: ignore[attr-defined]
        # a resting limit order far below the market: open when the process "dies"
        resting = first.orders.place_limit(Side.BUY, 0.001, float(bars.close[99]) * 0.5)
        first.checkpoint("manual")
        cash = first.portfolio.cash
        # 60 s interval on hourly bars: one auto checkpoint per bar, not sixty
        autos = store.conn.execute("SELECT count(*) FROM checkpoints WHERE type = 'auto'").fetchone()[0]
        assert 90 <= autos <= 100

        second = build_engine(load_settings(), mode="paper", candles=bars[100:], preset="simple-trailing",
                              store=store, run_id="live-1")
        assert restore_latest(second, store, "live-1")
        assert second.portfolio.cash == cash
        assert resting.id in second.orders.open
        await second.run()
        # the new simulator has never heard of the order: reconciliation cancels it
        assert second.orders.orders[resting.id].status is OrderStatus.CANCELLED
        assert "not known" in second.orders.orders[resting.id].history[-1].reason
        ids = [o.id for o in second.record.orders]
        assert len(ids) == len(set(ids))  # order ids continue, never reused
        status = store.conn.execute("SELECT status FROM orders WHERE id = ?", [resting.id]).fetchone()[0]
        assert status == "CANCELLED"
    assert not restore_latest(second, Store(":memory:"))
    assert np.isfinite(second.record.final_equity)


async def test_max_speed_replay_hands_the_loop_back_every_few_candles(hourly: CandleArrays) -> None:
    feed = ReplayFeed(hourly[:100], yield_every=4)
    turns = 0

    async def other() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.get_running_loop().create_task(other())
    await asyncio.sleep(0)
    before = turns
    got = [c async for c in feed]
    task.cancel()
    assert len(got) == 100
    assert turns - before >= 100 // 4 - 1  # the other task ran while the replay streamed
    with pytest.raises(ConfigError, match="yield_every"):
        ReplayFeed(hourly[:5], yield_every=0)


async def test_stop_during_a_max_speed_paper_replay_takes_effect_mid_run(hourly: CandleArrays) -> None:
    """The cockpit's quit (and SIGINT) run on the same loop as the engine: they must get a turn."""
    bars = hourly[:3000]
    engine = build_engine(load_settings(), mode="paper", candles=bars, preset="simple-trailing")
    assert engine.feed.paced is False  # type: ignore[attr-defined]

    async def quit_soon() -> None:
        while engine.record.bars < 100:
            await asyncio.sleep(0)
        await engine.stop("user quit")

    stopper = asyncio.get_running_loop().create_task(quit_soon())
    await engine.run()
    await stopper
    assert 100 <= engine.record.bars < len(bars)


async def test_a_paced_replay_plays_its_warmup_at_max_speed(hourly: CandleArrays,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The first `warmup` candles arrive without a paced wait; pacing starts after them."""
    waits: list[float] = []
    clock = [0.0]

    async def record(delay: float) -> None:  # simulated time: a wait takes exactly its delay
        waits.append(delay)
        clock[0] += delay

    monkeypatch.setattr("trdr_tui.market.replay.asyncio.sleep", record)
    monkeypatch.setattr(asyncio.get_running_loop(), "time", lambda: clock[0])
    seen = [c async for c in ReplayFeed(hourly[:60], speed=20.0, warmup=50)]
    assert len(seen) == 60
    # only the 10 candles after the warm-up wait
    assert [w for w in waits if w > 0] == pytest.approx([0.05] * 10, abs=1e-9)
    waits.clear()
    _ = [c async for c in ReplayFeed(hourly[:60], speed=20.0)]
    # without warm-up every candle but the first waits
    assert [w for w in waits if w > 0] == pytest.approx([0.05] * 59, abs=1e-9)
    with pytest.raises(ConfigError, match="warmup"):
        ReplayFeed(hourly[:5], speed=1.0, warmup=-1)
