"""Saved agent weights (`agent_weights`) belong to real paper/live sessions: backtests and replays (the
demo) neither start from them nor write them."""

from __future__ import annotations

from collections.abc import AsyncIterator

from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.timeframes import timeframe_ns
from trdr_tui.core.types import Candle
from trdr_tui.engine.assembly import build_engine, build_replay_engine
from trdr_tui.store.db import Store
from trdr_tui.store.decisions import load_weights, save_weights

SAVED = {"momentum": 2.5, "regime": 0.4}


class StreamFeed:
    """A feed that is not a replay (as the exchange's is): candles handed out one by one."""

    def __init__(self, bars: CandleArrays, symbol: str, timeframe: str) -> None:
        self.bars, self.symbol, self.timeframe = bars, symbol, timeframe
        self.timeframe_ns = timeframe_ns(timeframe)

    async def __aiter__(self) -> AsyncIterator[Candle]:
        for c in self.bars.candles():
            yield c


async def test_backtest_and_replay_leave_the_saved_weights_alone(hourly: CandleArrays, store: Store) -> None:
    settings = load_settings()
    assert settings.agents.adaptive_weights  # adaptation moves the weights during the runs below
    save_weights(store, SAVED, 1_700_000_000 * 10**9)
    bars = hourly[:400]

    backtest = build_engine(settings, mode="backtest", candles=bars, store=store)
    assert backtest.agent_weights()["momentum"] == 1.0  # from the config, not the saved state
    backtest.set_agent_weight("momentum", 0.3)
    await backtest.run()

    replay = build_replay_engine(settings, bars, speed=None, store=store, log=[])
    assert replay.agent_weights()["momentum"] == 1.0
    replay.set_agent_weight("regime", 1.7)
    await replay.run()
    assert replay.agent_weights() != {a: 1.0 for a in replay.agent_weights()}  # the replay adapted them

    store.sync()
    assert load_weights(store) == SAVED


async def test_a_paper_session_starts_from_and_saves_the_weights(hourly: CandleArrays, store: Store) -> None:
    settings = load_settings()
    save_weights(store, SAVED, 1_700_000_000 * 10**9)
    feed = StreamFeed(hourly[:50], settings.symbol, settings.timeframe)
    paper = build_engine(settings, mode="paper", feed=feed, store=store)
    assert paper.agent_weights()["momentum"] == 2.5
    paper.set_agent_weight("momentum", 0.3)
    await paper.run()
    store.sync()
    assert load_weights(store)["momentum"] == 0.3

