"""The history a run needs before its first order, and where paper and live runs get it.

Every rule that reads the past starts armed only with enough closed bars behind it: the agents'
indicators (`[backtest] warmup_bars`), the grid's trend gate (`[grid] trend_slow_bars`) and its
spacing window (`trading.grid.SWING_HISTORY_BARS`, 30 days of bars). `history_bars` is the larger of
them; a backtest warms on that many bars before a walk-forward window (`backtest.walkforward`), and
a new paper or live run on Coinbase starts with as many closed bars from the store (`warm_start`):

    engine = build_coinbase_engine(settings, live=False, store=store)   # calls warm_start for a new run

At the feed's start `warm_start`'s loader asks the exchange for its time, backfills the store with
the closed bars it lacks (`exchange.backfill`: only what is missing is fetched), and hands the last
`history_bars` stored bars to the feed, which queues them before any live item. They go through the
engine like every bar (agents, grid trend gate, recent bars) but place no orders: the engine's
`trade_from_ns` is set to the end of the last one. When neither the exchange nor the store has them
the run starts cold, as before, and says so in the log. A resumed run (its grid and agents restored
from a checkpoint) gets none.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from trdr_tui.config import Settings
from trdr_tui.core.clock import NS_PER_SECOND
from trdr_tui.core.errors import TrdrError
from trdr_tui.core.timefmt import minute_utc
from trdr_tui.core.timeframes import timeframe_seconds
from trdr_tui.core.types import Candle
from trdr_tui.engine.loop import RECENT_BARS, Engine
from trdr_tui.exchange.backfill import backfill
from trdr_tui.exchange.coinbase_rest import CoinbaseRest
from trdr_tui.store.candles import CandleRepository
from trdr_tui.store.db import Store
from trdr_tui.trading import grid

HistoryLoader = Callable[[], Awaitable[list[Candle]]]


def history_bars(settings: Settings, preset: str | None = None) -> int:
    """Closed bars before the first order so that every rule of the run starts armed: the agents'
    warm-up (`backtest.warmup_bars`) and, for the grid (no preset), `trading.grid.history_bars`;
    at most `RECENT_BARS`, the bars a streaming run keeps."""
    need = settings.backtest.warmup_bars
    if preset is None:
        need = max(need, grid.history_bars(settings.grid))
    return min(need, RECENT_BARS)


def warm_start(engine: Engine, rest: CoinbaseRest, store: Store | None, bars: int) -> HistoryLoader:
    """The loader a new paper/live run's feed calls at its start (see the module doc). It never
    raises for a failed fetch: it logs a warning and uses what the store holds."""
    symbol, timeframe = engine.symbol, engine.settings.timeframe
    step = timeframe_seconds(timeframe) * NS_PER_SECOND

    async def load() -> list[Candle]:
        repo = CandleRepository(store if store is not None else Store())
        try:
            now = int((await rest.server_time()).epochSeconds) * NS_PER_SECOND
        except (TrdrError, ValueError) as exc:
            engine.log("warning", f"warm-up: the exchange's time could not be read ({exc}); "
                                  "the run starts cold: no history for the agents and the grid")
            return []
        end = now - now % step
        start = end - bars * step
        try:
            await backfill(rest, repo, symbol, timeframe, start, end, now_ns=now)
        except TrdrError as exc:
            engine.log("warning", f"warm-up: fetching the last {bars} {timeframe} bars failed ({exc.message}); "
                                  "using the stored ones")
        got = repo.load(symbol, timeframe, start, end)
        if len(got) == 0:
            engine.log("warning", f"warm-up: no {symbol} {timeframe} bars before {minute_utc(end)}; the run "
                                  "starts cold: the agents and the grid's trend gate and spacing have no history")
            return []
        trade_from = int(got.ts[-1]) + step
        engine.run_state.trade_from_ns = trade_from
        engine.log("info", f"warm-up: {len(got)} closed {timeframe} bars ({minute_utc(int(got.ts[0]))} → "
                           f"{minute_utc(int(got.ts[-1]))}) feed the agents and the grid; no orders before "
                           f"{minute_utc(trade_from)}", bars=len(got), wanted=bars)
        return list(got.candles())

    return load
