"""A new paper run on Coinbase starts with the history its rules need (engine.warmup), not cold.

The fake exchange's market starts at bar 1,000 of the real hourly file and its candles endpoint also
serves the 1,000 bars before: the run backfills the store, feeds the last `history_bars` of them
through the engine (agents, grid trend gate, spacing window) placing no orders, then trades live.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.exchange.conftest import real_candles
from tests.exchange.test_e2e_engine import run_until
from trdr_testkit.fake_coinbase import FakeExchange
from trdr_tui.config import Settings, load_settings
from trdr_tui.core.types import Order, OrderTransition
from trdr_tui.engine.coinbase import build_coinbase_engine
from trdr_tui.engine.loop import RECENT_BARS
from trdr_tui.engine.warmup import history_bars
from trdr_tui.exchange.coinbase_feed import CoinbaseFeed
from trdr_tui.store import Store
from trdr_tui.store.candles import CandleRepository
from trdr_tui.trading.grid import SWING_HISTORY_BARS, GridPolicy, trend_gate

NS = 1_000_000_000
HOUR = 3600 * NS
START = 1000  # the fake market's first bar (index into the real bars)


def fake_with_history() -> FakeExchange:
    bars = real_candles()
    fake = FakeExchange(candles=bars[START:], heartbeat_s=0.05, step_ns=15 * 60 * NS, start_ns=bars[START].ts,
                        step_interval_s=0.005)
    fake.market.history = bars[:START] + fake.market.history  # the candles endpoint knows the bars before
    return fake


def settings_for(fake: FakeExchange, **overrides: object) -> Settings:
    env = {"TRDR_COINBASE_REST_URL": fake.rest_url, "TRDR_COINBASE_WS_URL": fake.ws_url,
           "TRDR_COINBASE_USER_WS_URL": fake.user_ws_url}
    return load_settings(env=env, overrides=dict(overrides))


def test_history_bars_cover_every_rule() -> None:
    s = load_settings(env={})
    assert history_bars(s) == max(s.backtest.warmup_bars, s.grid.trend_slow_bars, SWING_HISTORY_BARS) == 720
    assert history_bars(s, preset="simple-trailing") == s.backtest.warmup_bars  # no grid to arm
    assert history_bars(load_settings(env={}, overrides={"grid.trend_slow_bars": 1500})) == 1500
    assert history_bars(load_settings(env={}, overrides={"grid.trend_slow_bars": 5000})) == RECENT_BARS


async def test_a_new_paper_run_warms_on_stored_history_then_trades(tmp_path: Path) -> None:
    fake = fake_with_history()
    await fake.start()
    settings = settings_for(fake, **{"agents.enabled": ["momentum"]})
    store = Store(tmp_path / "paper.duckdb")
    engine = build_coinbase_engine(settings, live=False, store=store)
    feed = engine.feed
    assert isinstance(feed, CoinbaseFeed) and isinstance(engine.policy, GridPolicy)
    policy = engine.policy
    placed_at: list[int] = []  # the bar index at each order's first transition

    seen: set[str] = set()

    def on_transition(order: Order, _t: OrderTransition) -> None:
        if order.id not in seen:
            seen.add(order.id)
            placed_at.append(engine.run_state.bar_index)

    engine.orders.fsm.listeners.append(on_transition)
    want = history_bars(settings)
    at_first_live: dict[str, float] = {}

    def first_live_bar_done() -> bool:
        if engine.record.bars > want and not at_first_live:
            at_first_live.update(bars_seen=policy.bars_seen, ema_slow=policy.ema_slow, ema_fast=policy.ema_fast)
        return engine.record.bars >= want + 3
    try:
        await run_until(engine, feed, first_live_bar_done, timeout=60)
    finally:
        await feed.rest.close()
        await fake.stop()
    bars = real_candles()
    # the store was backfilled with the hours before the start, and those are what the engine saw first
    store.sync()
    seen_bars = engine.recent_bars(engine.record.bars)
    end = engine.run_state.trade_from_ns
    stored = CandleRepository(store).load("BTC-USD", "1h", end=end)
    assert feed.history_bars == want == len(stored)
    real = {c.ts: c for c in bars}
    assert [real[t].close for t in stored.ts.tolist()] == pytest.approx(stored.close.tolist(), rel=1e-12)
    np.testing.assert_array_equal(seen_bars.ts[:want], stored.ts)
    assert bool(np.all(np.diff(seen_bars.ts) == HOUR))  # no live bar repeats a history bar, no hole
    # no order from the warm-up bars; trading began with the first live bar
    assert engine.run_state.trade_from_ns == int(stored.ts[-1]) + HOUR == int(seen_bars.ts[want])
    assert placed_at and min(placed_at) >= want
    # the grid's trend gate followed every history bar: armed at the first live bar, and the same EMAs
    # as the batch gate over those closes
    assert at_first_live["bars_seen"] == want + 1 >= settings.grid.trend_slow_bars
    fast, slow, _down = trend_gate(seen_bars.close[:want + 1], fast_bars=settings.grid.trend_fast_bars,
                                   slow_bars=settings.grid.trend_slow_bars, band=settings.grid.trend_band)
    assert at_first_live["ema_slow"] == pytest.approx(float(slow[-1]), rel=1e-12)
    assert at_first_live["ema_fast"] == pytest.approx(float(fast[-1]), rel=1e-12)
    store.close()


async def test_without_history_the_run_starts_cold_and_says_so(tmp_path: Path) -> None:
    fake = FakeExchange(candles=real_candles()[START:])  # exchange time is now: it has no bars of these hours
    await fake.start()
    settings = settings_for(fake)
    store = Store(tmp_path / "paper.duckdb")
    engine = build_coinbase_engine(settings, live=False, store=store)
    warnings: list[str] = []
    engine.bus.subscribe("log.warning", lambda _t, e: warnings.append(e.message))
    feed = engine.feed
    assert isinstance(feed, CoinbaseFeed) and feed.history is not None
    try:
        assert await feed.history() == []
    finally:
        await feed.rest.close()
        await fake.stop()
    assert engine.run_state.trade_from_ns == -(2**63)  # nothing to wait for: trading starts at once
    assert any("starts cold" in w for w in warnings)
    store.close()


def test_a_resumed_run_gets_no_history(tmp_path: Path) -> None:
    settings = load_settings(env={"TRDR_COINBASE_REST_URL": "http://127.0.0.1:9", "TRDR_COINBASE_WS_URL": "ws://127.0.0.1:9"})
    engine = build_coinbase_engine(settings, live=False, store=None, run_id="pa-resumed")
    assert isinstance(engine.feed, CoinbaseFeed) and engine.feed.history is None
