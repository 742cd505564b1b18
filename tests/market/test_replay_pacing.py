"""A paced replay keeps a wall-clock schedule: the consumer's time shortens the next wait; a stall restarts it."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from trdr_tui.core.arrays import CandleArrays
from trdr_tui.market import replay
from trdr_tui.market.replay import CATCH_UP_S, ReplayFeed

NS = 1_000_000_000


def candles(n: int) -> CandleArrays:
    ts = np.arange(n, dtype=np.int64) * 3600 * NS
    price = np.full(n, 100.0)
    return CandleArrays(ts=ts, open=price, high=price, low=price, close=price, volume=np.ones(n))


async def test_a_paced_replay_keeps_its_schedule_and_restarts_after_a_stall(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated time: each candle costs the consumer 3 ms at 100 candles/s (10 ms apart), candle 5 stalls 2 s."""
    clock = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(round(seconds, 9))
        clock[0] += seconds

    monkeypatch.setattr(asyncio.get_running_loop(), "time", lambda: clock[0])
    monkeypatch.setattr(replay.asyncio, "sleep", sleep)
    feed = ReplayFeed(candles(10), speed=100.0)
    async for candle in feed:
        clock[0] += 2.0 if candle.ts == 5 * 3600 * NS else 0.003
    monkeypatch.undo()
    assert CATCH_UP_S < 2.0  # the stall is longer than the catch-up window
    # candle 1 waits the whole interval (no schedule yet), then 10 - 3 ms; after the stall the schedule
    # restarts (one full interval), with no burst of zero waits
    assert waits == [0.01, 0.007, 0.007, 0.007, 0.007, 0.01, 0.007, 0.007, 0.007]
