"""A replay (the demo) lets the agents warm up on its first bars without trading on them."""

from __future__ import annotations

from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.engine.assembly import build_replay_engine


async def test_a_replay_places_no_orders_during_the_warm_up(hourly: CandleArrays) -> None:
    settings = load_settings()
    warm = settings.backtest.warmup_bars
    bars = hourly[:warm + 300]
    replay = build_replay_engine(settings, bars, speed=None, store=None, log=[])
    await replay.run()
    assert replay.record.orders  # it trades after the warm-up
    first_traded_bar = int(bars.ts[warm])
    assert min(o.created_ts for o in replay.record.orders) >= first_traded_bar
