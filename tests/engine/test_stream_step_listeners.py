"""The streaming loop reuses its per-bar step while nobody subscribes or leaves; a listener that
arrives or leaves mid-run is seen from the next bar."""

from __future__ import annotations

from typing import Any

from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.engine.assembly import build_replay_engine


async def test_a_listener_added_or_removed_mid_run_is_seen_from_the_next_bar(hourly: CandleArrays) -> None:
    bars = hourly[:400]
    replay = build_replay_engine(load_settings(), bars, speed=None, store=None, log=[])
    bus = replay.bus
    snapshots: list[Any] = []
    seen = [0]
    late: list[Any] = []

    def on_candle(_topic: str, _event: Any) -> None:
        seen[0] += 1
        if seen[0] == 100:
            late.append(bus.subscribe(replay.portfolio_topic, lambda _t, e: snapshots.append(e)))
        if seen[0] == 300:
            bus.unsubscribe(late[0])

    bus.subscribe(replay.candle_topic, on_candle)
    await replay.run()
    assert seen[0] == len(bars)
    # subscribed while the 100th candle was published, removed at the 300th: the snapshots of the
    # bars after the 100th, up to the 299th, reach it
    assert len(snapshots) == 199
    assert snapshots[0].ts < snapshots[-1].ts
