"""ReplayFeed: historical candles played back through the engine (backtests, demos).

At `speed=None` (max) the engine takes the whole `CandleArrays` and runs its synchronous backtest
loop over it (no await per bar). With a `speed` in candles per second the feed is paced: it yields
one candle at a time and sleeps between them, while the engine's SimClock moves to each candle's
time, so a replay looks like a live session on screen but stays deterministic. The pace follows the
wall clock: candle n is due 1/speed s after candle n-1 was due, so the time the engine spends on a
candle and a late wake-up on a busy machine shorten the next waits instead of slowing the replay;
more than `CATCH_UP_S` behind (a long stall), the schedule restarts from now rather than bursting.

A paper-mode replay at max speed is streamed too (the engine runs its per-candle path), and shares
the event loop with the cockpit and the signal handlers: it hands the loop back every `yield_every`
candles, so the screen keeps drawing and Ctrl-C is seen at once. Counting candles rather than time
keeps the run independent of how fast the machine is. The synchronous backtest loop reads `arrays`
and never iterates the feed, so backtests pay nothing for this.

A paced replay can start with a `warmup`: its first candles play at max speed, like the history a live
session loads before it trades, so the agents have their indicators ready when pacing begins instead of
showing no vote for the first few minutes of a demo.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import ConfigError, DataError
from trdr_tui.core.timeframes import timeframe_ns
from trdr_tui.core.types import Candle

CATCH_UP_S = 0.5  # a paced replay this far behind its schedule restarts it instead of catching up


class ReplayFeed:
    source = "replay"

    def __init__(self, candles: CandleArrays, *, symbol: str = "BTC-USD", timeframe: str = "1h",
                 speed: float | None = None, yield_every: int = 4, warmup: int = 0) -> None:
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
        if yield_every < 1:
            raise ConfigError(f"replay yield_every must be at least 1 candle, got {yield_every}")
        self.yield_every = yield_every
        if warmup < 0:
            raise ConfigError(f"replay warmup must be ≥ 0 candles, got {warmup}")
        self.warmup = warmup

    def __len__(self) -> int:
        return len(self.arrays)

    @property
    def paced(self) -> bool:
        return self.speed is not None

    async def __aiter__(self) -> AsyncIterator[Candle]:
        delay = 1.0 / self.speed if self.speed else 0.0
        every = self.yield_every
        warmup = self.warmup
        loop = asyncio.get_running_loop()
        due: float | None = None  # when the previous paced candle was due (event-loop clock)
        for i, candle in enumerate(self.arrays.candles()):
            if delay and i >= warmup:
                if i:
                    now = loop.time()
                    due = now + delay if due is None or now - due > CATCH_UP_S else due + delay
                    await asyncio.sleep(max(0.0, due - now))
            elif i and i % every == 0:
                await asyncio.sleep(0)  # max speed: let the screen and signal handlers run
            yield candle
