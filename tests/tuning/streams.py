"""A candle feed that is not a replay (as the exchange's is): what a real paper session sees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.timeframes import timeframe_ns
from trdr_tui.core.types import Candle


class StreamFeed:
    """Candles one by one; with `pause_s`, a real sleep between them; `until()` true ends the stream."""

    def __init__(self, bars: CandleArrays, symbol: str, timeframe: str, *, pause_s: float = 0.0,
                 until: Callable[[], bool] | None = None) -> None:
        self.bars, self.symbol, self.timeframe = bars, symbol, timeframe
        self.timeframe_ns = timeframe_ns(timeframe)
        self.pause_s = pause_s
        self.until = until

    async def __aiter__(self) -> AsyncIterator[Candle]:
        for c in self.bars.candles():
            if self.until is not None and self.until():
                return
            if self.pause_s:
                await asyncio.sleep(self.pause_s)
            yield c
