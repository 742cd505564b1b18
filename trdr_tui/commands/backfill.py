"""`trdr data backfill`: download the candles the store lacks from Coinbase (registered by commands/data.py).

    trdr data backfill --symbol BTC-USD --timeframe 1h --start 2024-01-01 --end 2024-02-01

Without `--start` the backfill resumes at the last stored bar (fetched again: it may have been stored
while forming); it always stops before the bar still forming, whatever `--end` says. Before the work
starts one quick request checks that the exchange can be reached at all: without a network the command
fails at once with a hint instead of retrying for half a minute. The work itself (windows, gaps,
resuming) is `trdr_tui.exchange.backfill`.
"""

from __future__ import annotations

import datetime as dt

from trdr_tui.commands.context import CliContext
from trdr_tui.core import stop_signals
from trdr_tui.core.clock import NS_PER_SECOND, WallClock
from trdr_tui.core.errors import ConnectionLost, DataError
from trdr_tui.core.timefmt import minute_utc
from trdr_tui.core.timeframes import timeframe_seconds
from trdr_tui.exchange.backfill import BackfillReport, backfill
from trdr_tui.exchange.coinbase_rest import CoinbaseRest, RetryPolicy
from trdr_tui.exchange.credentials import load_credentials
from trdr_tui.store.candles import CandleRepository

_GAPS_SHOWN = 10
_PROBE = RetryPolicy(max_retries=0)  # the reachability check: one attempt
_PROBE_TIMEOUT_S = 10.0


def parse_when(text: str, what: str) -> int:
    """ISO date or date-time (UTC unless an offset is given) → ns since the epoch, whole seconds.

    `what` names the option in the error. Raises DataError when `text` is not an ISO date.
    """
    try:
        stamp = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DataError(f"{what} {text!r} is not an ISO date", hint="use e.g. 2024-01-01 or 2024-01-01T12:00") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return int(stamp.timestamp()) * NS_PER_SECOND


def run(ctx: CliContext) -> int:
    """The `trdr data backfill` handler: resolve the range, fetch, print a report. Returns the exit code."""
    args = ctx.args
    settings = ctx.settings
    symbol = args.symbol or settings.symbol
    timeframe = args.timeframe or settings.timeframe
    step = timeframe_seconds(timeframe) * NS_PER_SECOND
    now = WallClock().now_ns()
    end = parse_when(args.end, "--end") if args.end else now - now % step  # clamped again by backfill()
    repo = CandleRepository(ctx.store)
    if args.start:
        start = parse_when(args.start, "--start")
    else:
        have = repo.load(symbol, timeframe)
        if not len(have):
            raise DataError(f"no {symbol} {timeframe} candles stored to resume from",
                            hint="pass --start, e.g. --start 2024-01-01")
        start = int(have.ts[-1])  # re-checked: it may have been stored while forming
    creds = load_credentials(settings)
    signer = creds.signer() if creds is not None else None

    def show(r: BackfillReport) -> None:
        print(f"\r  {r.requests} requests · {r.added:,} bars added", end="", flush=True)

    url = settings.coinbase.rest_url

    async def go() -> BackfillReport:
        async with CoinbaseRest(url, signer=signer, retry=_PROBE, timeout_s=_PROBE_TIMEOUT_S) as probe:
            try:
                await probe.get_candles(symbol, (start - step) // NS_PER_SECOND, start // NS_PER_SECOND,
                                        timeframe)
            except ConnectionLost as exc:
                raise ConnectionLost(f"{url} did not answer: {exc.message}",
                                     hint="check the network connection (and TRDR_COINBASE_REST_URL if set), "
                                          "or try again later; nothing was stored") from None
        async with CoinbaseRest(url, signer=signer) as rest:
            return await backfill(rest, repo, symbol, timeframe, start, end, now_ns=now, progress=show)

    print(f"Backfilling {symbol} {timeframe} from {minute_utc(start)} to "
          f"{minute_utc(min(end, now - now % step))} (UTC) from {url}")
    report = stop_signals.run(go())
    print()
    if report.requested_end > report.end:
        print(f"  stopped at {minute_utc(report.end)}: later bars have not closed yet")
    if report.corrected:
        print(f"  {report.corrected} stored bar(s) replaced by the exchange's closed values")
    print(f"  {report.wanted:,} bars in range · {report.already_stored:,} already stored · "
          f"{report.fetched:,} fetched in {report.requests} requests · {report.added:,} added"
          + (f" · {report.invalid} invalid skipped" if report.invalid else ""))
    if report.gaps:
        print(f"  the exchange has no candle for {report.missing:,} bars in {len(report.gaps)} ranges:")
        for g in report.gaps[:_GAPS_SHOWN]:
            print(f"    {minute_utc(g.start)} → {minute_utc(g.end)} ({g.missing} bars)")
        if len(report.gaps) > _GAPS_SHOWN:
            print(f"    … and {len(report.gaps) - _GAPS_SHOWN} more")
    return 0
