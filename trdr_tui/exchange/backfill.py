"""Fill the DuckDB candle store from Coinbase — rate-limited, resumable, gap-aware.

Only bars the store does not have are requested, in windows of at most 349 buckets (Coinbase
refuses 350). Each window is written in its own transaction as soon as it arrives, so an interrupted
backfill keeps what it fetched and a rerun continues where it stopped. Buckets the exchange has no
candle for (no trades, outages) are reported as gaps.

Only closed bars are stored: the range ends at the last closed bucket whatever `end` says (the newest
candle is still forming and would otherwise be stored for good; later hours would be listed as gaps).
The newest bar already stored in the range is fetched again and replaced if the exchange's differs:
it may have been stored while forming (a file downloaded mid-hour, an older trdr), and this is how a
later backfill corrects it. Requests go through the REST client's limiter
(public 10/s, private 30/s) and its retry policy. The CLI (`trdr data backfill`) is
`trdr_tui/commands/backfill.py`.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import numpy as np

from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.clock import NS_PER_SECOND
from trdr_tui.core.errors import DataError
from trdr_tui.core.timefmt import minute_utc
from trdr_tui.core.timeframes import Gap, timeframe_seconds
from trdr_tui.core.types import Candle
from trdr_tui.exchange.coinbase_rest import MAX_CANDLES_PER_REQUEST, CoinbaseRest
from trdr_tui.market.importer import MAX_PRICE, MAX_VOLUME
from trdr_tui.store.candles import CandleRepository

SOURCE = "coinbase"


class BackfillReport(msgspec.Struct, kw_only=True):
    symbol: str
    timeframe: str
    start: int
    end: int
    wanted: int = 0            # buckets in [start, end)
    already_stored: int = 0
    requests: int = 0
    fetched: int = 0
    added: int = 0
    invalid: int = 0
    corrected: int = 0         # stored bars replaced by the exchange's (closed) values
    requested_end: int = 0     # `end` as asked, before clamping to the last closed bucket
    gaps: list[Gap] = msgspec.field(default_factory=list)  # buckets the exchange had no candle for

    @property
    def missing(self) -> int:
        return sum(g.missing for g in self.gaps)


def missing_windows(stored_ts: np.ndarray, start: int, end: int, step: int) -> list[tuple[int, int]]:
    """[a, b) ranges of bucket open times not in `stored_ts`, each at most 349 buckets long."""
    buckets = np.arange(start, end, step, dtype=np.int64)
    todo = buckets[~np.isin(buckets, stored_ts)]
    windows: list[tuple[int, int]] = []
    i = 0
    while i < len(todo):
        a = int(todo[i])
        j = i
        limit = a + MAX_CANDLES_PER_REQUEST * step
        while j + 1 < len(todo) and int(todo[j + 1]) == int(todo[j]) + step and int(todo[j + 1]) < limit:
            j += 1
        windows.append((a, int(todo[j]) + step))
        i = j + 1
    return windows


def _valid(c: Candle) -> bool:
    """The importer's rules for a bar: consistent, positive, finite and plausible (below MAX_PRICE)."""
    return (c.low <= min(c.open, c.close) and c.high >= max(c.open, c.close) and c.low > 0
            and 0 <= c.volume < MAX_VOLUME and c.high < MAX_PRICE
            and all(np.isfinite((c.open, c.high, c.low, c.close, c.volume))))


def _gaps(expected: np.ndarray, got: set[int], step: int) -> list[Gap]:
    gaps: list[Gap] = []
    run_start: int | None = None
    prev = 0
    for t in expected.tolist():
        if t in got:
            if run_start is not None:
                gaps.append(Gap(run_start, prev, (prev - run_start) // step + 1))
                run_start = None
        elif run_start is None:
            run_start = t
        prev = t
    if run_start is not None:
        gaps.append(Gap(run_start, prev, (prev - run_start) // step + 1))
    return gaps


async def backfill(rest: CoinbaseRest, repo: CandleRepository, symbol: str, timeframe: str, start: int, end: int,
                   *, now_ns: int, progress: Callable[[BackfillReport], None] | None = None) -> BackfillReport:
    """Fetch and store every closed bar of [start, end) the store lacks, and re-check the newest stored
    one. Times are ns since the epoch; `now_ns` (the exchange's time, from a Clock) decides which bucket
    is still forming: `end` is clamped to its start. Safe to interrupt and rerun. Raises DataError for
    an empty range, the REST client's errors (ConnectionLost after its retries) otherwise."""
    step = timeframe_seconds(timeframe) * NS_PER_SECOND
    start -= start % step
    requested_end = end
    end = min(end, now_ns - now_ns % step)  # the forming bucket and the future are not final
    if end <= start:
        if requested_end > start:
            raise DataError(f"no bar from {minute_utc(start)} on has closed yet (the {timeframe} bar of "
                            f"{minute_utc(now_ns - now_ns % step)} is still forming)",
                            hint="pass an earlier --start, or run it again once the bar has closed")
        raise DataError(f"the end ({minute_utc(end)}) is not after the start ({minute_utc(start)})",
                        hint="pass --end later than --start")
    report = BackfillReport(symbol=symbol, timeframe=timeframe, start=start, end=end, requested_end=requested_end)
    stored = repo.load(symbol, timeframe, start, end).ts
    report.wanted = len(range(start, end, step))
    report.already_stored = int(np.count_nonzero((stored >= start) & (stored < end)))
    newest = repo.load(symbol, timeframe).ts[-1:]
    recheck = int(newest[0]) if len(newest) and start <= int(newest[0]) < end else None
    if recheck is not None:
        stored = stored[stored != recheck]
    for a, b in missing_windows(stored, start, end, step):
        candles = await rest.get_candles(symbol, a // NS_PER_SECOND, b // NS_PER_SECOND, timeframe)
        report.requests += 1
        report.fetched += len(candles)
        good = [c for c in candles if _valid(c) and c.ts % step == 0 and a <= c.ts < b]
        report.invalid += len(candles) - len(good)
        if good:
            # `replace` touches only the re-checked bar: every other bucket of the window is missing
            result = repo.insert(symbol, timeframe, CandleArrays.from_candles(good), source=SOURCE,
                                 replace=recheck is not None and a <= recheck < b)
            report.added += result.added
            report.corrected += result.replaced
        report.gaps.extend(_gaps(np.arange(a, b, step, dtype=np.int64), {c.ts for c in good}, step))
        if progress is not None:
            progress(report)
    return report
