"""Where a backtest's bars come from: the candle store, or a file imported on the fly.

A file goes through the same importer and the same candle repository as `trdr data import`, into a
throwaway in-memory store, so a `--data` run sees exactly the bars a stored run would.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import ConfigError, DataError
from trdr_tui.store.db import MEMORY, Store


def parse_time(text: str | None, what: str) -> int | None:
    """`2019-01-01`, `2019-01-01T12:00` or `2019-01-01 12:00` (UTC) → ns since the epoch."""
    if text is None or text == "":
        return None
    raw = text.strip().replace(" ", "T")
    try:
        dt = datetime.fromisoformat(raw)
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not a date", hint="use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def load_file(path: str | Path, *, symbol: str = "BTC-USD", timeframe: str | None = None,
              start: int | None = None, end: int | None = None) -> tuple[CandleArrays, str]:
    """Import `path` into an in-memory store and read back [start, end) (ns; None = unbounded).

    Returns the bars and their timeframe (as given, else inferred from the file).
    """
    from trdr_tui.market.importer import read_candle_file
    from trdr_tui.store.candles import CandleRepository

    parsed = read_candle_file(path, timeframe)
    with Store(MEMORY) as mem:
        repo = CandleRepository(mem)
        repo.insert(symbol, parsed.timeframe, parsed.candles, source=Path(path).name)
        bars = repo.load(symbol, parsed.timeframe, start, end)
    if len(bars) == 0:
        raise DataError(f"{path} has no bars in the requested range", hint="check --start/--end")
    return bars, parsed.timeframe


def load_stored(store: Store, symbol: str, timeframe: str, start: int | None = None,
                end: int | None = None) -> CandleArrays:
    from trdr_tui.store.candles import CandleRepository

    bars = CandleRepository(store).load(symbol, timeframe, start, end)
    if len(bars) == 0:
        raise DataError(f"no stored {symbol} {timeframe} candles in the requested range",
                        where=store.path,
                        hint=f"import some first: trdr data import FILE --symbol {symbol}, or pass --data FILE")
    return bars


SHORT_SAMPLE_DAYS = 30  # below this span annualized figures (return, Sharpe, Sortino, Calmar) say nothing
_LISTED = 5  # suspicious bars named in one warning before "… and N more"


def data_warnings(candles: CandleArrays, timeframe: str, *, fix: str) -> list[str]:
    """`trdr data check`'s findings (`market.importer.check_bars`) on the bars a run is given, as
    warnings: suspicious bars by time and kind, then gaps. `fix` says how to look at and clean the
    source (a file or the store). Empty when the bars pass. The bars are used as they are either way."""
    from trdr_tui.core.timefmt import minute_utc
    from trdr_tui.core.timeframes import timeframe_ns
    from trdr_tui.market.importer import check_bars, describe_outlier

    gaps, outliers = check_bars(candles, timeframe_ns(timeframe))
    out: list[str] = []
    if outliers:
        named = "; ".join(describe_outlier(o) for o in outliers[:_LISTED])
        more = f"; … and {len(outliers) - _LISTED} more" if len(outliers) > _LISTED else ""
        out.append(f"{len(outliers)} suspicious bar{'s' if len(outliers) > 1 else ''} in the data ({named}{more}): "
                   f"fills and figures on such bars may be fiction; {fix}")
    if gaps:
        missing = sum(g.missing for g in gaps)
        out.append(f"{len(gaps)} gap{'s' if len(gaps) > 1 else ''} in the data ({missing:,} bars missing, the first "
                   f"{minute_utc(gaps[0].start)} → {minute_utc(gaps[0].end)}): the run steps over them; {fix}")
    return out


def sample_warnings(candles: CandleArrays, timeframe: str, history_bars: int) -> list[str]:
    """Notes on a run too short to judge: under `SHORT_SAMPLE_DAYS` days the annualized figures
    extrapolate a few days to a year; under `history_bars` bars (`engine.warmup.history_bars`) the
    strategy traded on partial history throughout. Empty for a long enough run."""
    from trdr_tui.core.timeframes import timeframe_ns

    out: list[str] = []
    days = len(candles) * timeframe_ns(timeframe) / 86_400e9
    if days < SHORT_SAMPLE_DAYS:
        out.append(f"the run covers {days:.3g} days ({len(candles):,} bars), under {SHORT_SAMPLE_DAYS}: the annualized "
                   "return, Sharpe, Sortino and Calmar extrapolate it to a year and mean little; judge the total "
                   "return, or run a longer range")
    if len(candles) < history_bars:
        out.append(f"the run has {len(candles):,} bars, fewer than the {history_bars:,} the strategy looks back over "
                   "(the agents' warm-up and the grid's history): it traded on partial history throughout, unlike "
                   "a paper or live run, which starts warmed; run a longer range")
    return out
