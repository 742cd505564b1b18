"""ReplayFeed: historical candles played back through the engine (backtests, demos).

At `speed=None` (max) the engine takes the whole `CandleArrays` and runs its synchronous backtest
loop over it (no await per bar). With a `speed` in candles per second the feed is paced: it yields
one candle at a time and sleeps between them, while the engine's SimClock moves to each candle's
time, so a replay looks like a live session on screen but stays deterministic.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from trdr_tui.core.errors import ConfigError, DataError
from trdr_tui.core.types import Candle
from trdr_tui.market.arrays import CandleArrays
from trdr_tui.market.timeframes import timeframe_ns


class ReplayFeed:
    source = "replay"

    def __init__(self, candles: CandleArrays, *, symbol: str = "BTC-USD", timeframe: str = "1h",
                 speed: float | None = None) -> None:
        if len(candles) and bool((candles.ts[1:] <= candles.ts[:-1]).any()):
            raise DataError("replay candles are not in strictly ascending time",
                            hint="sort the bars and drop duplicates before replaying")
        if speed is not None and not speed > 0:
            raise ConfigError(f"replay speed must be > 0 candles/s (or None for max), got {speed}")
        self.arrays = candles
        self.symbol = symbol
        self.timeframe = timeframe
        self.timeframe_ns = timeframe_ns(timeframe)
        self.speed = speed

    def __len__(self) -> int:
        return len(self.arrays)

    @property
    def paced(self) -> bool:
        return self.speed is not None

    async def __aiter__(self) -> AsyncIterator[Candle]:
        delay = 1.0 / self.speed if self.speed else 0.0
        for i, candle in enumerate(self.arrays.candles()):
            if delay and i:
                await asyncio.sleep(delay)
            yield candle
